// What the restorer and verify read from a repository: where a blob is, its bytes checked against
// its ID, and the manifest they restore (docs/FORMAT.md §5 packs, §6 index, §7 manifests). Obtained
// from Repository::OpenBlobReader(), which loads the index first, so no lookup can run against an
// index that was never read.
//
// Thread-safe for concurrent calls (the restorer reads packs from several workers); not against a
// concurrent write to the repository's index (a backup holding the lock is the only writer).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/entry_cursor.h"
#include "storage/hash.h"
#include "storage/index.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

class BlobReader {
 public:
  virtual ~BlobReader() = default;

  // The repository's keyed hash: blob IDs and content IDs are computed with it (§3).
  virtual const KeyedHasher& hasher() const = 0;

  // Where blob `id` is stored; nullopt when no index file (nor orphan pack) names it.
  virtual std::optional<BlobLocation> Find(const BlobId& id) const = 0;
  bool Has(const BlobId& id) const { return Find(id).has_value(); }
  // True when an index file could not be read (§6): a blob Find() misses may be in a pack that
  // `mailvault repair index` indexes again. Says which command a "not in the index" message names.
  virtual bool index_damaged() const = 0;

  // The pack file's path, for messages that name it.
  virtual std::string PackPath(const BlobId& pack) const = 0;
  // Reads the blobs of `pack` that `want` selects, in pack order. Each blob's bytes are hashed:
  // `visit` gets intact=false when they do not match the ID (the caller reports that blob
  // damaged). Fails only when the pack itself cannot be read; the blobs visited before stay
  // delivered.
  using WantFn = std::function<bool(const BlobId& id)>;
  using VisitFn = std::function<void(const BlobId& id, std::string_view data, bool intact)>;
  virtual Status ReadPackBlobs(const BlobId& pack, const WantFn& want,
                               const VisitFn& visit) const = 0;
  // Reads one blob (decompressing its pack up to it); kCorruption when its bytes do not match `id`.
  virtual Result<std::string> ReadBlob(const BlobId& id) const = 0;

  // The manifest of snapshot `id` (a full ID); a damaged one fails with kCorruption naming it.
  virtual Result<Snapshot> LoadSnapshot(const std::string& id) const = 0;
  // The same snapshot as a header and a cursor over its entries (storage/entry_cursor.h): what
  // restore and verify read, so their memory does not grow with the snapshot. The cursor refers
  // to this reader, which must outlive it.
  virtual Result<std::unique_ptr<EntryCursor>> OpenEntries(const std::string& id,
                                                           SnapshotMeta* meta) const = 0;
  // The root tree record (§7.5) of snapshot `id`, for a walk that reads the tree records itself
  // (storage/tree.h TreeLoader) and skips the ones it has already seen. Zero for a version-1/2
  // manifest, and from a reader that has no trees: read those with OpenEntries.
  virtual Result<BlobId> RootTree(const std::string& id) const { return BlobId{}; }
  // Every snapshot's ID (its manifest's name, §7), sorted; damaged ones included (LoadSnapshot
  // tells). For verify, which names the other snapshots that hold a damaged blob.
  virtual Result<std::vector<std::string>> SnapshotIds() const = 0;
};

}  // namespace mv::storage
