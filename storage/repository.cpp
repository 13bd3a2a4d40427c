// docs/FORMAT.md §1 (layout), §3 (keys), §8 (write ordering).
#include "storage/repository.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <set>

#include "storage/blob_id_set.h"
#include "storage/fs.h"
#include "storage/json_number.h"
#include "storage/layout.h"
#include "storage/local_backend.h"
#include "storage/sealed.h"
#include "storage/tree.h"

namespace mv::storage {
// The key fingerprint recorded in config (§1, §3): the keyed hash of a fixed label. It tells
// whether keys/default is this repository's key without revealing anything about the secret that
// a blob ID does not already reveal.
std::string KeyId(const KeyedHasher& h) {
  static constexpr std::string_view kLabel = "mailvault key fingerprint v1";
  return h.Hash(kLabel.data(), kLabel.size()).Hex();
}

namespace {

// Reads the secret from keys/default (§3); every error names that file.
Result<std::string> ReadSecret(const Backend& repo) {
  std::string key_path = repo.Describe(layout::kKeyFile);
  auto text = repo.Read(std::string(layout::kKeyFile));
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound)
      return Status::NotFound(
          "the repository key keys/default is missing: restore it from your backup of "
          "the repository's keys/",
          key_path);
    return text.status();
  }
  return ParseRepoKey(*text, key_path);
}

}  // namespace

Result<std::string> ParseRepoKey(std::string_view text, const std::string& path) {
  std::string secret;
  try {
    auto k = nlohmann::json::parse(text);
    if (!k.is_object() || k.value("encrypted", false) ||
        !FromHex(k.at("secret").get<std::string>(), &secret) || secret.size() < kSecretSize)
      return Status::Corruption(
          "keys/default is malformed or of an unknown kind: restore it from your backup "
          "of the repository's keys/",
          path);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("keys/default is malformed (") + e.what() +
                                  "): restore it from your backup of the repository's keys/",
                              path);
  }
  return secret;
}

Result<RepoConfig> ParseRepoConfig(std::string_view text, const std::string& path) {
  RepoConfig c;
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_object() || j.value("format", "") != "mailvault")
      return Status::Corruption("config is not a mailvault repository config", path);
    int version = JsonIntAt<int>(j, "version");
    if (version < kOldestFormatVersion || version > kFormatVersion)
      return Status::Unsupported("repository format version " + std::to_string(version) +
                                     " is not supported by this build (it reads versions " +
                                     std::to_string(kOldestFormatVersion) + " to " +
                                     std::to_string(kFormatVersion) +
                                     "); use a matching mailvault release",
                                 path);
    c.id = j.at("id");
    c.version = version;
    if (j.contains("encryption")) {
      const auto& e = j.at("encryption");
      c.encryption = e.at("algorithm").get<std::string>();
      c.recipient = e.at("recipient").get<std::string>();
      c.key_mode = e.at("keys").get<std::string>();
      if (c.encryption != "age-x25519" || (c.key_mode != "passphrase" && c.key_mode != "recipient"))
        return Status::Unsupported("config names encryption " + c.encryption + " with " +
                                       c.key_mode +
                                       " keys, which this build does not know; use a matching "
                                       "mailvault release",
                                   path);
    } else if (version == 7) {
      return Status::Corruption(
          "config says format version 7 (encrypted) but has no encryption entry: restore config "
          "from your backup of the repository",
          path);
    }
    const auto& chunker = j.at("chunker");
    c.chunker.min_size = JsonIntAt<size_t>(chunker, "min");
    c.chunker.avg_size = JsonIntAt<size_t>(chunker, "avg");
    c.chunker.max_size = JsonIntAt<size_t>(chunker, "max");
    c.chunker.file_threshold = JsonIntAt<size_t>(chunker, "threshold");
    c.key_id = j.value("key_id", "");
    if (!ChunkerParamsValid(c.chunker))
      return Status::Corruption(
          "the chunker parameters in config are damaged (min " +
              std::to_string(c.chunker.min_size) + ", avg " + std::to_string(c.chunker.avg_size) +
              ", max " + std::to_string(c.chunker.max_size) + ", threshold " +
              std::to_string(c.chunker.file_threshold) +
              "; FORMAT.md section 4 needs 1 <= min <= avg <= max <= 1 GiB, avg a power of "
              "two): restore config from your backup of the repository",
          path);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed repository config: ") + e.what(), path);
  }
  return c;
}

Status Repository::Init(const std::string& path, Env* env) {
  LocalBackend local(path, env);
  return Init(local, env);
}

