// What verify reads from a tree of files: the Maildir messages (with their place and content
// hash) and the census built from them, counted exactly as the archiver counts
// (storage/mailfiles/maildir.h). The same inventory is built from a snapshot's manifest entries,
// from a restored tree and from a live source, so the three can be compared message by message.
//
// Read-only: files are opened O_RDONLY (O_NOATIME where permitted), nothing is created.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/hash.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::verify {

struct MessageRecord {
  std::string source;   // snapshot source name ("mail")
  std::string mailbox;  // "alice@example.org"
  std::string folder;   // "INBOX", ".Sent"
  std::string unique;   // Maildir unique name (before ":2,")
  std::string path;     // "<source>/<relative path>" as in the manifest
  uint64_t size = 0;
  storage::BlobId content;
};

struct Inventory {
  std::vector<storage::CensusRow> census;  // sorted by source, mailbox, folder
  std::vector<MessageRecord> messages;     // sorted by path
};

// From manifest entries (what a snapshot claims to hold).
Inventory InventoryOfEntries(const std::vector<storage::FileEntry>& files);

struct ScanOptions {
  // Hash every regular file, not only Maildir messages (restored trees: every file is checked
  // against the manifest). Default: messages only (live sources).
  bool hash_all_files = false;
};

struct ScannedTree {
  Inventory inventory;
  // Every regular file found: "<source>/<rel>" -> (size, content hash or zero if not hashed).
  std::map<std::string, std::pair<uint64_t, storage::BlobId>> files;
  std::vector<std::string> problems;  // unreadable entries, "<path>: <reason>"
};

// Walks `root` (a directory, or a symlink to one, holding what the snapshot calls source
// `source`), without following symlinks below it. Every directory and file is opened relative to
// its parent's descriptor, as restore writes them, so paths longer than PATH_MAX below `root` are
// read like any other. Entries in Maildir tmp/ directories are listed but never counted as
// messages. NotFound when `root` does not exist (or is not a directory); unreadable entries below
// it are listed in `problems`.
Result<ScannedTree> ScanTree(const std::string& source, const std::string& root,
                             const storage::KeyedHasher& hasher, const ScanOptions& opts = {});

// Keyed hash of a whole file, streamed. Opens read-only with O_NOATIME when allowed.
Result<storage::BlobId> HashFile(const std::string& path, const storage::KeyedHasher& hasher);

// The pieces of ScanTree that verify/merge_walk.h walks with, so both read a tree alike.
// The directory of source `source` at `root` (a symlink to one is followed), as ScanTree opens
// it: NotFound when it is not there; the descriptor is the caller's to close.
Result<int> OpenTreeRoot(const std::string& source, const std::string& root);
// The names in directory `dfd` except . and .., unsorted; false with errno set when unreadable.
bool ListNames(int dfd, std::vector<std::string>* names);
// Keyed hash of regular file `name` in directory `dfd` (not following a symlink); `path` names
// it in errors.
Result<storage::BlobId> HashAt(int dfd, const std::string& name, const std::string& path,
                               const storage::KeyedHasher& hasher);

}  // namespace mv::verify
