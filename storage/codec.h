// Little binary codec for the index and manifest bodies (docs/FORMAT.md §2): unsigned LEB128
// varints, zig-zag signed varints, length-prefixed byte strings, fixed 16-byte IDs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "storage/hash.h"

namespace mv::storage {

class Encoder {
 public:
  void U(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void S(int64_t v) { U((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void Str(std::string_view s) {
    U(s.size());
    buf_.append(s);
  }
  void Id(const BlobId& id) { buf_.append(reinterpret_cast<const char*>(id.bytes.data()), 16); }
  void Raw(std::string_view s) { buf_.append(s); }
  std::string& buf() { return buf_; }

 private:
  std::string buf_;
};

// Decoder never reads past the end; after any failed read ok() is false and values are 0/empty.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  uint64_t U() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return Fail();
      uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail();
  }
  int64_t S() {
    uint64_t u = U();
    return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
  }
  std::string_view Str() { return Raw(U()); }
  // `n` raw bytes (a view into the input).
  std::string_view Raw(uint64_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      Fail();
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  BlobId Id() {
    BlobId id;
    if (in_.size() - pos_ < 16) {
      Fail();
      return id;
    }
    std::memcpy(id.bytes.data(), in_.data() + pos_, 16);
    pos_ += 16;
    return id;
  }
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  uint64_t Fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace mv::storage
