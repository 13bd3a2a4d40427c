// The walk of a backup source: lstat of every entry (no content read), Maildir detection,
// SQLite side files, special files skipped. Output is in manifest order (depth first,
// siblings sorted bytewise). docs/FORMAT.md §7.1.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agent/archiver/backup.h"
#include "storage/snapshot.h"

namespace mv::agent {

// Parallel vectors (memory: one FileEntry per file is the snapshot's own entry, no copy).
// A regular file with more than one link has kFlagHardLink set, to be resolved by the backup.
struct WalkOutput {
  std::vector<storage::FileEntry> entries;  // path, type and stat fields filled; no content yet
  std::vector<uint8_t> maildir_message;     // 1: a file directly in cur/ or new/ of a Maildir
  std::vector<uint16_t> source;             // index of the source the entry belongs to
  std::vector<FileProblem> problems;        // unreadable directories, vanished entries
  std::vector<FileProblem> skipped;         // sockets, fifos, devices, tmp/ contents are not listed
  // Directories' xattrs are user.* and ACLs (storage/xattr.h); how many others were not kept.
  // Regular files' xattrs are NOT read by the walk: reading them is a third of a no-op backup's
  // time, and a file whose ctime has not moved has its parent snapshot's. The consumer reads
  // them for the others (Pipeline::AddEntry) and counts here what it did not keep.
  uint64_t xattrs_not_kept = 0;
  // When set, called after each directory with the entries listed so far (still in walk order),
  // which it takes (clearing the three entry vectors), so the walk holds one directory at a time.
  // Setting `stop` ends the walk early (the consumer failed).
  std::function<void(WalkOutput&)> on_batch;
  bool stop = false;
};

// Walks `src` (its only_paths subtrees if any) and appends to `out`, tagging entries with
// `source_ix`.
Status WalkSource(const SourceSpec& src, uint16_t source_ix, WalkOutput* out);
// The entry's path relative to its source root ("" for the root itself).
inline std::string_view RelPath(const storage::FileEntry& e, const std::string& source_name) {
  return e.path.size() > source_name.size()
             ? std::string_view(e.path).substr(source_name.size() + 1)
             : std::string_view();
}

}  // namespace mv::agent
