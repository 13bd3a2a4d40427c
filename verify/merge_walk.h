// The comparison of a snapshot's entries with a tree of files as one merge join, directory by
// directory: the snapshot read through a storage::EntryCursor, the tree through readdir + a
// bytewise sort + lstat, both in walk order (docs/FORMAT.md §7.1). What it holds at any time is
// the directory being compared (its names, and the messages of the Maildir folder it belongs
// to), the open branch above it, and the findings - not the store. It computes what
// verify/tree_scan.h and verify/census_diff.h compute from whole lists, with the same results:
// the census of each side, the message diff (base = snapshot, other = tree) and, for a restored
// tree, the files that did not come back.
//
// Read-only, like verify/tree_scan.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/entry_cursor.h"
#include "storage/hash.h"
#include "storage/snapshot.h"
#include "storage/status.h"
#include "verify/census_diff.h"

namespace mv::verify {

enum class TreeKind {
  kRestored,  // every regular file hashed and checked against its entry; every source walked
  kLive,      // only Maildir messages hashed; entries of sources not given are skipped
};

struct MergeWalkResult {
  std::vector<storage::CensusRow> snapshot_census, tree_census;
  MessageDiff messages;  // base = the snapshot's messages, other = the tree's
  uint64_t files = 0, bytes = 0, messages_count = 0, mailboxes = 0;  // of the snapshot
  // kRestored: regular files missing or differing, sorted by path (`other_snapshots` empty), with
  // the blobs of each entry, in the same order.
  struct Damaged {
    std::string path, mailbox, what;
    std::vector<storage::BlobId> blobs;
  };
  std::vector<Damaged> damaged;
  // kRestored: entries flagged kFlagSqlite or kFlagSqliteRaw, sorted by path (blobs dropped),
  // and the (size, content hash) each was restored with, when it came back as a regular file.
  std::vector<storage::FileEntry> databases;
  std::map<std::string, std::pair<uint64_t, storage::BlobId>> database_files;
  // Per source given: why its root could not be opened (verify/tree_scan.h ScanTree's status),
  // or the unreadable entries below it ("<path>: <reason>", as ScanTree lists them).
  std::map<std::string, Status> root_errors;
  std::map<std::string, std::vector<std::string>> problems;
};

// Compares the entries of `cursor` with the trees `roots` (source name -> directory). nullopt
// when the two sides differ in a way only the comparison of whole lists resolves exactly (the
// snapshot's entries out of walk order, a source not given, a Maildir++ parent whose
// cur/new/tmp differ between the sides while both hold messages below it); the caller then
// compares whole lists. Errors only for an unreadable cursor.
Result<std::optional<MergeWalkResult>> MergeWalk(storage::EntryCursor& cursor,
                                                 const std::map<std::string, std::string>& roots,
                                                 TreeKind kind, const storage::KeyedHasher& hasher);

}  // namespace mv::verify
