#include "storage/chunker.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>

namespace mv::storage {

bool ChunkerParamsValid(const ChunkerParams& p) {
  return p.min_size >= 1 && p.min_size <= p.avg_size && p.avg_size <= p.max_size &&
         p.max_size <= kMaxChunkerSize && p.avg_size >= 2 && std::has_single_bit(p.avg_size) &&
         p.file_threshold <= kMaxChunkerSize;
}

Chunker::Chunker(const std::string& secret, ChunkerParams p) : p_(p) {
  for (size_t i = 0; i < gear_.size(); i++) {
    std::string seed = "mailvault-gear-" + std::to_string(i) + secret;
    gear_[i] = XXH3_64bits(seed.data(), seed.size());
  }
  // Normalized chunking (FastCDC level 1): harder to cut before the average, easier after.
  int bits = std::countr_zero(p_.avg_size);
  auto mask_of = [](int n) { return n >= 64 ? ~0ULL : ((1ULL << n) - 1) << (64 - n); };
  mask_small_ = mask_of(bits + 1);
  mask_large_ = mask_of(bits - 1);
}

size_t Chunker::NextCut(const uint8_t* data, size_t len, bool eof) const {
  if (len <= p_.min_size) return eof ? len : 0;
  size_t normal = std::min(p_.avg_size, len);
  size_t limit = std::min(p_.max_size, len);
  uint64_t h = 0;
  size_t i = p_.min_size;
  for (; i < normal; i++) {
    h = (h << 1) + gear_[data[i]];
    if (!(h & mask_small_)) return i + 1;
  }
  for (; i < limit; i++) {
    h = (h << 1) + gear_[data[i]];
    if (!(h & mask_large_)) return i + 1;
  }
  if (limit == p_.max_size || eof) return limit;
  return 0;
}

}  // namespace mv::storage
