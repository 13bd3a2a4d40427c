#include "storage/cached_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "storage/fs.h"
#include "storage/hash.h"
#include "storage/layout.h"
#include "storage/local_backend.h"

namespace mv::storage {
namespace {

std::string TopDir(const std::string& name) { return name.substr(0, name.find('/')); }

// Whether `data` are the bytes `name` promises (docs/FORMAT.md §2, §5).
bool Checks(const std::string& name, std::string_view data, bool sealed) {
  // An encrypted object: authenticated when decrypted, above this cache (Evict on failure).
  static constexpr std::string_view kAge = "age-encryption.org/v1\n";
  if (data.substr(0, kAge.size()) == kAge) return true;
  if (sealed) {
    if (data.size() < 16) return false;
    BlobId want;
    std::memcpy(want.bytes.data(), data.data() + data.size() - 16, 16);
    return PlainHash(data.data(), data.size() - 16) == want;
  }
  BlobId id;
  std::string file = name.substr(name.rfind('/') + 1);
  return layout::ParsePackName(file, &id) && PlainHash(data.data(), data.size()) == id;
}

// Reads a string from the start: a pack served from the cache.
class StringReader final : public ObjectReader {
 public:
  explicit StringReader(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs v;
  if (::statvfs(dir.c_str(), &v) != 0) return 0;
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

}  // namespace

CachedBackend::CachedBackend(std::unique_ptr<Backend> remote, std::string dir, Env* env)
    : remote_(std::move(remote)), dir_(std::move(dir)), env_(env) {}

CachedBackend::~CachedBackend() {
  if (!spill_dir_.empty()) (void)fs::RemoveTree(spill_dir_);
}

void CachedBackend::KeepReadPacks(uint64_t bytes) {
  if (bytes == 0 || !spill_dir_.empty()) return;
  // The spill directories of processes that are gone (killed) go first.
  if (auto names = fs::ListDir(dir_); names.ok())
    for (const auto& n : *names) {
      if (n.rfind("spill-", 0) != 0) continue;
      long pid = std::strtol(n.c_str() + 6, nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        (void)fs::RemoveTree(fs::Join(dir_, n));
    }
  std::string dir = fs::Join(dir_, "spill-" + std::to_string(::getpid()));
  if (!fs::MakeDirs(dir, 0700, env_).ok()) return;  // best effort: packs stream as before
  spill_dir_ = dir;
  spill_budget_ = std::min(bytes, FreeBytes(dir) / 2);
}

Result<std::unique_ptr<ObjectReader>> CachedBackend::SpilledPack(const std::string& name,
                                                                 uint64_t size) const {
  using Reader = std::unique_ptr<ObjectReader>;
  std::string path = fs::Join(spill_dir_, name);
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = spilled_.begin(); it != spilled_.end(); ++it) {
      if (it->first != name) continue;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        spilled_.splice(spilled_.begin(), spilled_, it);
        hits_++;
        hit_bytes_ += it->second;
        return NewFdReader(fd, path);
      }
      spill_bytes_ -= it->second;
      spilled_.erase(it);
      break;
    }
    if (size > spill_budget_) return Reader();
    // Room first: the packs read least recently go.
    while (spill_bytes_ + size > spill_budget_ && !spilled_.empty()) {
      (void)::unlink(fs::Join(spill_dir_, spilled_.back().first).c_str());
      spill_bytes_ -= spilled_.back().second;
      spilled_.pop_back();
    }
    if (spill_bytes_ + size > spill_budget_) return Reader();  // the rest is being downloaded
    spill_bytes_ += size;  // reserved, so that downloads in parallel stay within the budget
  }
  auto release = [&] {
    std::lock_guard<std::mutex> l(mu_);
    spill_bytes_ -= size;
  };
  // Downloaded into a temp file and renamed, so that no reader sees half a pack. A download that
  // fails fails the read (after the remote's retries); a local write that fails (a full disk)
  // only means the pack is streamed instead.
  std::string tmp = path + ".tmp-" + fs::RandomHex(8);
  auto in = remote_->OpenReader(name);
  if (!in.ok()) {
    release();
    return in.status();
  }
  auto file = fs::MakeDirs(fs::Dirname(path), 0700, env_).ok()
                  ? env_->NewWritableFile(tmp, 0600)
                  : Result<std::unique_ptr<WritableFile>>(Status::IOError("no spill dir", path));
  if (!file.ok()) {
    release();
    return Reader();
  }
  std::string buf(1 << 20, '\0');
  Status wrote;
  for (;;) {
    auto n = (*in)->Read(buf.data(), buf.size());
    if (!n.ok()) {
      (void)(*file)->Close();
      (void)env_->RemoveFile(tmp);
      release();
      return n.status();
    }
    if (*n == 0) break;
    wrote = (*file)->Append(std::string_view(buf.data(), *n));
    if (!wrote.ok()) break;
  }
  Status closed = (*file)->Close();
  if (!wrote.ok() || !closed.ok() || !env_->Rename(tmp, path).ok()) {
    (void)env_->RemoveFile(tmp);
    release();
    return Reader();
  }
  std::lock_guard<std::mutex> l(mu_);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool listed =
      std::any_of(spilled_.begin(), spilled_.end(), [&](const auto& p) { return p.first == name; });
  if (listed)  // downloaded twice at once: the file is one, counted once
    spill_bytes_ -= size;
  else if (fd >= 0)
    spilled_.emplace_front(name, size);
  else {
    spill_bytes_ -= size;
    (void)::unlink(path.c_str());
  }
  if (fd < 0) return Reader();
  return NewFdReader(fd, path);
}

CachedBackend::Kind CachedBackend::KindOf(const std::string& name) {
  std::string top = TopDir(name);
  if (name.size() <= top.size() + 1) return Kind::kNone;
  if (top == "index" || top == "snapshots") return Kind::kSealed;
  BlobId id;
  if (layout::ParsePackRelPath(name, &id)) return Kind::kPack;
  return Kind::kNone;
}

Result<std::vector<ObjectInfo>> CachedBackend::List(const std::string& dir) const {
  MV_ASSIGN_OR_RETURN(auto objects, remote_->List(dir));
  std::vector<std::string> tops;
  if (dir.empty())
    tops = {"index", "snapshots", "packs"};
  else if (dir == "index" || dir == "snapshots" || dir == "packs")
    tops = {dir};
  if (tops.empty()) return objects;
  std::set<std::string> remote_names;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& t : tops) {
      dir_listed_[t] = true;
      auto from = listed_.lower_bound(t + "/");
      auto to = listed_.lower_bound(t + "0");  // '0' follows '/'
      listed_.erase(from, to);
    }
    for (const auto& o : objects)
      if (KindOf(o.name) != Kind::kNone) {
        listed_[o.name] = o.size;
        remote_names.insert(o.name);
      }
  }
  // Copies of objects the remote no longer has go (a prune, perhaps on another host).
  LocalBackend cache(dir_, env_);
  for (const auto& t : tops) {
    auto cached = cache.List(t);
    if (!cached.ok()) continue;
    for (const auto& c : *cached)
      if (!remote_names.count(c.name)) (void)fs::RemoveFile(fs::Join(dir_, c.name), env_);
  }
  return objects;
}