Status Repository::Init(Backend& backend, Env* env, const Repository* key_from,
                        const RepoEncryption* enc) {
  MV_RETURN_IF_ERROR(backend.Create());
  std::string secret = enc        ? enc->content_secret
                       : key_from ? key_from->hasher().secret()
                                  : fs::RandomBytes(kSecretSize);
  if (enc) {
    // An encrypted repository has no keys/default: its content secret is in keys/secrets,
    // sealed to its recipient (docs/ENCRYPTION.md "Keys").
    for (const auto& [name, bytes] : enc->key_files) MV_RETURN_IF_ERROR(backend.Put(name, bytes));
  } else {
    nlohmann::json key = {{"kdf", "none"},
                          {"encrypted", false},
                          {"hash", "xxh3-128-keyed"},
                          {"secret", ToHex(secret.data(), secret.size())}};
    MV_RETURN_IF_ERROR(backend.Put(std::string(layout::kKeyFile), key.dump(2) + "\n"));
  }
  ChunkerParams cp = key_from ? key_from->chunker().params() : ChunkerParams();
  nlohmann::json config = {{"format", "mailvault"},
                           {"version", kFormatVersion},
                           {"id", enc ? enc->id : fs::RandomHex(16)},
                           {"created", env->NowNanos() / 1000000000},
                           {"hash", "xxh3-128-keyed"},
                           {"pack", "tar+zstd"},
                           {"key_id", KeyId(KeyedHasher(secret))},
                           {"chunker",
                            {{"algorithm", "fastcdc-gear"},
                             {"min", cp.min_size},
                             {"avg", cp.avg_size},
                             {"max", cp.max_size},
                             {"threshold", cp.file_threshold}}}};
  if (enc)
    config["encryption"] = {
        {"algorithm", "age-x25519"}, {"recipient", enc->recipient}, {"keys", enc->key_mode}};
  // config last: its presence is what makes the directory a repository.
  return backend.Put("config", config.dump(2) + "\n");
}

Result<RepoConfig> ReadRepoConfig(const Backend& backend) {
  std::string path = backend.Describe();
  auto cfg = backend.Read("config");
  if (!cfg.ok()) {
    if (cfg.status().code() == Code::kNotFound)
      return Status::NotFound(
          "no mailvault repository here (no config file); create one with "
          "`mailvault init --repo " +
              path + "`",
          path);
    return cfg.status();
  }
  return ParseRepoConfig(*cfg, backend.Describe("config"));
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& path, Env* env) {
  return Open(std::make_unique<LocalBackend>(path, env), env);
}

Result<std::unique_ptr<Repository>> Repository::Open(std::unique_ptr<Backend> backend, Env* env,
                                                     const std::string* content_secret) {
  std::string path = backend->Describe();
  MV_ASSIGN_OR_RETURN(RepoConfig config, ReadRepoConfig(*backend));
  if (!config.encryption.empty() && !content_secret)
    return Status::AccessDenied(
        "the repository is encrypted: give its passphrase with --password-file FILE (or "
        "MAILVAULT_PASSWORD_FILE), or its identity with --identity-file FILE (or "
        "MAILVAULT_IDENTITY_FILE)",
        path);
  std::unique_ptr<Repository> repo(new Repository());
  repo->path_ = path;
  repo->env_ = env;
  repo->backend_ = std::move(backend);
  repo->id_ = config.id;
  repo->encrypted_ = !config.encryption.empty();
  repo->pack_names_hash_age_file_ = repo->encrypted_ && config.version >= 9;
  ChunkerParams cp = config.chunker;
  std::string key_id = config.key_id;
  std::string secret;
  if (content_secret) {
    secret = *content_secret;
  } else {
    MV_ASSIGN_OR_RETURN(secret, ReadSecret(*repo->backend_));
  }
  repo->hasher_ = KeyedHasher(secret);
  repo->chunker_ = Chunker(secret, cp);
  // §1: version-1 repositories have no key_id; then there is nothing to compare.
  if (!key_id.empty() && KeyId(repo->hasher_) != key_id) {
    std::string file = repo->encrypted_ ? "keys/secrets" : std::string(layout::kKeyFile);
    return Status::Corruption(file + " does not belong to this repository (key fingerprint " +
                                  KeyId(repo->hasher_) + ", config expects " + key_id +
                                  "): restore the repository's own " + file +
                                  " from your backup of it",
                              repo->backend_->Describe(file));
  }
  return repo;
}

std::string Repository::PackPath(const BlobId& pack) const {
  return backend_->Describe(layout::PackRelPath(pack));
}
std::string Repository::TmpDir() const { return backend_->ScratchDir(); }
std::string Repository::PacksDir() const { return backend_->Describe("packs"); }

