// Version-3 snapshots (docs/FORMAT.md §7.5): reading and writing the tree records that hold a
// snapshot's entries, one record per directory, stored as blobs and shared between snapshots
// when a directory did not change.
#pragma once

#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/blob_reader.h"
#include "storage/blob_sink.h"
#include "storage/entry_cursor.h"
#include "storage/hash.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

// Reads tree records through a BlobReader. Tree records are packed together, in packs of their
// own (§7.5), and read in roughly the order they were written, so the decompressed blobs of the
// last few packs are kept: reading a tree costs no more than one decompression of its pack.
// Not thread-safe: one per reader thread.
class TreeLoader {
 public:
  // What stays cached once a record is loaded:
  // - kAll: every record of the cached packs (a reader that may load a record again, as the
  //   archiver's parent lookups do);
  // - kSmall: records under kSmallRecord bytes (a cursor, which loads each directory once; small
  //   records - empty tmp/, a short folder - recur at many places of one tree);
  // - kNone: none (a walk that skips the trees it has seen, as prune's).
  // The cache then holds records still to come, and loading a dropped one again costs a new read
  // of its pack.
  enum class Keep { kAll, kSmall, kNone };
  static constexpr size_t kSmallRecord = 4096;
  explicit TreeLoader(const BlobReader& blobs, size_t cache_packs = 4, Keep keep = Keep::kAll)
      : blobs_(blobs), cache_packs_(cache_packs), keep_(keep) {}
  // The entries of tree `id` of directory `dir`, appended to *out with full paths. A missing or
  // damaged record fails naming the directory and `mailvault check`.
  Status Load(const BlobId& id, std::string_view dir, std::vector<FileEntry>* out);
  // The same record's entries as views (storage/snapshot.h ForEachTreeItem), none copied. `fn`
  // must not use this loader (its views point into the loader's cache).
  Status Visit(const BlobId& id, std::string_view dir,
               const std::function<Status(const TreeItem&)>& fn);

 private:
  Result<const std::string*> Get(const BlobId& id, std::string_view dir);
  void Release(const BlobId& id, size_t size);  // drops a record read, as keep_ says
  const BlobReader& blobs_;
  size_t cache_packs_;
  Keep keep_;
  struct CachedPack {
    BlobId pack;
    std::unordered_map<BlobId, std::string, BlobIdHash> blobs;
  };
  std::list<CachedPack> cache_;  // most recently used first
};

// A cursor over the entries below root tree `root` (storage/entry_cursor.h). Holds the records
// of the open directories, and of cached packs the records not read yet (TreeLoader::kSmall).
// `blobs` must outlive it. `once`: TreeLoader::kNone, for a walk that never descends into a tree
// it has seen (SkipChildren).
std::unique_ptr<EntryCursor> TreeCursor(const BlobReader& blobs, const BlobId& root,
                                        bool once = false);

// Stores `entries` (in walk order, as the archiver produced them; every entry's parent directory
// is an earlier entry, or it is a source root) as tree records through `sink`, bottom up, and
// returns the root tree's ID. Records the sink already holds are not stored again. `worker` is
// the sink's worker slot to use.
Result<BlobId> StoreTrees(BlobSink& sink, int worker, std::vector<FileEntry>& entries);
// Stores one directory's record (children sorted by name, directories with `tree` set).
Result<BlobId> StoreTree(BlobSink& sink, int worker, std::span<const FileEntry> children);

}  // namespace mv::storage
