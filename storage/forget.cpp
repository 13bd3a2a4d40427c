#include "storage/forget.h"

#include <sys/stat.h>

#include "storage/layout.h"

namespace mv::storage {

Status RemoveSnapshot(Repository& repo, const std::string& id) {
  if (!layout::IsSnapshotName(id) || id.find('/') != std::string::npos)
    return Status::Invalid("'" + id + "' is not a snapshot ID (32 hex digits)");
  const std::string file = layout::SnapshotFile(repo.path(), id);
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    return Status::NotFound("no snapshot " + id + "; list them with `mailvault snapshots`", file);
  MV_RETURN_IF_ERROR(repo.env()->RemoveFile(file));
  return repo.env()->SyncDir(layout::SnapshotsDir(repo.path()));
}

}  // namespace mv::storage