int64_t CachedBackend::ListedSize(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = listed_.find(name);
  if (it != listed_.end()) return static_cast<int64_t>(it->second);
  return dir_listed_.count(TopDir(name)) ? -1 : -2;
}

std::optional<std::string> CachedBackend::Cached(const std::string& name, Kind kind) const {
  std::string path = fs::Join(dir_, name);
  if (!fs::Exists(path)) return std::nullopt;
  int64_t size = ListedSize(name);
  if (size == -2) {  // no listing: ask the remote
    auto s = remote_->Size(name);
    if (!s.ok()) return std::nullopt;
    size = static_cast<int64_t>(*s);
  }
  if (size < 0) return std::nullopt;
  auto data = fs::ReadFile(path);
  if (!data.ok() || data->size() != static_cast<uint64_t>(size) ||
      !Checks(name, *data, kind == Kind::kSealed)) {
    (void)fs::RemoveFile(path, env_);  // damaged or stale: rebuilt from the remote
    return std::nullopt;
  }
  std::lock_guard<std::mutex> l(mu_);
  hits_++;
  hit_bytes_ += data->size();
  return std::move(data).value();
}

void CachedBackend::Store(const std::string& name, std::string_view data) const {
  // Best effort: a cache that cannot be written only costs transfers.
  std::string path = fs::Join(dir_, name);
  if (!fs::MakeDirs(fs::Dirname(path), 0700, env_).ok()) return;
  std::string tmp = fs::Join(dir_, "tmp-" + fs::RandomHex(8));
  auto file = env_->NewWritableFile(tmp, 0600);
  if (!file.ok()) return;
  Status st = (*file)->Append(data);
  Status closed = (*file)->Close();
  if (st.ok() && closed.ok() && env_->Rename(tmp, path).ok()) return;
  (void)env_->RemoveFile(tmp);
}

void CachedBackend::Forget(const std::string& name) const {
  (void)fs::RemoveFile(fs::Join(dir_, name), env_);
  std::lock_guard<std::mutex> l(mu_);
  listed_.erase(name);
}

