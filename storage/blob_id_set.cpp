#include "storage/blob_id_set.h"

#include <cstdint>
#include <cstring>

namespace mv::storage {
namespace {

bool Empty(const BlobId& id) {  // BlobId::IsZero, inline: it runs on every probe
  uint64_t lo, hi;
  std::memcpy(&lo, id.bytes.data(), 8);
  std::memcpy(&hi, id.bytes.data() + 8, 8);
  return (lo | hi) == 0;
}

}  // namespace

size_t BlobIdSet::SlotOf(const BlobId& id) const {
  size_t mask = slots_.size() - 1;
  size_t i = static_cast<size_t>(MixedBits(id)) & mask;
  while (!Empty(slots_[i]) && slots_[i] != id) i = (i + 1) & mask;
  return i;
}

bool BlobIdSet::Contains(const BlobId& id) const {
  if (id.IsZero()) return has_zero_;
  return !slots_.empty() && !Empty(slots_[SlotOf(id)]);
}

bool BlobIdSet::Insert(const BlobId& id) {
  if (id.IsZero()) {
    bool added = !has_zero_;
    has_zero_ = true;
    return added;
  }
  if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
  size_t i = SlotOf(id);
  if (!Empty(slots_[i])) return false;
  slots_[i] = id;
  size_++;
  return true;
}

void BlobIdSet::Grow() {
  std::vector<BlobId> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, BlobId{});
  for (const BlobId& id : old)
    if (!Empty(id)) slots_[SlotOf(id)] = id;
}

void BlobIdSet::Clear() {
  std::vector<BlobId>().swap(slots_);
  size_ = 0;
  has_zero_ = false;
}

}  // namespace mv::storage
