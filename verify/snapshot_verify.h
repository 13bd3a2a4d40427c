// `mailvault verify`, the comparison half: given a snapshot restored into a
// scratch directory (by agent/restorer/restore.h, which re-hashes every blob), decide whether the
// snapshot is complete and consistent, and how it differs from the live sources.
//
// Read-only: the repository is only read (manifests), live sources are only read (files opened
// O_RDONLY, SQLite opened read-only inside one read transaction by verify/sqlite_diff.h). The
// one write is inside the restored root: a temporary copy of a database image whose path is too
// long for SQLite to open (over 400 bytes), removed after its check.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/snapshot.h"
#include "storage/status.h"
#include "verify/census_diff.h"
#include "verify/sqlite_diff.h"

namespace mv::storage {
class BlobReader;
}

namespace mv::verify {

struct VerifyOptions {
  std::string restored_root;                // each source restored at <root>/<source name>
  std::map<std::string, std::string> live;  // source name -> live directory (may be empty)
  bool against_snapshot = true;             // compare restored data with the recorded data
  bool against_live = true;                 // compare with `live` (when given)
  std::vector<std::string> sqlite_tables;   // tables to diff; empty = every user table
  size_t max_listed = 200;                  // per list, for output size
};

// A file that did not come back as the manifest recorded it.
struct FileIssue {
  std::string path;     // snapshot path ("mail/alice@example.org/cur/...")
  std::string mailbox;  // "" when not a Maildir message
  std::string what;     // "missing", "content differs", or the restorer's message
  std::vector<std::string> other_snapshots;  // other snapshots holding the same damaged blobs
};

struct LiveComparison {
  std::string source, path;
  std::vector<FolderDiff> census;     // snapshot census vs live census (drift, informative)
  MessageDiff messages;               // only_base = deleted since, only_other = arrived since
  std::vector<std::string> problems;  // unreadable live entries (not an error of the snapshot)
};

// The live database a snapshot's database is compared with, when its live source is given.
enum class LiveDb {
  kNotCompared,  // no live source for it, or --against snapshot
  kOk,           // present and passes PRAGMA integrity_check
  kMissing,      // the live source is there, the database file is not
  kUnreadable,   // cannot be opened or read (permissions, locked, not a regular file)
  kDamaged,      // fails PRAGMA integrity_check or is not a database
};

struct DatabaseCheck {
  std::string path;  // snapshot path ("data/main.db")
  bool integrity_ok = false;
  std::vector<std::string> integrity_problems;
  bool content_matches = false;  // restored image hashes to the recorded content ID
  std::string live_path;         // "" when not compared with a live database
  // A live database that is missing, unreadable or damaged is a finding: the stack runs without
  // (or with a broken) database while the snapshot holds one. live_problem says what, naming
  // live_path.
  LiveDb live = LiveDb::kNotCompared;
  std::string live_problem;
  // The live database (and its -wal) has not been written since the snapshot started, so the
  // snapshot should hold exactly its rows: any difference is a loss, not drift.
  bool live_unchanged_since = false;
  std::optional<SqliteDiff> vs_live;  // base = restored image, other = live
  std::string error;                  // a diff that could not run
  // Stored raw (storage::kFlagSqliteRaw): SQLite could not open it at backup, so it is no image
  // to check; only its content is compared.
  bool raw_copy = false;
  bool loss() const;
};

struct VerifyResult {
  std::string snapshot_id;
  int64_t snapshot_time = 0;
  uint64_t files = 0, messages = 0, mailboxes = 0, folders = 0, bytes = 0;
  std::vector<std::string> restore_problems;     // "<path>: <message>" from the restorer
  std::vector<FileIssue> damaged_files;          // missing or differing after restore
  std::vector<FolderDiff> recorded_vs_manifest;  // census recorded at backup vs the manifest
  std::vector<FolderDiff> recorded_vs_restored;  // census recorded at backup vs the restored tree
  MessageDiff snapshot_vs_restored;              // only_base = lost, changed = corrupt
  std::vector<LiveComparison> live;
  std::vector<DatabaseCheck> databases;
  // A partial snapshot (backup exit 3): files the backup could not read, so the snapshot lacks
  // them. The count is the manifest's `problems`; the paths are listed when the backup recorded
  // them (UnreadableAtBackup), else only counted.
  uint64_t unreadable_at_backup = 0;
  std::vector<std::string> unreadable_paths;
  uint64_t lost_messages() const;  // messages recorded but not restored intact
  // No loss or corruption: everything the snapshot holds came back intact and every finding
  // below is clean. A partial snapshot can be ok() without being complete().
  bool ok() const;
  bool partial() const { return unreadable_at_backup > 0; }
  bool complete() const { return ok() && !partial(); }  // complete and consistent
  std::vector<std::string> Errors() const;              // one line per error class, for the summary
};

// The paths the backup of `meta` could not read, as far as the manifest records them (the
// "problems" list of its stats: strings or {"path": ...} objects); empty when not recorded.
std::vector<std::string> UnreadableAtBackup(const storage::SnapshotMeta& meta);

// Compares the restored tree with the snapshot `snap` (already loaded) and the live sources.
// `restore_problems` are the restorer's reports, kept as errors. Errors (Status) only for what
// stops the comparison itself (unreadable restored root).
Result<VerifyResult> VerifyRestored(const storage::BlobReader& blobs, const storage::Snapshot& snap,
                                    const VerifyOptions& opts,
                                    const std::vector<std::string>& restore_problems);

// The same comparison for snapshot `id`, read through BlobReader::OpenEntries: the snapshot and
// the restored tree are compared directory by directory (verify/merge_walk.h), so what it holds
// grows with the largest directory and the findings, not with the snapshot. The result is the
// one VerifyRestored gives; where only whole lists resolve it exactly (see MergeWalk), it reads
// the whole snapshot and calls VerifyRestored.
Result<VerifyResult> VerifyRestoredStream(const storage::BlobReader& blobs, const std::string& id,
                                          const VerifyOptions& opts,
                                          const std::vector<std::string>& restore_problems);

}  // namespace mv::verify
