// docs/FORMAT.md §1 (layout), §3 (keys), §8 (write ordering).
#include "storage/repository.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "storage/fs.h"
#include "storage/sealed.h"

namespace mv::storage {
namespace {

const char* kDirs[] = {"packs", "index", "snapshots", "locks", "tmp", "keys"};

}  // namespace

Status Repository::Init(const std::string& path) {
  if (fs::Exists(fs::Join(path, "config")))
    return Status::Invalid("a repository already exists here; use it as it is", path);
  if (fs::Exists(path)) {
    MV_ASSIGN_OR_RETURN(auto names, fs::ListDir(path));
    if (!names.empty())
      return Status::Invalid("directory is not empty; give a new or empty directory", path);
  }
  MV_RETURN_IF_ERROR(fs::MakeDirs(path, 0700));
  for (const char* d : kDirs) MV_RETURN_IF_ERROR(fs::MakeDirs(fs::Join(path, d), 0700));
  std::string secret = fs::RandomBytes(kSecretSize);
  nlohmann::json key = {{"kdf", "none"}, {"encrypted", false},
                        {"hash", "xxh3-128-keyed"}, {"secret", ToHex(secret.data(), secret.size())}};
  MV_RETURN_IF_ERROR(fs::WriteFileAtomic(fs::Join(path, "keys/default"), key.dump(2) + "\n"));
  ChunkerParams cp;
  nlohmann::json config = {
      {"format", "mailvault"}, {"version", kFormatVersion}, {"id", fs::RandomHex(16)},
      {"created", static_cast<int64_t>(::time(nullptr))},
      {"hash", "xxh3-128-keyed"}, {"pack", "tar+zstd"},
      {"chunker", {{"algorithm", "fastcdc-gear"}, {"min", cp.min_size}, {"avg", cp.avg_size},
                   {"max", cp.max_size}, {"threshold", cp.file_threshold}}}};
  // config last: its presence is what makes the directory a repository.
  return fs::WriteFileAtomic(fs::Join(path, "config"), config.dump(2) + "\n");
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& path) {
  std::string cfg_path = fs::Join(path, "config");
  auto cfg = fs::ReadFile(cfg_path);
  if (!cfg.ok()) {
    if (cfg.status().code() == Code::kNotFound)
      return Status::NotFound("no mailvault repository here (no config file); create one with "
                              "`mailvault init --repo " + path + "`", path);
    return cfg.status();
  }
  std::unique_ptr<Repository> repo(new Repository());
  repo->path_ = path;
  try {
    auto j = nlohmann::json::parse(*cfg);
    if (j.value("format", "") != "mailvault")
      return Status::Corruption("config is not a mailvault repository config", cfg_path);
    int version = j.at("version");
    if (version < kOldestFormatVersion || version > kFormatVersion)
      return Status::Unsupported("repository format version " + std::to_string(version) +
                                 " is not supported by this build (it reads versions " +
                                 std::to_string(kOldestFormatVersion) + " to " +
                                 std::to_string(kFormatVersion) + "); use a matching mailvault release",
                                 cfg_path);
    repo->id_ = j.at("id");
    ChunkerParams cp;
    cp.min_size = j.at("chunker").at("min");
    cp.avg_size = j.at("chunker").at("avg");
    cp.max_size = j.at("chunker").at("max");
    cp.file_threshold = j.at("chunker").at("threshold");
    std::string key_path = fs::Join(path, "keys/default");
    MV_ASSIGN_OR_RETURN(std::string key_text, fs::ReadFile(key_path));
    auto k = nlohmann::json::parse(key_text);
    std::string secret;
    if (k.value("encrypted", false) || !FromHex(k.at("secret").get<std::string>(), &secret) ||
        secret.size() < kSecretSize)
      return Status::Corruption("repository key is malformed or of an unknown kind", key_path);
    repo->hasher_ = KeyedHasher(secret);
    repo->chunker_ = Chunker(secret, cp);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed repository config or key: ") + e.what(), cfg_path);
  }
  return repo;
}

std::string Repository::PackPath(const BlobId& pack) const { return fs::Join(path_, PackRelPath(pack)); }
std::string Repository::TmpDir() const { return fs::Join(path_, "tmp"); }
std::string Repository::PacksDir() const { return fs::Join(path_, "packs"); }

void Repository::CleanTmp() const {
  // Empty directories do not survive every copy (git, object stores): tmp/ is made again.
  (void)fs::MakeDirs(TmpDir(), 0700);
  auto names = fs::ListDir(TmpDir());
  if (!names.ok()) return;
  for (const auto& n : *names) ::unlink(fs::Join(TmpDir(), n).c_str());
}

Status Repository::LoadIndex() {
  if (index_loaded_) return Status::Ok();
  std::string dir = fs::Join(path_, "index");
  MV_ASSIGN_OR_RETURN(auto names, fs::ListDir(dir));
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    if (n.find(".tmp-") != std::string::npos) continue;
    std::string p = fs::Join(dir, n);
    MV_ASSIGN_OR_RETURN(std::string data, fs::ReadFile(p));
    MV_ASSIGN_OR_RETURN(auto packs, DecodeIndexFile(data, p));
    for (const auto& pk : packs) index_.AddPack(pk);
  }
  index_loaded_ = true;
  return Status::Ok();
}

