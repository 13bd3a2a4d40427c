#include "storage/forget.h"

#include "storage/layout.h"

namespace mv::storage {

Status RemoveSnapshot(Repository& repo, const std::string& id) {
  if (!layout::IsSnapshotName(id) || id.find('/') != std::string::npos)
    return Status::Invalid("'" + id + "' is not a snapshot ID (32 hex digits)");
  const std::string name = "snapshots/" + id;
  if (!repo.backend().Size(name).ok())
    return Status::NotFound("no snapshot " + id + "; list them with `mailvault snapshots`",
                            repo.backend().Describe(name));
  MV_RETURN_IF_ERROR(repo.backend().Delete(name));
  return repo.backend().SyncDir("snapshots");
}

}  // namespace mv::storage
