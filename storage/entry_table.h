// A compact, read-only view of a snapshot's entries (docs/FORMAT.md §7), for change detection:
// paths live in one arena and blob lists in one array, so loading a 100k-file parent costs a
// few flat allocations instead of two per file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/hash.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

class EntryTable {
 public:
  struct Row {
    uint64_t size, dev, ino;
    int64_t mtime_ns, ctime_ns;
    uint32_t path_off, path_len;
    uint32_t blob_off, blob_count;
    uint32_t flags;
    FileType type;
    BlobId content;
  };

  // Decodes a sealed flat manifest (versions 1-2, as read from snapshots/ID). A version-3 one
  // decodes to no rows and sets *root (its entries are in tree records: the repository adds
  // them with Add()).
  static Result<EntryTable> Decode(std::string_view data, const std::string& path,
                                   BlobId* root = nullptr);
  void Add(const FileEntry& f);

  size_t size() const { return rows_.size(); }
  const Row& row(size_t i) const { return rows_[i]; }
  std::string_view path(const Row& r) const {
    return std::string_view(paths_).substr(r.path_off, r.path_len);
  }
  std::span<const BlobId> blobs(const Row& r) const {
    return {blobs_.data() + r.blob_off, r.blob_count};
  }

 private:
  std::vector<Row> rows_;
  std::string paths_;
  std::vector<BlobId> blobs_;
};

}  // namespace mv::storage