Result<std::vector<BlobId>> Repository::ListPackFiles() const {
  std::vector<BlobId> out;
  MV_ASSIGN_OR_RETURN(auto subdirs, fs::ListDir(PacksDir()));
  for (const auto& sd : subdirs) {
    MV_ASSIGN_OR_RETURN(auto names, fs::ListDir(fs::Join(PacksDir(), sd)));
    for (const auto& n : names) {
      BlobId id;
      if (n.size() == 32 + 8 && n.compare(32, 8, ".tar.zst") == 0 &&
          BlobId::FromHex(std::string_view(n).substr(0, 32), &id))
        out.push_back(id);
    }
  }
  return out;
}

Status Repository::WriteIndex(const std::vector<PackInfo>& packs) {
  if (packs.empty()) return Status::Ok();
  for (const auto& p : packs) index_.AddPack(p);
  std::string name = fs::RandomHex(16);
  return fs::WriteFileAtomic(fs::Join(path_, "index/" + name), EncodeIndexFile(packs));
}

Result<size_t> Repository::AdoptOrphanPacks() {
  MV_RETURN_IF_ERROR(LoadIndex());
  MV_ASSIGN_OR_RETURN(auto files, ListPackFiles());
  std::vector<PackInfo> adopted;
  for (const auto& id : files) {
    if (index_.HasPack(id)) continue;
    auto info = ListPack(PackPath(id), id);
    if (!info.ok()) continue;   // a damaged orphan is left for `check` to report
    adopted.push_back(std::move(info).value());
  }
  MV_RETURN_IF_ERROR(WriteIndex(adopted));
  return adopted.size();
}

Result<std::vector<SnapshotMeta>> Repository::ListSnapshots() const {
  std::string dir = fs::Join(path_, "snapshots");
  MV_ASSIGN_OR_RETURN(auto names, fs::ListDir(dir));
  std::vector<SnapshotMeta> out;
  for (const auto& n : names) {
    if (n.size() != 32) continue;   // skips temp files of an interrupted commit
    std::string p = fs::Join(dir, n);
    MV_ASSIGN_OR_RETURN(std::string header, ReadSealedHeader(p, SnapshotMagic(), SnapshotOldestVersion()));
    MV_ASSIGN_OR_RETURN(SnapshotMeta m, DecodeSnapshotHeader(header, p));
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

Result<std::string> Repository::ResolveSnapshot(const std::string& ref) const {
  MV_ASSIGN_OR_RETURN(auto snaps, ListSnapshots());
  if (snaps.empty()) return Status::NotFound("the repository has no snapshots yet; run `mailvault backup`", path_);
  if (ref == "latest") return snaps.back().id;
  if (ref.size() < 4)
    return Status::Invalid("snapshot ID prefix '" + ref + "' is too short: give at least 4 hex digits");
  std::vector<std::string> hits;
  for (const auto& s : snaps)
    if (s.id.compare(0, ref.size(), ref) == 0) hits.push_back(s.id);
  if (hits.empty())
    return Status::NotFound("no snapshot matches '" + ref + "'; list them with `mailvault snapshots`", path_);
  if (hits.size() > 1)
    return Status::Invalid("snapshot ID prefix '" + ref + "' is ambiguous (" + std::to_string(hits.size()) +
                           " match); give more digits");
  return hits[0];
}

Result<Snapshot> Repository::LoadSnapshot(const std::string& id) const {
  std::string p = fs::Join(path_, "snapshots/" + id);
  MV_ASSIGN_OR_RETURN(std::string data, fs::ReadFile(p));
  return DecodeSnapshot(data, p);
}

Result<EntryTable> Repository::LoadEntryTable(const std::string& id) const {
  std::string p = fs::Join(path_, "snapshots/" + id);
  MV_ASSIGN_OR_RETURN(std::string data, fs::ReadFile(p));
  return EntryTable::Decode(data, p);
}

Status Repository::CommitSnapshot(Snapshot& snap) {
  if (snap.meta.id.empty()) snap.meta.id = fs::RandomHex(16);
  return fs::WriteFileAtomic(fs::Join(path_, "snapshots/" + snap.meta.id), EncodeSnapshot(snap));
}

Result<std::string> Repository::ReadBlob(const BlobId& id) const {
  auto loc = index_.Find(id);
  if (!loc) return Status::NotFound("blob " + id.Hex() + " is not in the index", path_);
  std::string out;
  bool found = false;
  Status st = ReadPack(
      PackPath(loc->pack), loc->pack, {.verify_pack_hash = false},
      [&](const BlobId& b, uint64_t) { return b == id; },
      [&](const BlobId&, std::string_view data) {
        out.assign(data);
        found = true;
        return false;
      });
  MV_RETURN_IF_ERROR(st);
  if (!found) return Status::Corruption("blob " + id.Hex() + " is missing from its pack", PackPath(loc->pack));
  if (hasher_.Hash(out.data(), out.size()) != id)
    return Status::Corruption("blob " + id.Hex() + " does not match its hash", PackPath(loc->pack));
  return out;
}

}  // namespace mv::storage