Result<std::unique_ptr<HeldLock>> Repository::LockExclusive(const std::string& purpose,
                                                            const LockWait& wait,
                                                            std::string* took_over_stale) const {
  return backend_->LockExclusive(purpose, wait, took_over_stale);
}

Status Repository::ReadPackFile(const BlobId& pack, const PackReadOptions& opts_in,
                                const PackWantFn& want, const PackBlobFn& on_blob) const {
  PackReadOptions opts = opts_in;
  opts.reader_checks_name = pack_names_hash_age_file_;
  // Without the pack hash to check, only the frames that hold the wanted blobs are read (§5.1),
  // where the index describes the pack and it has a seek table.
  const PackInfo* indexed =
      !opts.verify_pack_hash && index_loaded_ ? index_.FindPack(pack) : nullptr;
  if (indexed && indexed->file_size >= kMinFramedRead) {
    // A copy, so the reads below (network round trips) do not hold a pointer into packs_ that
    // an AddPack between them would move; the copy itself follows Index's rules for readers.
    PackInfo info = *indexed;
    std::vector<bool> selected(info.entries.size());
    bool any = false;
    for (size_t k = 0; k < info.entries.size(); k++)
      any |= selected[k] = want(info.entries[k].id, info.entries[k].length);
    if (!any) return Status::Ok();
    bool whole = false;
    MV_RETURN_IF_ERROR(ReadPackFrames(*backend_, PackPath(pack), info, selected, on_blob, &whole));
    if (!whole) return Status::Ok();
    BlobIdSet chosen;
    for (size_t k = 0; k < info.entries.size(); k++)
      if (selected[k]) chosen.Insert(info.entries[k].id);
    MV_ASSIGN_OR_RETURN(auto in, backend_->OpenReader(layout::PackRelPath(pack)));
    return ReadPack(
        *in, PackPath(pack), pack, opts,
        [&](const BlobId& id, uint64_t) { return chosen.Contains(id); }, on_blob);
  }
  MV_ASSIGN_OR_RETURN(auto in, backend_->OpenReader(layout::PackRelPath(pack)));
  return ReadPack(*in, PackPath(pack), pack, opts, want, on_blob);
}

Result<PackInfo> Repository::ListPackFile(const BlobId& pack) const {
  MV_ASSIGN_OR_RETURN(auto in, backend_->OpenReader(layout::PackRelPath(pack)));
  return ListPack(*in, PackPath(pack), pack, {.reader_checks_name = pack_names_hash_age_file_});
}

void Repository::CleanTmp() const {
  // Empty directories do not survive every copy (git, object stores): tmp/ is made again.
  (void)fs::MakeDirs(TmpDir(), 0700, env_);
  auto names = fs::ListDir(TmpDir());
  if (!names.ok()) return;
  for (const auto& n : *names) (void)env_->RemoveFile(fs::Join(TmpDir(), n));
}

namespace {

// Reads every index file under index/ into *index (damaged ones into *damaged). Takes no lock
// (§9): a prune may remove index files meanwhile, but only after the file that replaces them is
// durable, so when a listed file has vanished the directory is listed again and the files not
// read yet are read too.
Status ReadIndexDir(const Backend& backend, Index* index, std::vector<DamagedFile>* damaged,
                    size_t* locked = nullptr) {
  std::set<std::string> done;
  for (int pass = 0; pass < 100; pass++) {
    MV_ASSIGN_OR_RETURN(auto names, ListNames(backend, "index"));
    bool vanished = false;
    for (const auto& n : names) {
      if (layout::IsTempName(n) || done.count(n)) continue;
      std::string p = backend.Describe("index/" + n);
      auto data = backend.Read("index/" + n);
      if (!data.ok() && data.status().code() == Code::kNotFound) {
        vanished = true;  // removed by a prune after the listing: its replacement is listed next
        continue;
      }
      done.insert(n);
      if (!data.ok() && data.status().code() == Code::kAccessDenied && locked) {
        ++*locked;  // a write-only key (docs/ENCRYPTION.md): not damage, just not ours to read
        continue;
      }
      auto packs =
          data.ok() ? DecodeIndexFile(*data, p) : Result<std::vector<PackInfo>>(data.status());
      if (!packs.ok()) {  // derived data (§6): its packs are orphans until re-listed
        damaged->push_back({p, packs.status().message()});
        continue;
      }
      for (auto& pk : *packs) index->AddPack(std::move(pk));
    }
    if (!vanished) return Status::Ok();
  }
  return Status::Busy("index files keep vanishing while read (many prunes in a row?); try again",
                      backend.Describe("index"));
}

}  // namespace

