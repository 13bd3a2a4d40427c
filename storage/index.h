// The index (docs/FORMAT.md §6): blob ID -> (pack, offset, length). Derived data: it can be
// rebuilt by listing every pack. On disk it is a set of sealed files under index/, each naming
// the packs one backup wrote and their blobs; in memory, the union of them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/hash.h"
#include "storage/pack.h"
#include "storage/status.h"

namespace mv::storage {

struct BlobLocation {
  BlobId pack;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Not thread-safe for writes; concurrent const lookups are fine.
class Index {
 public:
  void AddPack(const PackInfo& pack);
  bool Has(const BlobId& id) const { return blobs_.count(id) != 0; }
  std::optional<BlobLocation> Find(const BlobId& id) const;
  size_t blob_count() const { return blobs_.size(); }
  size_t pack_count() const { return packs_.size(); }
  const std::vector<PackInfo>& packs() const { return packs_; }
  bool HasPack(const BlobId& pack) const { return pack_ix_.count(pack) != 0; }

 private:
  struct Slot {
    uint32_t pack_ix;
    uint32_t entry_ix;
  };
  std::vector<PackInfo> packs_;
  std::unordered_map<BlobId, uint32_t, BlobIdHash> pack_ix_;
  std::unordered_map<BlobId, Slot, BlobIdHash> blobs_;
};

// One index file's content.
std::string EncodeIndexFile(const std::vector<PackInfo>& packs);
Result<std::vector<PackInfo>> DecodeIndexFile(std::string_view data, const std::string& path);

}  // namespace mv::storage
