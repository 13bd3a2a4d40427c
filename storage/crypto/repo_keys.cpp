// storage/crypto/repo_keys.h
#include "storage/crypto/repo_keys.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include "storage/fs.h"

namespace mv::storage::crypto {
namespace {

constexpr const char* kSecretsFile = "keys/secrets";

bool IsKeyIdName(std::string_view name) {
  return name.size() == 16 && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isxdigit(c) && !std::isupper(c);
         });
}

}  // namespace

KdfCost DefaultKdfCost() { return {6, uint64_t{64} << 20}; }

Result<RepoEncryption> NewPassphraseEncryption(std::string_view passphrase,
                                               const std::string* content_secret,
                                               const KdfCost& cost) {
  AgeIdentity id = GenerateAgeIdentity();
  AgeRecipient r = RecipientOf(id);
  MV_ASSIGN_OR_RETURN(
      RepoSecrets secrets,
      GenerateRepoSecrets(content_secret ? *content_secret : fs::RandomBytes(kSecretSize)));
  RepoEncryption enc;
  enc.id = fs::RandomHex(16);
  enc.content_secret = secrets.content;
  enc.recipient = FormatRecipient(r);
  enc.key_mode = "passphrase";
  MV_ASSIGN_OR_RETURN(std::string sealed, SealSecrets(secrets, r));
  MV_ASSIGN_OR_RETURN(std::string wrapped, WrapIdentity(id, passphrase, cost));
  enc.key_files.emplace_back(kSecretsFile, std::move(sealed));
  enc.key_files.emplace_back("keys/" + fs::RandomHex(8), std::move(wrapped));
  return enc;
}

Result<RecipientEncryption> NewRecipientEncryption(const AgeRecipient& recipient,
                                                   const std::string* content_secret) {
  RecipientEncryption out;
  MV_ASSIGN_OR_RETURN(
      out.secrets,
      GenerateRepoSecrets(content_secret ? *content_secret : fs::RandomBytes(kSecretSize)));
  out.enc.id = fs::RandomHex(16);
  out.enc.content_secret = out.secrets.content;
  out.enc.recipient = FormatRecipient(recipient);
  out.enc.key_mode = "recipient";
  MV_ASSIGN_OR_RETURN(std::string sealed, SealSecrets(out.secrets, recipient));
  out.enc.key_files.emplace_back(kSecretsFile, std::move(sealed));
  return out;
}

std::string AgentKeyFile(const RepoKeys& keys, const std::string& repository_id) {
  return EncodeAgentKey({repository_id, keys.recipient, keys.secrets});
}

