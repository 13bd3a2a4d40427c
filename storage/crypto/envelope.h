// The pieces of an encrypted repository besides packs (docs/ENCRYPTION.md "Keys", "Objects"):
// the repository's secrets sealed to its recipient (`keys/secrets`), the write-only agent's key
// file, and the envelope of sealed objects (index files, manifests, records): an age file to the
// recipient whose plaintext ends with an HMAC binding the object to its name and repository, so
// that one written by someone without the authentication key (anyone can encrypt to a public
// recipient), swapped under another name or copied from another repository is refused.
// Not used by a command yet.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/crypto/age.h"
#include "storage/status.h"

namespace mv::storage::crypto {

struct RepoSecrets {
  std::string content;             // S: the content secret (today's keys/default secret)
  std::array<uint8_t, 32> auth{};  // A: the authentication key
};
Result<RepoSecrets> GenerateRepoSecrets(std::string content_secret);

// keys/secrets: an age file to `r` holding S and A.
Result<std::string> SealSecrets(const RepoSecrets& s, const AgeRecipient& r);
Result<RepoSecrets> OpenSecrets(std::string_view file, const AgeIdentity& id,
                                const std::string& path);

// The write-only agent's key file (JSON, mode 0600 where written): the repository it belongs
// to, the recipient, S and A; no identity.
struct AgentKey {
  std::string repository;  // the repository's id (config "id")
  AgeRecipient recipient;
  RepoSecrets secrets;
};
std::string EncodeAgentKey(const AgentKey& k);
// kCorruption naming `path` for a damaged file; kInvalidArgument when it belongs to another
// repository than `repository_id` (when that is not empty).
Result<AgentKey> DecodeAgentKey(std::string_view text, const std::string& path,
                                std::string_view repository_id);

// Sealed objects: age(r, plain ‖ HMAC-SHA-256(auth, repository ‖ 0 ‖ name ‖ 0 ‖ plain)).
Result<std::string> SealObject(std::string_view plain, std::string_view name,
                               std::string_view repository, const AgeRecipient& r,
                               const std::array<uint8_t, 32>& auth);
// The plaintext of a sealed object, checked: kCorruption naming `path` when it does not decrypt
// or its MAC does not match `name` and `repository` under `auth`.
Result<std::string> OpenObject(std::string_view file, std::string_view name,
                               std::string_view repository, const AgeIdentity& id,
                               const std::array<uint8_t, 32>& auth, const std::string& path);

}  // namespace mv::storage::crypto
