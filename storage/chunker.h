// Content-defined chunking for large files (docs/FORMAT.md §4): FastCDC with a gear table
// derived from the repository secret, so a small change in a 2 GiB database stores only the
// chunks around it, and chunk boundaries reveal nothing without the key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace mv::storage {

struct ChunkerParams {
  size_t min_size = 512 * 1024;
  size_t avg_size = 1024 * 1024;  // a power of two
  size_t max_size = 4 * 1024 * 1024;
  // Files of at most this size are one blob; larger ones are chunked.
  size_t file_threshold = 4 * 1024 * 1024;
};

// What the chunker can cut with (docs/FORMAT.md §4): 1 <= min <= avg <= max <= kMaxChunkerSize,
// avg a power of two of at least 2, threshold at most kMaxChunkerSize. Anything else in a
// config is damage: avg 1 makes a negative shift, max 0 a cut of no bytes (a backup that never
// ends).
constexpr size_t kMaxChunkerSize = size_t{1} << 30;
bool ChunkerParamsValid(const ChunkerParams& p);

class Chunker {
 public:
  // `p` must be ChunkerParamsValid.
  Chunker(const std::string& secret, ChunkerParams p = {});
  // Length of the next chunk starting at `data` (`len` bytes available). When `eof` is false
  // and no boundary was found within `len`, returns 0: give it more data (at least max_size).
  size_t NextCut(const uint8_t* data, size_t len, bool eof) const;
  const ChunkerParams& params() const { return p_; }

 private:
  ChunkerParams p_;
  uint64_t mask_small_, mask_large_;
  std::array<uint64_t, 256> gear_{};
};

}  // namespace mv::storage
