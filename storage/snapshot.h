// Snapshot manifests (docs/FORMAT.md §7): one sealed file per snapshot under snapshots/, named by
// the snapshot ID. The header (JSON) holds the metadata and the Maildir census so listings are
// cheap; the body holds one record per file, directory and symlink, sorted by path.
// storage/ does not interpret the census: it stores the rows the archiver computed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "storage/hash.h"
#include "storage/status.h"

namespace mv::storage {

enum class FileType : uint8_t { kRegular = 1, kDirectory = 2, kSymlink = 3 };

// Entry flags (docs/FORMAT.md §7). Bits 1-4 are format version 2; a version-1 manifest has none.
enum FileFlags : uint32_t {
  kFlagSqlite = 1,           // content is a consistent image taken with SQLite's online backup API
  kFlagSqliteRaw = 1u << 1,  // starts with the SQLite header, but the online backup API could not
                             // open it (corrupt, not a database): the raw bytes, as read
  kFlagHardLink = 1u << 2,   // regular file: another name of the inode of the entry `link_target`
                             // (an earlier path of this snapshot); content and blobs kept as well
  kFlagXattrs = 1u << 3,     // `xattrs` is not empty
  kFlagChangedWhileRead = 1u << 4,  // changed while it was read: stored as last read; never
                                    // reused by the stat shortcut (§7.2)
};

// One extended attribute (user.* or system.posix_acl_*), value as the kernel returns it.
struct Xattr {
  std::string name, value;
  bool operator==(const Xattr&) const = default;
};

struct FileEntry {
  std::string path;  // "<source>/<relative path>", '/'-separated, raw bytes (any encoding)
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  uint64_t dev = 0, ino = 0;
  uint32_t flags = 0;
  std::string link_target;    // symlinks: the target; kFlagHardLink files: the first path
  BlobId content;             // keyed hash of the whole content (regular files)
  std::vector<BlobId> blobs;  // the content, in order; one blob unless chunked
  std::vector<Xattr> xattrs;  // regular files and directories; kFlagXattrs iff not empty
  BlobId tree;  // directories read from a version-3 snapshot: the ID of their tree record
};

struct SourceInfo {
  std::string name;
  std::string path;  // host path at backup time
};

// One row of the Maildir census (docs/FORMAT.md §7.3).
struct CensusRow {
  std::string source;
  std::string mailbox;  // Maildir root relative to the source ("alice@example.org")
  std::string folder;   // "INBOX" or the Maildir++ folder name (".Sent", ".Archive.2024")
  uint64_t messages = 0;
  uint64_t bytes = 0;
  std::string digest;  // order-independent digest of message contents (32 hex)
};

struct SnapshotMeta {
  std::string id;       // 32 hex
  int64_t time = 0;     // unix seconds, when the backup started
  int64_t time_ns = 0;  // the same in nanoseconds: orders snapshots taken within a second
  std::string host;
  std::string parent;  // snapshot used for the stat shortcut, or empty
  std::map<std::string, std::string> tags;
  std::vector<SourceInfo> sources;
  std::vector<CensusRow> census;
  uint64_t files = 0, bytes = 0;  // totals of this snapshot (regular files)
  uint64_t bytes_new = 0, bytes_packed = 0;
  uint64_t problems = 0;   // files that could not be read (partial snapshot)
  std::string stats_json;  // free-form JSON object with backup statistics
};

struct Snapshot {
  SnapshotMeta meta;
  std::vector<FileEntry> files;  // in walk order (§7.1)
  // Version 3: the root tree record (§7.5), whose entries are the sources' root directories.
  // DecodeSnapshot of a version-3 manifest sets it and leaves `files` empty; the repository's
  // LoadSnapshot reads the entries from the trees into `files` and clears it.
  BlobId tree;
};

// Version 3 (a header and the root tree's ID) when `tree` is set, else version 2 (the flat list
// of `files`).
std::string EncodeSnapshot(const Snapshot& snap);
Result<Snapshot> DecodeSnapshot(std::string_view data, const std::string& path);

// Tree records (§7.5): the entries of one directory, sorted by name, each directory entry with
// the ID of its own tree record. `children` have full paths; only their last component is kept.
std::string EncodeTree(std::span<const FileEntry> children);
std::string EncodeTree(std::span<const FileEntry* const> children);
// Appends the entries of tree record `data` for directory `dir` ("" for the root) to *out, with
// full paths. `where` names the record for messages.
Status DecodeTree(std::string_view data, std::string_view dir, const std::string& where,
                  std::vector<FileEntry>* out);
// One entry of a tree record, as views into its bytes (valid during the call): for walks that
// look at a few fields of many entries (find, history), without building a FileEntry each.
struct TreeItem {
  std::string_view name;  // the last path component
  FileType type = FileType::kRegular;
  uint64_t size = 0;
  BlobId content;            // regular files
  BlobId tree;               // directories
  std::string_view blobs;    // regular files: the blob IDs, 16 bytes each
  BlobId FirstBlob() const;  // zero when there is none
};
// Calls fn for each entry of tree record `data` (directory `dir`), validated as DecodeTree does;
// stops at the first error fn returns.
Status ForEachTreeItem(std::string_view data, std::string_view dir, const std::string& where,
                       const std::function<Status(const TreeItem&)>& fn);
Result<SnapshotMeta> DecodeSnapshotHeader(const std::string& header_json, const std::string& path);
std::string_view SnapshotMagic();  // the version written (3)
uint8_t SnapshotOldestVersion();   // the oldest version read (1)

}  // namespace mv::storage
