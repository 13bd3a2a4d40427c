// The keys of an encrypted repository (docs/ENCRYPTION.md "Keys"): making them for `init`,
// unlocking a repository with a passphrase or an identity, and the passphrase key files
// (`mailvault key list|add|remove|passwd`).
//   keys/secrets   an age file to the repository's recipient holding the content secret S and
//                  the authentication key A (storage/crypto/envelope.h);
//   keys/<16 hex>  in passphrase mode, the identity wrapped by one passphrase
//                  (storage/crypto/keyfile.h); one file per passphrase.
// Nothing here prints, prompts or reads a terminal: the CLI gives the passphrase or identity.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/backend.h"
#include "storage/crypto/age.h"
#include "storage/crypto/encrypted_backend.h"
#include "storage/crypto/envelope.h"
#include "storage/crypto/keyfile.h"
#include "storage/repository.h"

namespace mv::storage::crypto {

// What opens a repository: a passphrase or an identity, and where each came from (a file name
// or "the prompt", for messages; never the secret).
struct KeySource {
  std::optional<std::string> passphrase;
  std::string passphrase_from;
  std::optional<AgeIdentity> identity;
  std::string identity_from;
  std::optional<AgentKey> agent;  // a write-only agent key (init --recipient --agent-key-out)
  std::string agent_from;
  bool empty() const { return !passphrase && !identity && !agent; }
};

// An unlocked repository's keys.
struct RepoKeys {
  std::optional<AgeIdentity> identity;  // absent when opened with an agent key: write-only
  AgeRecipient recipient;
  RepoSecrets secrets;
  std::string key_id;  // the passphrase key file that opened it (keys/<key_id>); empty otherwise
};

// The argon2id cost `init` and `key add` write: 64 MiB, 6 passes (about 0.7 s here), so that
// opening a repository stays within the agent's memory bound.
KdfCost DefaultKdfCost();

// What `init --encrypt` writes: a new identity, its secrets (S from `content_secret` when given:
// a copy target sharing its source's content key), and the key file of `passphrase`.
Result<RepoEncryption> NewPassphraseEncryption(std::string_view passphrase,
                                               const std::string* content_secret,
                                               const KdfCost& cost = DefaultKdfCost());

// What `init --recipient` writes: no identity anywhere, keys/secrets sealed to `recipient`. The
// secrets are returned too, for the agent key file (--agent-key-out).
struct RecipientEncryption {
  RepoEncryption enc;
  RepoSecrets secrets;
};
Result<RecipientEncryption> NewRecipientEncryption(const AgeRecipient& recipient,
                                                   const std::string* content_secret);
// The agent key file of an unlocked repository (EncodeAgentKey).
std::string AgentKeyFile(const RepoKeys& keys, const std::string& repository_id);

// Unlocks an encrypted repository (config says so): tries the passphrase on every key file, or
// takes the identity, checks it is the repository's recipient and opens keys/secrets; or takes
// an agent key of this repository (no identity: the backend will only write).
// kAccessDenied naming what was given when it opens nothing; kCorruption for a damaged
// keys/secrets.
Result<RepoKeys> Unlock(const Backend& backend, const RepoConfig& config, const KeySource& key);

// The backend of the unlocked repository, decrypting what it reads. Opened with an agent key,
// `plain_cache` is the agent's own cache (ObjectKeys::plain_cache).
std::unique_ptr<Backend> OpenEncrypted(std::unique_ptr<Backend> backend, const RepoConfig& config,
                                       const RepoKeys& keys, const std::string& plain_cache = "",
                                       Env* env = Env::Default());

// Passphrase key files, sorted by id.
Result<std::vector<std::string>> ListKeyIds(const Backend& backend);
// Wraps the identity under a new passphrase; returns the new key's id.
Result<std::string> AddKey(Backend& backend, const AgeIdentity& identity,
                           std::string_view passphrase, const KdfCost& cost = DefaultKdfCost());
// Removes keys/<id>: kNotFound for an unknown id, kInvalidArgument when it is the last one (the
// repository would open no more).
Status RemoveKey(Backend& backend, const std::string& id);

}  // namespace mv::storage::crypto
