// A set of blob IDs in one flat open-addressing table (linear probing): 16 bytes a slot, grown
// before it is 3/4 full, so 21-43 bytes an ID where a node-based std::unordered_set costs about
// 56. For bookkeeping that grows with the blobs of a backup (storage/blob_writer.h).
#pragma once

#include <cstddef>
#include <vector>

#include "storage/hash.h"

namespace mv::storage {

// Not thread-safe: the owner serializes access.
class BlobIdSet {
 public:
  // Adds `id`; true when it was not in the set yet.
  bool Insert(const BlobId& id);
  bool Contains(const BlobId& id) const;
  size_t size() const { return size_ + (has_zero_ ? 1 : 0); }
  // Empties the set and frees its table.
  void Clear();

 private:
  size_t SlotOf(const BlobId& id) const;  // where probing for `id` ends: it or an empty slot
  void Grow();

  std::vector<BlobId> slots_;  // power-of-two size; the all-zero ID marks an empty slot
  size_t size_ = 0;            // non-zero IDs in slots_
  bool has_zero_ = false;      // the all-zero ID, kept aside since it marks empty slots
};

}  // namespace mv::storage
