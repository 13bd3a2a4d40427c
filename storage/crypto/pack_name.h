// Pack names in an encrypted repository of format version 9 (docs/FORMAT.md §14.2): the first 128
// bits of the SHA-256 of the age file as stored (OpenSSL: about 1.3 GB/s with the SHA
// extensions here, against 0.74 GB/s for libsodium's BLAKE2b). Anyone can check a pack against its
// name without a key
// (`mailvault check` without one does), and nobody who holds only the recipient, which is enough
// to make a valid age file, can make another file with the same name. Versions 7 and 8 name an
// encrypted pack by the XXH3-128 of its plaintext, as a plain repository does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "storage/backend.h"
#include "storage/hash.h"

namespace mv::storage::crypto {

class PackNameHash {
 public:
  PackNameHash();
  ~PackNameHash();
  PackNameHash(const PackNameHash&) = delete;
  PackNameHash& operator=(const PackNameHash&) = delete;
  void Update(std::string_view bytes);
  BlobId Final();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The kCorruption a pack whose bytes do not hash to its name gets, naming `path`.
Status PackNameMismatch(const std::string& path);

// A reader over `in`, an age file of `size` bytes, that fails with PackNameMismatch on the read
// that reaches its end when its bytes do not hash to `name`.
std::unique_ptr<ObjectReader> NewNameCheckingReader(std::unique_ptr<ObjectReader> in, uint64_t size,
                                                    const BlobId& name, std::string path);

}  // namespace mv::storage::crypto
