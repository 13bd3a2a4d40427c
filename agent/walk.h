// The walk of a backup source: lstat of every entry (no content read), Maildir detection,
// SQLite side files, special files skipped. Output is in manifest order (depth first,
// siblings sorted bytewise). docs/FORMAT.md §7.1.
#pragma once

#include <string>
#include <vector>

#include "agent/backup.h"
#include "storage/snapshot.h"

namespace mv::agent {

struct WalkedEntry {
  storage::FileEntry entry;    // path, type and stat fields filled; no content yet
  std::string rel;             // path relative to the source root ("" for the root)
  bool maildir_message = false;   // a file directly in cur/ or new/ of a Maildir
};

struct WalkOutput {
  std::vector<WalkedEntry> entries;
  std::vector<FileProblem> problems;   // unreadable directories, vanished entries
  std::vector<FileProblem> skipped;    // sockets, fifos, devices, tmp/ contents are not listed
};

// Walks `src` (its only_paths subtrees if any) and appends to `out`.
Status WalkSource(const SourceSpec& src, WalkOutput* out);

}  // namespace mv::agent
