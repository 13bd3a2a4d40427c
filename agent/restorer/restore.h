// The restorer: writes a snapshot (or part of it) into a target directory. Never writes outside
// the target, never deletes, never overwrites a differing file unless asked (docs/FORMAT.md §7).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/common/progress.h"
#include "storage/status.h"

namespace mv::storage {
class BlobReader;
}

namespace mv::agent {

struct RestoreOptions {
  std::string snapshot;  // full ID (resolve prefixes/"latest" before)
  std::string target;    // each source lands in target/<source name>/
  // Restore a source into this directory instead of target/<name> (stack restores into live
  // volumes). A source named here and absent from the snapshot is an error.
  std::map<std::string, std::string> source_targets;
  std::vector<std::string> includes;  // "mail/alice@example.org": only these subtrees
  bool overwrite = false;             // replace files whose content differs
  bool dry_run = false;               // report what would change, write nothing
  // Make each restored tree identical to the snapshot: also remove what the snapshot does not
  // hold (within the restored sources/--include paths), and replace differing files. Listed in
  // RestoreResult::removed.
  bool exact = false;
  bool numeric_owner = true;  // chown to the recorded uid/gid when running as root
  int threads = 0;
  // Flush the restored filesystems (syncfs) before reporting success. Off only for restores
  // that are read once and thrown away (verify's scratch tree): a crash there loses nothing.
  bool sync = true;
};

struct RestoreStats {
  // files_written: complete under their final names; files_failed: not restored (each one is in
  // RestoreResult::problems, once), nothing left under their names.
  uint64_t files_written = 0, files_failed = 0, files_unchanged = 0, files_conflict = 0;
  uint64_t dirs_created = 0, symlinks_created = 0;
  // Dovecot's state files (IsDovecotStateFile) the target has, left as they are (with or
  // without a difference; not --exact): not counted as kept or unchanged.
  uint64_t dovecot_files_left = 0;
  uint64_t bytes_written = 0;
  double seconds = 0;
};

struct RestoreResult {
  RestoreStats stats;
  // Dry run only: where each file would be written (host paths: the restore root and the path
  // below it; absolute when the target is). A real restore counts them in stats.files_written
  // without listing them, so its memory does not grow with the snapshot.
  std::vector<std::string> written;
  std::vector<std::string> removed;   // --exact: host paths removed (or that would be)
  std::vector<FileProblem> problems;  // refused paths, obstacles, I/O, damaged blobs: partial
  // Files that differ from the snapshot and were left as they are (no --overwrite): normal when
  // restoring into a live tree (dovecot's indexes move on), so not a failure. Listed.
  std::vector<FileProblem> kept;
};

// Reads the manifest and the blobs through `blobs` (Repository::OpenBlobReader()).
Result<RestoreResult> RunRestore(const storage::BlobReader& blobs, const RestoreOptions& opts,
                                 const ProgressFn& progress = {});

}  // namespace mv::agent