Status Repository::LoadIndex() {
  if (index_loaded_) return Status::Ok();
  MV_RETURN_IF_ERROR(ReadIndexDir(*backend_, &index_, &damaged_index_, &locked_objects_));
  index_loaded_ = true;
  // Packs only a damaged file named are re-listed in memory, so reads stay complete.
  if (!damaged_index_.empty()) MV_RETURN_IF_ERROR(ListOrphanPacks());
  return Status::Ok();
}

Status Repository::ListOrphanPacks() {
  if (orphans_listed_) return Status::Ok();
  MV_ASSIGN_OR_RETURN(auto files, ListPackFiles());
  std::sort(files.begin(), files.end());
  for (const auto& id : files) {
    if (index_.HasPack(id)) continue;
    auto info = ListPackFile(id);  // checks the name against the bytes (§5)
    if (!info.ok() && info.status().code() == Code::kAccessDenied) {
      locked_objects_++;  // written with the identity; a write-only key does not read it
      continue;
    }
    if (!info.ok()) {
      orphan_rejects_.push_back({PackPath(id), info.status().message()});
      continue;
    }
    index_.AddPack(*info);
    orphans_.push_back(std::move(info).value());
  }
  orphans_listed_ = true;
  return Status::Ok();
}

Result<std::vector<BlobId>> Repository::ListPackFiles() const {
  std::vector<BlobId> out;
  MV_ASSIGN_OR_RETURN(auto objects, backend_->List("packs"));
  for (const auto& o : objects) {
    // packs/XX/<name>: only names two levels down count
    std::string_view rel = std::string_view(o.name).substr(6);
    size_t slash = rel.find('/');
    if (slash == std::string_view::npos) continue;
    std::string_view n = rel.substr(slash + 1);
    BlobId id;
    if (n.find('/') == std::string_view::npos && layout::ParsePackName(n, &id)) out.push_back(id);
  }
  return out;
}

Status Repository::WriteIndex(const std::vector<PackInfo>& packs) {
  if (packs.empty()) return Status::Ok();
  for (const auto& p : packs) index_.AddPack(p);
  std::string name = fs::RandomHex(16);
  return backend_->Put("index/" + name, EncodeIndexFile(packs));
}

Status Repository::WriteIndexFile(std::initializer_list<const std::vector<PackInfo>*> parts) const {
  bool any = false;
  for (const auto* part : parts) any = any || !part->empty();
  if (!any) return Status::Ok();
  std::string name = fs::RandomHex(16);
  return backend_->Put("index/" + name, EncodeIndexFile(parts));
}

void Repository::DropIndex() {
  std::lock_guard<std::mutex> l(index_mu_);
  index_ = Index();
  index_loaded_ = false;
  damaged_index_.clear();
  locked_objects_ = 0;
  orphans_listed_ = false;
  orphans_.clear();
  orphan_rejects_.clear();
}

Result<AdoptResult> Repository::AdoptOrphanPacks() {
  MV_RETURN_IF_ERROR(LoadIndex());
  MV_RETURN_IF_ERROR(ListOrphanPacks());
  MV_RETURN_IF_ERROR(WriteIndex(orphans_));
  AdoptResult res{orphans_.size(), orphan_rejects_};
  orphans_.clear();
  return res;
}

Result<IndexRebuild> Repository::RebuildIndex(bool dry_run) {
  MV_ASSIGN_OR_RETURN(auto old_names, ListNames(*backend_, "index"));
  MV_ASSIGN_OR_RETURN(auto files, ListPackFiles());
  std::sort(files.begin(), files.end());
  MV_RETURN_IF_ERROR(LoadIndex());
  IndexRebuild res;
  std::vector<PackInfo> packs;
  std::set<BlobId> listed;
  for (const auto& id : files) {
    auto info = ListPackFile(id);
    if (!info.ok()) {
      res.bad_packs.push_back({PackPath(id), info.status().message()});
      continue;
    }
    res.blobs += info->entries.size();
    listed.insert(id);
    packs.push_back(std::move(info).value());
  }
  res.packs = packs.size();
  // A pack a readable index names but that is now missing or damaged keeps its entries: its other
  // blobs stay restorable (every blob is re-hashed when read) and `check` keeps naming it.
  for (const auto& pk : index_.packs())
    if (!listed.count(pk.pack_id)) {
      res.kept.push_back(PackPath(pk.pack_id));
      packs.push_back(pk);
    }
  for (const auto& n : old_names) res.removed.push_back("index/" + n);
  if (dry_run) return res;
  // New files first (each durable: WriteFileAtomic fsyncs file and directory), old ones after:
  // a crash in between leaves both, and the union indexes at least every pack indexed before.
  constexpr size_t kPacksPerFile = 4096;
  for (size_t i = 0; i < packs.size(); i += kPacksPerFile) {
    std::vector<const PackInfo*> part;
    for (size_t j = i; j < std::min(packs.size(), i + kPacksPerFile); j++)
      part.push_back(&packs[j]);
    std::string p = "index/" + fs::RandomHex(16);
    MV_RETURN_IF_ERROR(backend_->Put(p, EncodeIndexFile(part)));
    res.written.push_back(backend_->Describe(p));
  }
  for (auto& p : res.removed) {
    MV_RETURN_IF_ERROR(backend_->Delete(p));
    p = backend_->Describe(p);
  }
  MV_RETURN_IF_ERROR(backend_->SyncDir("index"));
  index_ = Index();
  for (auto& pk : packs) index_.AddPack(std::move(pk));
  damaged_index_.clear();
  orphans_.clear();
  orphan_rejects_.clear();
  index_loaded_ = orphans_listed_ = true;
  return res;
}

