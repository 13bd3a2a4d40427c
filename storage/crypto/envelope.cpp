// storage/crypto/envelope.h
#include "storage/crypto/envelope.h"

#include "storage/crypto/base64.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

namespace mv::storage::crypto {
namespace {

constexpr size_t kMac = crypto_auth_hmacsha256_BYTES;

std::string_view View(const std::array<uint8_t, 32>& a) {
  return std::string_view(reinterpret_cast<const char*>(a.data()), a.size());
}

std::array<uint8_t, kMac> ObjectMac(const std::array<uint8_t, 32>& auth, std::string_view repo,
                                    std::string_view name, std::string_view plain) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, auth.data(), auth.size());
  static const unsigned char kZero = 0;
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(repo.data()),
                                repo.size());
  crypto_auth_hmacsha256_update(&st, &kZero, 1);
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(name.data()),
                                name.size());
  crypto_auth_hmacsha256_update(&st, &kZero, 1);
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(plain.data()),
                                plain.size());
  std::array<uint8_t, kMac> mac;
  crypto_auth_hmacsha256_final(&st, mac.data());
  return mac;
}

// S and A as JSON fields.
nlohmann::json SecretsJson(const RepoSecrets& s) {
  return {{"content", Base64(s.content, true)}, {"auth", Base64(View(s.auth), true)}};
}
bool SecretsFrom(const nlohmann::json& j, RepoSecrets* s) {
  std::string auth;
  if (!j.is_object() || !j.contains("content") || !j["content"].is_string() ||
      !j.contains("auth") || !j["auth"].is_string() ||
      !FromBase64(j["content"].get<std::string>(), true, &s->content) || s->content.empty() ||
      !FromBase64(j["auth"].get<std::string>(), true, &auth) || auth.size() != s->auth.size())
    return false;
  std::memcpy(s->auth.data(), auth.data(), auth.size());
  return true;
}

}  // namespace

Result<RepoSecrets> GenerateRepoSecrets(std::string content_secret) {
  if (sodium_init() < 0) return Status::IOError("libsodium did not initialise");
  RepoSecrets s;
  s.content = std::move(content_secret);
  randombytes_buf(s.auth.data(), s.auth.size());
  return s;
}

Result<std::string> SealSecrets(const RepoSecrets& s, const AgeRecipient& r) {
  nlohmann::json j = SecretsJson(s);
  j["kind"] = "mailvault-secrets";
  j["version"] = 1;
  return AgeEncrypt(j.dump(), {r});
}

Result<RepoSecrets> OpenSecrets(std::string_view file, const AgeIdentity& id,
                                const std::string& path) {
  MV_ASSIGN_OR_RETURN(std::string plain, AgeDecrypt(file, id, path));
  auto j = nlohmann::json::parse(plain, nullptr, false);
  RepoSecrets s;
  if (!j.is_object() || j.value("kind", "") != "mailvault-secrets" || !SecretsFrom(j, &s))
    return Status::Corruption("keys/secrets decrypts but holds no repository secrets", path);
  return s;
}

std::string EncodeAgentKey(const AgentKey& k) {
  nlohmann::json j = SecretsJson(k.secrets);
  j["kind"] = "mailvault-agent-key";
  j["version"] = 1;
  j["repository"] = k.repository;
  j["recipient"] = FormatRecipient(k.recipient);
  return j.dump(2) + "\n";
}

Result<AgentKey> DecodeAgentKey(std::string_view text, const std::string& path,
                                std::string_view repository_id) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  AgentKey k;
  auto damaged = [&] {
    return Status::Corruption(
        "not a mailvault agent key file (damaged?); write a new one with the repository's "
        "identity",
        path);
  };
  if (!j.is_object() || j.value("kind", "") != "mailvault-agent-key" || !j.contains("repository") ||
      !j["repository"].is_string() || !j.contains("recipient") || !j["recipient"].is_string() ||
      !SecretsFrom(j, &k.secrets))
    return damaged();
  auto r = ParseRecipient(j["recipient"].get<std::string>());
  if (!r.ok()) return damaged();
  k.recipient = *r;
  k.repository = j["repository"].get<std::string>();
  if (!repository_id.empty() && k.repository != repository_id)
    return Status::Invalid("this agent key belongs to repository " + k.repository +
                               ", not to this one (" + std::string(repository_id) +
                               "): use the key written for this repository",
                           path);
  return k;
}

Result<std::string> SealObject(std::string_view plain, std::string_view name,
                               std::string_view repository, const AgeRecipient& r,
                               const std::array<uint8_t, 32>& auth) {
  std::array<uint8_t, kMac> mac = ObjectMac(auth, repository, name, plain);
  std::string out;
  MV_ASSIGN_OR_RETURN(auto e, AgeEncryptor::Create({r}, [&](std::string_view b) {
                        out.append(b);
                        return Status::Ok();
                      }));
  MV_RETURN_IF_ERROR(e->Write(plain));
  MV_RETURN_IF_ERROR(e->Write(std::string_view(reinterpret_cast<const char*>(mac.data()), kMac)));
  MV_RETURN_IF_ERROR(e->Finish());
  return out;
}

Result<std::string> OpenObject(std::string_view file, std::string_view name,
                               std::string_view repository, const AgeIdentity& id,
                               const std::array<uint8_t, 32>& auth, const std::string& path) {
  MV_ASSIGN_OR_RETURN(std::string plain, AgeDecrypt(file, id, path));
  if (plain.size() < kMac)
    return Status::Corruption("encrypted object too short to carry its MAC", path);
  std::string_view body = std::string_view(plain).substr(0, plain.size() - kMac);
  std::array<uint8_t, kMac> want = ObjectMac(auth, repository, name, body);
  if (sodium_memcmp(want.data(), plain.data() + body.size(), kMac) != 0)
    return Status::Corruption(
        "object does not authenticate as " + std::string(name) +
            " of this repository: written without the repository's keys, swapped from another "
            "name, or copied from another repository; run `mailvault check`",
        path);
  plain.resize(body.size());
  return plain;
}

}  // namespace mv::storage::crypto
