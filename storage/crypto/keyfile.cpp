// Passphrase key files (storage/crypto/keyfile.h).
#include "storage/crypto/keyfile.h"

#include "storage/crypto/base64.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

namespace mv::storage::crypto {
namespace {

std::string_view Bytes(const unsigned char* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

constexpr std::string_view kKind = "mailvault-key";
constexpr std::string_view kKdf = "argon2id13";

// The secretbox key for `passphrase`; false when argon2id fails (out of memory).
bool DeriveKey(std::string_view passphrase, const unsigned char* salt, const KdfCost& cost,
               unsigned char key[crypto_secretbox_KEYBYTES]) {
  return crypto_pwhash(key, crypto_secretbox_KEYBYTES, passphrase.data(), passphrase.size(), salt,
                       cost.ops, static_cast<size_t>(cost.mem), crypto_pwhash_ALG_ARGON2ID13) == 0;
}

}  // namespace

KdfCost ModerateKdfCost() {
  return {crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
}
KdfCost InteractiveKdfCost() {
  return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
}

Result<std::string> WrapIdentity(const AgeIdentity& identity, std::string_view passphrase,
                                 const KdfCost& cost) {
  if (sodium_init() < 0) return Status::IOError("libsodium did not initialise");
  if (passphrase.empty()) return Status::Invalid("the passphrase is empty");
  unsigned char salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
  randombytes_buf(salt, sizeof salt);
  randombytes_buf(nonce, sizeof nonce);
  unsigned char key[crypto_secretbox_KEYBYTES];
  if (!DeriveKey(passphrase, salt, cost, key))
    return Status::IOError("argon2id could not run (out of memory? it needs " +
                           std::to_string(cost.mem >> 20) + " MiB)");
  unsigned char box[crypto_secretbox_MACBYTES + 32];
  crypto_secretbox_easy(box, identity.secret.data(), identity.secret.size(), nonce, key);
  sodium_memzero(key, sizeof key);
  nlohmann::json j = {{"kind", kKind},
                      {"version", 1},
                      {"kdf", kKdf},
                      {"ops", cost.ops},
                      {"mem", cost.mem},
                      {"salt", Base64(Bytes(salt, sizeof salt), true)},
                      {"nonce", Base64(Bytes(nonce, sizeof nonce), true)},
                      {"box", Base64(Bytes(box, sizeof box), true)}};
  return j.dump(2) + "\n";
}

Result<AgeIdentity> UnwrapIdentity(std::string_view text, std::string_view passphrase,
                                   const std::string& path) {
  if (sodium_init() < 0) return Status::IOError("libsodium did not initialise", path);
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto str = [&](const char* k) -> std::string {
    return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
  };
  auto num = [&](const char* k) -> int64_t {
    return j.is_object() && j.contains(k) && j[k].is_number_unsigned() ? j[k].get<int64_t>() : -1;
  };
  if (!j.is_object() || str("kind") != kKind)
    return Status::Corruption(
        "not a mailvault key file (damaged?); restore it from your copy of "
        "the repository's keys/, or open the repository with another key",
        path);
  if (num("version") != 1 || str("kdf") != kKdf)
    return Status::Unsupported("key file version " + std::to_string(num("version")) + ", kdf '" +
                                   str("kdf") +
                                   "' is not one this build knows (version 1, argon2id13): "
                                   "use a newer mailvault",
                               path);
  KdfCost cost{static_cast<uint64_t>(num("ops")), static_cast<uint64_t>(num("mem"))};
  std::string salt, nonce, box;
  if (num("ops") < static_cast<int64_t>(crypto_pwhash_OPSLIMIT_MIN) ||
      num("mem") < static_cast<int64_t>(crypto_pwhash_MEMLIMIT_MIN) ||
      !FromBase64(str("salt"), true, &salt) || salt.size() != crypto_pwhash_SALTBYTES ||
      !FromBase64(str("nonce"), true, &nonce) || nonce.size() != crypto_secretbox_NONCEBYTES ||
      !FromBase64(str("box"), true, &box) || box.size() != crypto_secretbox_MACBYTES + 32)
    return Status::Corruption(
        "key file is damaged (a field is missing or malformed); restore it "
        "from your copy of the repository's keys/",
        path);
  if (cost.ops > kMaxKeyOps || cost.mem > kMaxKeyMem)
    return Status::Corruption("key file asks for an argon2id cost beyond what mailvault writes (" +
                                  std::to_string(cost.ops) + " passes, " +
                                  std::to_string(cost.mem >> 20) + " MiB): refused",
                              path);
  if (passphrase.empty()) return Status::Invalid("the passphrase is empty", path);
  unsigned char key[crypto_secretbox_KEYBYTES];
  if (!DeriveKey(passphrase, reinterpret_cast<const unsigned char*>(salt.data()), cost, key))
    return Status::IOError("argon2id could not run (out of memory? it needs " +
                               std::to_string(cost.mem >> 20) + " MiB)",
                           path);
  AgeIdentity id;
  int opened = crypto_secretbox_open_easy(
      id.secret.data(), reinterpret_cast<const unsigned char*>(box.data()), box.size(),
      reinterpret_cast<const unsigned char*>(nonce.data()), key);
  sodium_memzero(key, sizeof key);
  if (opened != 0) {
    sodium_memzero(id.secret.data(), id.secret.size());
    return Status::Invalid(
        "wrong passphrase for this key file (or its sealed identity is damaged); try another "
        "passphrase or key file",
        path);
  }
  return id;
}

Result<std::string> PassphraseFromFile(std::string_view content, const std::string& path) {
  std::string_view p = content;
  if (p.size() >= 2 && p.substr(p.size() - 2) == "\r\n")
    p.remove_suffix(2);
  else if (!p.empty() && p.back() == '\n')
    p.remove_suffix(1);
  if (p.empty())
    return Status::Invalid("the passphrase file is empty (a passphrase of one line is expected)",
                           path);
  return std::string(p);
}

}  // namespace mv::storage::crypto