int HeaderVersion(const std::string& header_json) {
  try {
    return nlohmann::json::parse(header_json).value("version", 1);
  } catch (const std::exception&) {
    return 0;  // DecodeSnapshotHeader has reported it
  }
}

Result<std::vector<SnapshotMeta>> Repository::ListSnapshots(
    std::vector<DamagedFile>* damaged) const {
  MV_ASSIGN_OR_RETURN(auto names, ListNames(*backend_, "snapshots"));
  std::vector<SnapshotMeta> out;
  for (const auto& n : names) {
    if (!layout::IsSnapshotName(n)) continue;  // skips temp files of an interrupted commit
    std::string p = backend_->Describe("snapshots/" + n);
    // On disk only the header is read (a flat version-1/2 manifest can be large); from a
    // remote backend the whole (version 3: small) manifest, in one request.
    std::optional<Result<std::string>> whole;
    if (backend_->local_root().empty()) whole = backend_->Read("snapshots/" + n);
    auto header = !whole ? ReadSealedHeader(p, SnapshotMagic(), SnapshotOldestVersion())
                  : whole->ok()
                      ? SealedHeaderOf(**whole, SnapshotMagic(), p, SnapshotOldestVersion())
                      : Result<std::string>(whole->status());
    auto m = header.ok() ? DecodeSnapshotHeader(*header, p) : Result<SnapshotMeta>(header.status());
    if (m.ok() && HeaderVersion(*header) >= 3) {  // the census is in the (small) body
      auto data = whole ? std::move(*whole) : backend_->Read("snapshots/" + n);
      auto snap = data.ok() ? DecodeSnapshot(*data, p) : Result<Snapshot>(data.status());
      m = snap.ok() ? Result<SnapshotMeta>(std::move(snap->meta))
                    : Result<SnapshotMeta>(snap.status());
    }
    if (m.ok() && m->id != n) m = Status::Corruption("manifest header names snapshot " + m->id, p);
    if (!m.ok()) {  // a damaged manifest affects its own snapshot only
      if (damaged) damaged->push_back({p, m.status().message()});
      continue;
    }
    out.push_back(std::move(m).value());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

Result<std::string> Repository::ResolveSnapshot(const std::string& ref) const {
  std::vector<DamagedFile> damaged;
  MV_ASSIGN_OR_RETURN(auto snaps, ListSnapshots(&damaged));
  if (snaps.empty() && damaged.empty())
    return Status::NotFound("the repository has no snapshots yet; run `mailvault backup`", path_);
  if (ref == "latest") {
    if (snaps.empty())
      return Status::Corruption("no readable snapshot: all " + std::to_string(damaged.size()) +
                                    " manifest(s) are damaged; run `mailvault check`",
                                backend_->Describe("snapshots"));
    return snaps.back().id;
  }
  if (ref.size() < 4)
    return Status::Invalid("snapshot ID prefix '" + ref +
                           "' is too short: give at least 4 hex digits");
  std::vector<std::string> ids;
  for (const auto& s : snaps) ids.push_back(s.id);
  for (const auto& d : damaged)
    ids.push_back(d.path.substr(d.path.size() - 32));  // LoadSnapshot reports it
  std::vector<std::string> hits;
  for (const auto& id : ids)
    if (id.compare(0, ref.size(), ref) == 0) hits.push_back(id);
  if (hits.empty())
    return Status::NotFound(
        "no snapshot matches '" + ref + "'; list them with `mailvault snapshots`", path_);
  if (hits.size() > 1) {
    // Name them (the first few, with time and host when readable), so the next try can pick.
    std::string list;
    for (size_t i = 0; i < hits.size() && i < 5; i++) {
      list += "\n  " + hits[i].substr(0, 12);
      for (const auto& s : snaps) {
        if (s.id != hits[i]) continue;
        char when[40];
        time_t t = static_cast<time_t>(s.time);
        struct tm tm;
        std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
        list += std::string("  ") + when + "  " + s.host;
      }
    }
    if (hits.size() > 5) list += "\n  ... and " + std::to_string(hits.size() - 5) + " more";
    return Status::Invalid("snapshot ID prefix '" + ref +
                           "' is ambiguous: " + std::to_string(hits.size()) +
                           " snapshots match; give more digits:" + list);
  }
  return hits[0];
}

namespace {

// A manifest that does not decode: name the file, say what it affects and what to run.
Status DamagedManifest(const Status& st, const std::string& path) {
  if (st.code() == Code::kNotFound) return st;
  return Status(st.code() == Code::kUnsupported ? Code::kUnsupported : Code::kCorruption,
                "snapshot manifest is damaged (" + st.message() +
                    "); this snapshot cannot be read, other "
                    "snapshots are not affected: run `mailvault check`",
                path);
}

}  // namespace

Status Repository::CommitSnapshot(Snapshot& snap) {
  if (snap.meta.id.empty()) snap.meta.id = fs::RandomHex(16);
  return backend_->Put("snapshots/" + snap.meta.id, EncodeSnapshot(snap));
}

// The BlobReader OpenBlobReader returns: lookups in index_, which LoadIndex has filled.
//
// Reads take no lock (§9), so a prune may delete a pack after this reader's index was loaded.
// Every blob a snapshot that still exists refers to is then in another pack, named by an index
// file written before the pack was deleted: a pack that is gone (ENOENT) makes the reader load
// the index afresh (once per pack that vanished, kept aside in fresh_; index_ is not touched,
// other threads read it) and read the blobs from where they are now.
class IndexedBlobReader final : public BlobReader {
 public:
  explicit IndexedBlobReader(const Repository& repo) : repo_(repo) {}
  const KeyedHasher& hasher() const override { return repo_.hasher_; }
  std::optional<BlobLocation> Find(const BlobId& id) const override {
    return repo_.index_.Find(id);
  }
  bool index_damaged() const override { return !repo_.damaged_index_.empty(); }
  std::string PackPath(const BlobId& pack) const override { return repo_.PackPath(pack); }
  Status ReadPackBlobs(const BlobId& pack, const WantFn& want, const VisitFn& visit) const override;
  Result<std::string> ReadBlob(const BlobId& id) const override;
  Result<Snapshot> LoadSnapshot(const std::string& id) const override {
    return repo_.LoadSnapshot(id);
  }
  Result<std::unique_ptr<EntryCursor>> OpenEntries(const std::string& id,
                                                   SnapshotMeta* meta) const override {
    std::string p = repo_.backend_->Describe("snapshots/" + id);
    MV_ASSIGN_OR_RETURN(std::string data, repo_.backend_->Read("snapshots/" + id));
    auto snap = DecodeSnapshot(data, p);
    if (!snap.ok()) return DamagedManifest(snap.status(), p);
    if (meta) *meta = std::move(snap->meta);
    if (!snap->tree.IsZero()) return TreeCursor(*this, snap->tree);
    return VectorCursor(std::move(snap->files));
  }
  Result<BlobId> RootTree(const std::string& id) const override {
    std::string p = repo_.backend_->Describe("snapshots/" + id);
    MV_ASSIGN_OR_RETURN(std::string data, repo_.backend_->Read("snapshots/" + id));
    auto snap = DecodeSnapshot(data, p);
    if (!snap.ok()) return DamagedManifest(snap.status(), p);
    return snap->tree;
  }
  Result<std::vector<std::string>> SnapshotIds() const override;

 private:
  Status ReadPackAt(const BlobId& pack, const WantFn& want, const VisitFn& visit) const;
  // An index loaded after `gone` vanished (reloaded unless the one kept already lacks it).
  Result<std::shared_ptr<const Index>> FreshIndex(const BlobId& gone) const;
  Status ReadMovedBlobs(const BlobId& gone, const WantFn& want, const VisitFn& visit) const;
  const Repository& repo_;
  mutable std::mutex fresh_mu_;
  mutable std::shared_ptr<const Index> fresh_;
};

static bool PackVanished(const Status& st) {
  return !st.ok() &&
         (st.sys_errno() == ENOENT || (st.sys_errno() == 0 && st.code() == Code::kNotFound));
}

// The message for blobs of a snapshot that are in no pack any more.
static Status RemovedByPrune(const BlobId& pack, const BlobId& blob, size_t count,
                             const std::string& path) {
  return Status::NotFound(
      "pack " + pack.Hex() +
          " was deleted by a prune after this reader loaded "
          "the index, and " +
          std::to_string(count) + " blob(s) read from it (" + blob.Hex() +
          (count > 1 ? "..." : "") +
          ") are in no pack now: the snapshot's data was removed by a prune (was "
          "the snapshot forgotten while it was being read?)",
      path);
}

Status Repository::LoadIndexForTrees() const {
  std::lock_guard<std::mutex> l(index_mu_);
  // Reading the index changes no file: a const reader of a version-3 snapshot may load it.
  return const_cast<Repository*>(this)->LoadIndex();
}

// A version-3 snapshot's entries are read from its trees (§7.5); a tree that cannot be read
// fails naming the snapshot.
template <class AddFn>
Status ReadTreeEntries(const BlobReader& blobs, const BlobId& root, const std::string& id,
                       AddFn&& add) {
  auto cursor = TreeCursor(blobs, root);
  FileEntry e;
  for (;;) {
    auto more = cursor->Next(&e);
    if (!more.ok()) {
      const Status& st = more.status();
      return Status(st.code(), "snapshot " + id.substr(0, 8) + ": " + st.message(), st.path());
    }
    if (!*more) return Status::Ok();
    add(std::move(e));
  }
}

Result<Snapshot> Repository::LoadSnapshot(const std::string& id) const {
  std::string p = backend_->Describe("snapshots/" + id);
  MV_ASSIGN_OR_RETURN(std::string data, backend_->Read("snapshots/" + id));
  auto snap = DecodeSnapshot(data, p);
  if (!snap.ok()) return DamagedManifest(snap.status(), p);
  if (!snap->tree.IsZero()) {
    MV_RETURN_IF_ERROR(LoadIndexForTrees());
    IndexedBlobReader blobs(*this);
    MV_RETURN_IF_ERROR(ReadTreeEntries(
        blobs, snap->tree, id, [&](FileEntry&& e) { snap->files.push_back(std::move(e)); }));
    snap->tree = BlobId{};  // the entries are in `files` now (committing it writes them flat)
  }
  return snap;
}

Result<BlobId> Repository::SnapshotRoot(const std::string& id) const {
  std::string p = backend_->Describe("snapshots/" + id);
  // The header says the version: a flat manifest's body is not decoded here (its reader,
  // LoadEntryTable, decodes it once), a version-3 one is a few KB.
  std::string data;
  if (backend_->local_root().empty()) {
    MV_ASSIGN_OR_RETURN(data, backend_->Read("snapshots/" + id));
  }
  auto header = data.empty() ? ReadSealedHeader(p, SnapshotMagic(), SnapshotOldestVersion())
                             : SealedHeaderOf(data, SnapshotMagic(), p, SnapshotOldestVersion());
  if (!header.ok()) return DamagedManifest(header.status(), p);
  if (HeaderVersion(*header) < 3) return BlobId{};
  if (data.empty()) {
    MV_ASSIGN_OR_RETURN(data, backend_->Read("snapshots/" + id));
  }
  auto snap = DecodeSnapshot(data, p);
  if (!snap.ok()) return DamagedManifest(snap.status(), p);
  return snap->tree;
}

Result<EntryTable> Repository::LoadEntryTable(const std::string& id) const {
  std::string p = backend_->Describe("snapshots/" + id);
  MV_ASSIGN_OR_RETURN(std::string data, backend_->Read("snapshots/" + id));
  BlobId root;
  auto table = EntryTable::Decode(data, p, &root);
  if (!table.ok()) return DamagedManifest(table.status(), p);
  if (!root.IsZero()) {
    MV_RETURN_IF_ERROR(LoadIndexForTrees());
    IndexedBlobReader blobs(*this);
    MV_RETURN_IF_ERROR(ReadTreeEntries(blobs, root, id, [&](FileEntry&& e) { table->Add(e); }));
  }
  return table;
}

Result<std::unique_ptr<BlobReader>> Repository::OpenBlobReader() {
  MV_RETURN_IF_ERROR(LoadIndex());
  return std::unique_ptr<BlobReader>(std::make_unique<IndexedBlobReader>(*this));
}

Result<std::unique_ptr<BlobReader>> Repository::OpenBlobReader() const {
  MV_RETURN_IF_ERROR(LoadIndexForTrees());
  return std::unique_ptr<BlobReader>(std::make_unique<IndexedBlobReader>(*this));
}

Status IndexedBlobReader::ReadPackAt(const BlobId& pack, const WantFn& want,
                                     const VisitFn& visit) const {
  return repo_.ReadPackFile(
      pack, {.verify_pack_hash = false},  // each blob is hashed instead
      [&](const BlobId& id, uint64_t) { return want(id); },
      [&](const BlobId& id, std::string_view data) {
        visit(id, data, repo_.hasher_.Hash(data.data(), data.size()) == id);
        return true;
      });
}

Status IndexedBlobReader::ReadPackBlobs(const BlobId& pack, const WantFn& want,
                                        const VisitFn& visit) const {
  Status st = ReadPackAt(pack, want, visit);
  if (PackVanished(st)) return ReadMovedBlobs(pack, want, visit);
  return st;
}

Result<std::shared_ptr<const Index>> IndexedBlobReader::FreshIndex(const BlobId& gone) const {
  std::lock_guard<std::mutex> l(fresh_mu_);
  if (fresh_ && !fresh_->HasPack(gone)) return fresh_;
  auto index = std::make_shared<Index>();
  std::vector<DamagedFile> damaged;
  MV_RETURN_IF_ERROR(ReadIndexDir(*repo_.backend_, index.get(), &damaged));
  fresh_ = std::move(index);
  return fresh_;
}

// The blobs `want` selects of the vanished pack `gone` (as the loaded index lists it), read from
// the packs a fresh index names for them. Those that no pack holds any more fail the call, after
// the others were visited.
Status IndexedBlobReader::ReadMovedBlobs(const BlobId& gone, const WantFn& want,
                                         const VisitFn& visit) const {
  std::vector<BlobId> wanted;
  for (const auto& pk : repo_.index_.packs()) {
    if (pk.pack_id != gone) continue;
    for (const auto& e : pk.entries)
      if (want(e.id)) wanted.push_back(e.id);
    break;
  }
  MV_ASSIGN_OR_RETURN(auto fresh, FreshIndex(gone));
  std::map<BlobId, BlobIdSet> by_pack;
  std::vector<BlobId> lost;
  for (const auto& id : wanted) {
    auto loc = fresh->Find(id);
    if (!loc || loc->pack == gone)
      lost.push_back(id);
    else
      by_pack[loc->pack].Insert(id);
  }
  for (auto it = by_pack.begin(); it != by_pack.end(); ++it) {
    const BlobIdSet& ids = it->second;
    Status st = ReadPackAt(
        it->first, [&](const BlobId& id) { return ids.Contains(id); }, visit);
    if (PackVanished(st))  // deleted again since the reload: only one retry
      return Status(st.code(),
                    st.message() +
                        " (read again after a prune; a second prune "
                        "removed it too: run the command again)",
                    st.path());
    MV_RETURN_IF_ERROR(st);
  }
  if (!lost.empty()) return RemovedByPrune(gone, lost[0], lost.size(), PackPath(gone));
  return Status::Ok();
}

Result<std::vector<std::string>> IndexedBlobReader::SnapshotIds() const {
  MV_ASSIGN_OR_RETURN(auto names, ListNames(*repo_.backend_, "snapshots"));
  std::vector<std::string> ids;
  for (auto& n : names)
    if (layout::IsSnapshotName(n)) ids.push_back(std::move(n));
  return ids;
}

Result<std::string> IndexedBlobReader::ReadBlob(const BlobId& id) const {
  auto loc = Find(id);
  if (!loc) return Status::NotFound("blob " + id.Hex() + " is not in the index", repo_.path());
  auto read = [&](const BlobId& pack, std::string* out) -> Result<bool> {
    bool found = false;
    MV_RETURN_IF_ERROR(repo_.ReadPackFile(
        pack, {.verify_pack_hash = false}, [&](const BlobId& b, uint64_t) { return b == id; },
        [&](const BlobId&, std::string_view data) {
          out->assign(data);
          found = true;
          return false;
        }));
    return found;
  };
  std::string out;
  BlobId pack = loc->pack;
  auto found = read(pack, &out);
  if (PackVanished(found.status())) {  // deleted by a prune: look where the blob is now
    MV_ASSIGN_OR_RETURN(auto fresh, FreshIndex(pack));
    auto moved = fresh->Find(id);
    if (!moved || moved->pack == pack) return RemovedByPrune(pack, id, 1, PackPath(pack));
    pack = moved->pack;
    found = read(pack, &out);
  }
  MV_RETURN_IF_ERROR(found.status());
  if (!*found)
    return Status::Corruption("blob " + id.Hex() + " is missing from its pack", PackPath(pack));
  if (hasher().Hash(out.data(), out.size()) != id)
    return Status::Corruption("blob " + id.Hex() + " does not match its hash", PackPath(pack));
  return out;
}

}  // namespace mv::storage