Result<std::string> CachedBackend::Read(const std::string& name) const {
  Kind kind = KindOf(name);
  if (kind == Kind::kNone) return remote_->Read(name);
  if (auto c = Cached(name, kind)) return std::move(*c);
  MV_ASSIGN_OR_RETURN(std::string data, remote_->Read(name));
  if ((kind == Kind::kSealed || data.size() <= kMaxCachedPack) &&
      Checks(name, data, kind == Kind::kSealed))
    Store(name, data);
  return data;
}

Result<std::unique_ptr<ObjectReader>> CachedBackend::OpenReader(const std::string& name) const {
  Kind kind = KindOf(name);
  if (kind != Kind::kPack) return remote_->OpenReader(name);
  int64_t size = ListedSize(name);
  if (size == -2) {
    auto s = remote_->Size(name);
    if (!s.ok()) return s.status();
    size = static_cast<int64_t>(*s);
    std::lock_guard<std::mutex> l(mu_);
    listed_[name] = static_cast<uint64_t>(size);
  }
  // A large pack streams from the remote (or is kept for this run: KeepReadPacks), as does one
  // the listing lacks (the remote names the error then).
  if (size < 0 || static_cast<uint64_t>(size) > kMaxCachedPack) {
    if (size >= 0 && spill_budget_ > 0) {
      MV_ASSIGN_OR_RETURN(auto spilled, SpilledPack(name, static_cast<uint64_t>(size)));
      if (spilled) return spilled;
    }
    return remote_->OpenReader(name);
  }
  MV_ASSIGN_OR_RETURN(std::string data, Read(name));
  return std::unique_ptr<ObjectReader>(std::make_unique<StringReader>(std::move(data)));
}

Result<std::string> CachedBackend::ReadAt(const std::string& name, uint64_t offset,
                                          uint64_t length) const {
  if (KindOf(name) != Kind::kPack) return remote_->ReadAt(name, offset, length);
  bool spilled;
  {
    std::lock_guard<std::mutex> l(mu_);
    spilled = std::any_of(spilled_.begin(), spilled_.end(),
                          [&](const auto& p) { return p.first == name; });
  }
  if (spilled) {
    std::string path = fs::Join(spill_dir_, name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      std::string out(length, '\0');
      Status st = fs::ReadExact(fd, out.data(), length, offset, path);
      ::close(fd);
      if (st.ok()) {
        std::lock_guard<std::mutex> l(mu_);
        hits_++;
        hit_bytes_ += length;
        return out;
      }
    }
  }
  if (fs::Exists(fs::Join(dir_, name)))
    if (auto c = Cached(name, Kind::kPack); c && offset + length <= c->size())
      return c->substr(offset, length);
  return remote_->ReadAt(name, offset, length);
}

Status CachedBackend::Put(const std::string& name, std::string_view data) {
  MV_RETURN_IF_ERROR(remote_->Put(name, data));
  if (KindOf(name) == Kind::kSealed) {
    Store(name, data);
    std::lock_guard<std::mutex> l(mu_);
    listed_[name] = data.size();
  }
  return Status::Ok();
}

Status CachedBackend::PutFile(const std::string& local_path, const std::string& name) {
  // A small pack (a tree pack) is kept: the next backup reads its trees. The scratch directory
  // is on the cache's file system, so a hard link costs nothing.
  std::string path = fs::Join(dir_, name);
  bool keep = false;
  uint64_t size = 0;
  if (KindOf(name) == Kind::kPack) {
    struct stat st;
    if (::stat(local_path.c_str(), &st) == 0 &&
        static_cast<uint64_t>(st.st_size) <= kMaxCachedPack) {
      size = static_cast<uint64_t>(st.st_size);
      keep = true;
    }
  }
  if (keep) {
    if (fs::MakeDirs(fs::Dirname(path), 0700, env_).ok()) {
      (void)fs::RemoveFile(path, env_);
      keep = ::link(local_path.c_str(), path.c_str()) == 0;
    } else {
      keep = false;
    }
  }
  Status st = remote_->PutFile(local_path, name);
  if (!st.ok()) {
    if (keep) (void)fs::RemoveFile(path, env_);
    return st;
  }
  if (keep) {
    std::lock_guard<std::mutex> l(mu_);
    listed_[name] = size;
  }
  return Status::Ok();
}

Status CachedBackend::Delete(const std::string& name) {
  MV_RETURN_IF_ERROR(remote_->Delete(name));
  if (KindOf(name) != Kind::kNone) Forget(name);
  return Status::Ok();
}

BackendStats CachedBackend::stats() const {
  BackendStats s = remote_->stats();
  std::lock_guard<std::mutex> l(mu_);
  s.cache_hits = hits_;
  s.cache_bytes = hit_bytes_;
  return s;
}

}  // namespace mv::storage
