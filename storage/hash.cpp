#include "storage/hash.h"

#include <xxhash.h>

#include <stdexcept>

namespace mv::storage {
namespace {

BlobId FromXXH(XXH128_hash_t h) {
  BlobId id;
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  std::memcpy(id.bytes.data(), c.digest, 16);
  return id;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ToHex(const void* data, size_t len) {
  static const char* kDigits = "0123456789abcdef";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string s(len * 2, '0');
  for (size_t i = 0; i < len; i++) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2) return false;
  out->resize(hex.size() / 2);
  for (size_t i = 0; i < out->size(); i++) {
    int hi = HexVal(hex[2 * i]), lo = HexVal(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

std::string BlobId::Hex() const { return ToHex(bytes.data(), bytes.size()); }

bool BlobId::FromHex(std::string_view hex, BlobId* out) {
  std::string raw;
  if (hex.size() != 32 || !storage::FromHex(hex, &raw)) return false;
  std::memcpy(out->bytes.data(), raw.data(), 16);
  return true;
}

bool BlobId::IsZero() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

KeyedHasher::KeyedHasher(std::string secret) : secret_(std::move(secret)) {
  if (secret_.size() < XXH3_SECRET_SIZE_MIN) throw std::invalid_argument("xxh3 secret too short");
}

BlobId KeyedHasher::Hash(const void* data, size_t len) const {
  return FromXXH(XXH3_128bits_withSecret(data, len, secret_.data(), secret_.size()));
}

KeyedHasher::Stream::Stream(const KeyedHasher& h) : state_(XXH3_createState()) {
  XXH3_128bits_reset_withSecret(static_cast<XXH3_state_t*>(state_), h.secret_.data(),
                                h.secret_.size());
}
KeyedHasher::Stream::~Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void KeyedHasher::Stream::Update(const void* data, size_t len) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, len);
}
BlobId KeyedHasher::Stream::Final() const {
  return FromXXH(XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_)));
}

BlobId PlainHash(const void* data, size_t len) { return FromXXH(XXH3_128bits(data, len)); }

PlainHashStream::PlainHashStream() : state_(XXH3_createState()) {
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}
PlainHashStream::~PlainHashStream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void PlainHashStream::Update(const void* data, size_t len) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, len);
}
BlobId PlainHashStream::Final() const {
  return FromXXH(XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_)));
}

}  // namespace mv::storage
