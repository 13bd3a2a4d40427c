// Passphrase key files (docs/ENCRYPTION.md "Keys"): a repository's age identity wrapped by one
// passphrase, so that several passphrases open the same repository and changing one rewrites no
// data (as restic's key files). The file is JSON:
//   {"kind":"mailvault-key","version":1,"kdf":"argon2id13","ops":N,"mem":BYTES,
//    "salt":"<base64 16 bytes>","nonce":"<base64 24 bytes>","box":"<base64>"}
// where box = crypto_secretbox(identity, nonce, crypto_pwhash(passphrase, salt, ops, mem)).
// Not used by a command yet.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/crypto/age.h"
#include "storage/status.h"

namespace mv::storage::crypto {

// argon2id cost. Moderate is what `init` and `key add` use (about 1 s and 256 MiB here); a
// reader takes the cost the file records, refusing one beyond kMaxKeyMem or kMaxKeyOps (a
// crafted key file must not make a reader allocate without bound).
struct KdfCost {
  uint64_t ops = 0;
  uint64_t mem = 0;  // bytes
};
KdfCost ModerateKdfCost();
KdfCost InteractiveKdfCost();  // about 0.2 s: for tests
constexpr uint64_t kMaxKeyMem = uint64_t{2} << 30;
constexpr uint64_t kMaxKeyOps = 64;

// The key file text for `identity` under `passphrase`.
Result<std::string> WrapIdentity(const AgeIdentity& identity, std::string_view passphrase,
                                 const KdfCost& cost);
// The identity in key file `text` (named `path` in errors): kInvalidArgument "wrong passphrase"
// when the box does not open (a damaged box looks the same: the message says both), kCorruption
// when the file is not a key file, kUnsupported for a kdf or version this build does not know.
Result<AgeIdentity> UnwrapIdentity(std::string_view text, std::string_view passphrase,
                                   const std::string& path);

// A passphrase as read from a file: the whole content, less one trailing "\n" or "\r\n" (what
// `echo secret > file` and editors write). kInvalidArgument naming the file when it is empty
// (or only that newline). The passphrase itself never appears in a message.
Result<std::string> PassphraseFromFile(std::string_view content, const std::string& path);

}  // namespace mv::storage::crypto
