// The archiver: walks sources, decides what must be read (parent snapshot + stat), reads and
// stores content through the repository, quiesces SQLite files, records the Maildir census, and
// commits one snapshot. Format references are to docs/FORMAT.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/progress.h"
#include "storage/lock.h"
#include "storage/status.h"

namespace mv::storage {
class Repository;
}

namespace mv::agent {

struct SourceSpec {
  std::string name;  // first path component in the snapshot ("mail", "data"); [A-Za-z0-9._@-]+
  std::string path;  // host directory to back up
  // Back up only these subtrees, relative to `path` (empty = all of it). Used by stack backups
  // for `backupbot.backup.volumes.<vol>.path=`.
  std::vector<std::string> only_paths;
};

struct BackupOptions {
  std::vector<SourceSpec> sources;
  std::map<std::string, std::string> tags;  // e.g. stack=mailu
  std::string host;                         // default: gethostname()
  // Parent for the stat shortcut: a snapshot ID, or empty = the latest snapshot with the same
  // host and the same set of source names. "none" forces a full read.
  std::string parent;
  int compression_level = 3;           // zstd level for packs
  int threads = 0;                     // 0 = number of cores
  int sqlite_busy_timeout_ms = 60000;  // total retry budget for a locked database
  storage::LockWait lock_wait;         // how long to wait for a held lock (default: not at all)
  // The snapshot's time (SnapshotMeta::time_ns), nanoseconds since the epoch; unset = when the
  // backup starts. For imports and tests of retention (`backup --time`).
  std::optional<int64_t> time_ns;
};

struct BackupStats {
  uint64_t files = 0, dirs = 0, symlinks = 0;
  uint64_t files_read = 0;   // content actually read (not reused from the parent)
  uint64_t bytes_total = 0;  // logical size of all files
  uint64_t bytes_read = 0;
  uint64_t blobs_new = 0, bytes_new = 0;  // stored for the first time (uncompressed)
  uint64_t bytes_packed = 0;              // compressed bytes added to the repository
  uint64_t sqlite_databases = 0;
  double seconds = 0;
};

struct BackupResult {
  std::string snapshot_id;
  std::string parent_id;
  BackupStats stats;
  std::vector<FileProblem> problems;  // unreadable/vanished files; non-empty = partial
  // Stored, but not as a consistent image: changed while read (stored as last read), files with
  // the SQLite header that SQLite cannot open (stored raw). Not partial: each is listed.
  std::vector<FileProblem> warnings;
  std::vector<FileProblem> skipped;  // sockets, fifos, devices: never backed up (not an error)
  std::vector<std::string> notes;    // e.g. a stale lock taken over, orphan packs adopted
};

Result<BackupResult> RunBackup(storage::Repository& repo, const BackupOptions& opts,
                               const ProgressFn& progress = {});

}  // namespace mv::agent
