// age v1 files (https://c2sp.org/age) with X25519 recipients: the container encrypted packs are
// to be (issue #7), so that in an emergency `age -d -i identity.txt pack.tar.zst.age | tar --zstd
// -tvf -` opens one with Debian's `age`. Files written here decrypt with `age` byte for byte, and
// files `age` writes decrypt here (tests/age_test.cpp checks both against Debian's age 1.1.1).
//
// The format in short: a text header (`age-encryption.org/v1`, one stanza per recipient holding
// the random 16-byte file key sealed to that recipient, and an HMAC of the header under a key
// derived from the file key), then a 16-byte nonce, then the plaintext in 64 KiB chunks, each
// sealed with ChaCha20-Poly1305 under the payload key (HKDF of the file key and the nonce), the
// last one flagged so a cut file is detected. Chunk k of the plaintext is at a fixed place in the
// file, so a range of it can be decrypted alone (AgeReadHeader, AgeDecryptChunks).
//
// age authenticates the file, not its sender: anyone with the recipient can make a valid one.
// What binds a file to its name and repository is the caller's (see shared notes on encryption).
// Built on libsodium 1.0.18 (X25519, HMAC-SHA-256; HKDF from the HMAC) and OpenSSL 3
// (ChaCha20-Poly1305 of the payload: the same construction, faster).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace mv::storage::crypto {

constexpr uint64_t kAgeChunk = 64 << 10;  // plaintext bytes per payload chunk
constexpr uint64_t kAgeTag = 16;          // what sealing adds to each chunk

struct AgeIdentity {
  std::array<uint8_t, 32> secret{};
};
struct AgeRecipient {
  std::array<uint8_t, 32> pub{};
  bool operator==(const AgeRecipient& o) const { return pub == o.pub; }
};

// A new random identity (as `age-keygen` makes), and the recipient that encrypts to it.
AgeIdentity GenerateAgeIdentity();
AgeRecipient RecipientOf(const AgeIdentity& id);

// The text forms: `AGE-SECRET-KEY-1…` and `age1…` (Bech32).
std::string FormatIdentity(const AgeIdentity& id);
std::string FormatRecipient(const AgeRecipient& r);
// The first identity in `text`, an identity file as `age-keygen` writes it (lines starting with
// '#' and blank lines are skipped). kInvalidArgument naming `what` (a file name, never the key)
// when there is none or it does not decode.
Result<AgeIdentity> ParseIdentity(std::string_view text, const std::string& what);
Result<AgeRecipient> ParseRecipient(std::string_view text);

// Encrypts a stream to `recipients` (at least one). Write() takes any amount; Finish() seals the
// last chunk and must be called once. The file's bytes go to `out` as they are made.
class AgeEncryptor {
 public:
  using Sink = std::function<Status(std::string_view)>;
  static Result<std::unique_ptr<AgeEncryptor>> Create(const std::vector<AgeRecipient>& recipients,
                                                      Sink out);
  ~AgeEncryptor();
  Status Write(std::string_view data);
  Status Finish();
  // Bytes of the age file for `plain` bytes of plaintext (with one recipient).
  static uint64_t FileSize(uint64_t plain, uint64_t header_bytes);

 private:
  AgeEncryptor() = default;
  Status SealChunk(std::string_view m, bool last);
  Sink out_;
  std::array<uint8_t, 32> payload_key_{};
  uint64_t counter_ = 0;
  std::string buf_;     // the plaintext of the chunk not sealed yet (at most kAgeChunk bytes)
  std::string sealed_;  // the last chunk sealed, reused
  bool finished_ = false;
};

// The whole file at once.
Result<std::string> AgeEncrypt(std::string_view plain, const std::vector<AgeRecipient>& recipients);
// Decrypts a whole age file. Errors name `path`: kInvalidArgument when no stanza is for
// `identity` (the wrong identity), kCorruption when the header or a chunk does not
// authenticate, or the file is cut short or has bytes after its last chunk.
Result<std::string> AgeDecrypt(std::string_view file, const AgeIdentity& identity,
                               const std::string& path);

// For reading part of a file: its header, checked, and the key of its payload.
struct AgeHeader {
  uint64_t payload_offset = 0;  // where chunk 0 starts (after the header and the nonce)
  std::array<uint8_t, 32> payload_key{};
};
// Reads the header from `prefix`, the file's first bytes. kNotFound (with *need set to a larger
// prefix length to try) when `prefix` ends before the header and nonce do.
Result<AgeHeader> AgeReadHeader(std::string_view prefix, const AgeIdentity& identity,
                                const std::string& path, uint64_t* need);
// Where plaintext chunk `k` is in the file: [AgeChunkOffset(h, k), + kAgeChunk + kAgeTag).
inline uint64_t AgeChunkOffset(const AgeHeader& h, uint64_t k) {
  return h.payload_offset + k * (kAgeChunk + kAgeTag);
}
// Decrypts `sealed`, the file's bytes from chunk `first` on (whole chunks; the file's last chunk
// may be shorter), of a file of `file_size` bytes in all (which says which chunk is the last).
Result<std::string> AgeDecryptChunks(const AgeHeader& h, uint64_t file_size, uint64_t first,
                                     std::string_view sealed, const std::string& path);

}  // namespace mv::storage::crypto