Result<std::vector<std::string>> ListKeyIds(const Backend& backend) {
  MV_ASSIGN_OR_RETURN(auto names, ListNames(backend, "keys"));
  std::vector<std::string> ids;
  for (auto& n : names)
    if (IsKeyIdName(n)) ids.push_back(n);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<RepoKeys> Unlock(const Backend& backend, const RepoConfig& config, const KeySource& key) {
  std::string repo = backend.Describe();
  auto recipient = ParseRecipient(config.recipient);
  if (!recipient.ok())
    return Status::Corruption(
        "config's encryption recipient does not decode: restore config "
        "from your backup of the repository",
        backend.Describe("config"));
  RepoKeys keys;
  keys.recipient = *recipient;
  if (key.agent && !key.identity && !key.passphrase) {
    if (key.agent->repository != config.id)
      return Status::AccessDenied("the agent key in " + key.agent_from + " belongs to repository " +
                                      key.agent->repository + ", not to this one (" + config.id +
                                      "): use the agent key written for this repository",
                                  repo);
    if (!(key.agent->recipient == *recipient))
      return Status::AccessDenied("the agent key in " + key.agent_from +
                                      " encrypts to another recipient than the repository's (" +
                                      config.recipient + "): it is damaged or not this one's",
                                  repo);
    keys.secrets = key.agent->secrets;
    return keys;
  }
  if (key.identity) {
    if (!(RecipientOf(*key.identity) == *recipient))
      return Status::AccessDenied(
          "the identity in " + key.identity_from + " is not this repository's (its recipient is " +
              FormatRecipient(RecipientOf(*key.identity)) + ", the repository's is " +
              config.recipient + "): give the identity the repository was made with",
          repo);
    keys.identity = *key.identity;
  } else if (key.passphrase) {
    if (config.key_mode != "passphrase")
      return Status::AccessDenied(
          "this repository has no passphrase (it was made with --recipient): open it with "
          "--identity-file FILE, the identity whose recipient is " +
              config.recipient,
          repo);
    MV_ASSIGN_OR_RETURN(auto ids, ListKeyIds(backend));
    if (ids.empty())
      return Status::Corruption(
          "keys/ holds no passphrase key file: restore keys/ from your backup of the "
          "repository, or open it with --identity-file",
          backend.Describe("keys"));
    std::string damaged;
    bool opened = false;
    for (const auto& id : ids) {
      std::string rel = "keys/" + id;
      auto text = backend.Read(rel);
      if (!text.ok()) return text.status();
      auto identity = UnwrapIdentity(*text, *key.passphrase, backend.Describe(rel));
      if (identity.ok()) {
        keys.identity = *identity;
        keys.key_id = id;
        opened = true;
        break;
      }
      if (identity.status().code() != Code::kInvalidArgument)
        damaged += "; " + identity.status().ToString();
    }
    if (!opened)
      return Status::AccessDenied("the passphrase from " + key.passphrase_from +
                                      " opens none of the " + std::to_string(ids.size()) +
                                      " key files under keys/ (wrong passphrase?)" + damaged,
                                  repo);
    if (!(RecipientOf(*keys.identity) == *recipient))
      return Status::Corruption("keys/" + keys.key_id +
                                    " opens, but holds another repository's identity: remove it "
                                    "with `mailvault key remove " +
                                    keys.key_id + "` and use another passphrase",
                                backend.Describe("keys/" + keys.key_id));
  } else {
    return Status::AccessDenied(
        std::string("the repository is encrypted: give ") +
            (config.key_mode == "passphrase"
                 ? "its passphrase with --password-file FILE (or MAILVAULT_PASSWORD_FILE), or "
                 : "") +
            "its identity with --identity-file FILE (or MAILVAULT_IDENTITY_FILE); a backup "
            "also opens it with a write-only --agent-key-file FILE (or MAILVAULT_AGENT_KEY_FILE)",
        repo);
  }
  std::string secrets_path = backend.Describe(kSecretsFile);
  auto sealed = backend.Read(kSecretsFile);
  if (!sealed.ok()) {
    if (sealed.status().code() == Code::kNotFound)
      return Status::NotFound(
          "keys/secrets is missing: restore it from your backup of the repository's keys/",
          secrets_path);
    return sealed.status();
  }
  auto secrets = OpenSecrets(*sealed, *keys.identity, secrets_path);
  if (!secrets.ok()) {
    if (secrets.status().code() == Code::kInvalidArgument)
      return Status::Corruption(
          "keys/secrets is not sealed to this repository's recipient: restore it from your "
          "backup of the repository's keys/",
          secrets_path);
    return Status::Corruption(
        secrets.status().message() +
            ": restore keys/secrets from your backup of the repository's keys/",
        secrets_path);
  }
  keys.secrets = *secrets;
  return keys;
}

std::unique_ptr<Backend> OpenEncrypted(std::unique_ptr<Backend> backend, const RepoConfig& config,
                                       const RepoKeys& keys, const std::string& plain_cache,
                                       Env* env) {
  ObjectKeys ok;
  if (!keys.identity) ok.plain_cache = plain_cache;
  ok.identity = keys.identity;
  ok.recipient = keys.recipient;
  ok.auth = keys.secrets.auth;
  ok.repository = config.id;
  ok.pack_names_hash_age_file = config.version >= 9;
  return NewEncryptedBackend(std::move(backend), std::move(ok), env);
}

Result<std::string> AddKey(Backend& backend, const AgeIdentity& identity,
                           std::string_view passphrase, const KdfCost& cost) {
  MV_ASSIGN_OR_RETURN(std::string wrapped, WrapIdentity(identity, passphrase, cost));
  std::string id = fs::RandomHex(8);
  MV_RETURN_IF_ERROR(backend.Put("keys/" + id, wrapped));
  MV_RETURN_IF_ERROR(backend.SyncDir("keys"));
  return id;
}

Status RemoveKey(Backend& backend, const std::string& id) {
  MV_ASSIGN_OR_RETURN(auto ids, ListKeyIds(backend));
  if (std::find(ids.begin(), ids.end(), id) == ids.end())
    return Status::NotFound("no key " + id + " in this repository; `mailvault key list` shows them",
                            backend.Describe("keys/" + id));
  if (ids.size() == 1)
    return Status::Invalid("key " + id +
                               " is the repository's only passphrase: add another with `mailvault "
                               "key add` first, or nothing could open the repository",
                           backend.Describe("keys/" + id));
  MV_RETURN_IF_ERROR(backend.Delete("keys/" + id));
  return backend.SyncDir("keys");
}

}  // namespace mv::storage::crypto
