// Content addressing (docs/FORMAT.md §3): a blob's ID is XXH3-128 of its bytes, keyed with the
// repository's random secret, so nobody who can send mail (and cannot read the repository key)
// can craft two messages that collide. Pack and file-integrity checksums use the unkeyed hash.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mv::storage {

struct BlobId {
  std::array<uint8_t, 16> bytes{};

  std::string Hex() const;
  static bool FromHex(std::string_view hex, BlobId* out);
  bool IsZero() const;
  auto operator<=>(const BlobId&) const = default;
};

struct BlobIdHash {
  size_t operator()(const BlobId& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

// 64 bits that depend on every byte of the ID, for tables that place IDs by their bits: the keyed
// hash spreads real IDs, but IDs built by tests or read from a crafted file need not be.
inline uint64_t MixedBits(const BlobId& id) {
  uint64_t lo, hi;
  std::memcpy(&lo, id.bytes.data(), 8);
  std::memcpy(&hi, id.bytes.data() + 8, 8);
  uint64_t h = lo ^ (hi * 0x9E3779B97F4A7C15ull);  // splitmix64's finalizer over both halves
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

constexpr size_t kSecretSize = 192;  // XXH3 needs >= 136 bytes of secret

// Keyed XXH3-128. Thread-safe (stateless apart from the immutable secret).
class KeyedHasher {
 public:
  explicit KeyedHasher(std::string secret);
  BlobId Hash(const void* data, size_t len) const;

  // Streaming form for content hashed piece by piece (large files).
  class Stream {
   public:
    explicit Stream(const KeyedHasher& h);
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    void Update(const void* data, size_t len);
    BlobId Final() const;

   private:
    void* state_;
  };

  const std::string& secret() const { return secret_; }

 private:
  std::string secret_;
};

// Unkeyed XXH3-128 (pack file names, manifest/index trailers).
BlobId PlainHash(const void* data, size_t len);

class PlainHashStream {
 public:
  PlainHashStream();
  ~PlainHashStream();
  PlainHashStream(const PlainHashStream&) = delete;
  PlainHashStream& operator=(const PlainHashStream&) = delete;
  void Update(const void* data, size_t len);
  BlobId Final() const;

 private:
  void* state_;
};

std::string ToHex(const void* data, size_t len);
bool FromHex(std::string_view hex, std::string* out);

}  // namespace mv::storage
