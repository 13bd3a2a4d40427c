// A local cache in front of a remote backend (S3; docs/S3.md §5, issue #6): copies of the
// files every nightly backup reads again, so that a backup in which nothing changed transfers
// only listings and its new manifest.
//
// What is cached: index files and manifests (sealed, docs/FORMAT.md §2), and packs of at most
// kMaxCachedPack bytes (tree packs, §7.5, close at 4 MiB of tar; also a backup's last, small
// data pack). Nothing else is kept across runs.
//
// Within one run, after KeepReadPacks(budget) (restore and verify), larger packs are also kept
// as they are downloaded, in `<dir>/spill-<pid>/`, up to `budget` bytes (least recently used go
// first) and never more than half the file system's free space, and removed when the backend
// is destroyed; a spill directory whose process is gone is removed by the next one that spills.
// So a full restore, which reads a pack again for each batch of files it holds, downloads each
// pack once.
//
// A cached copy is used only when
//   - the remote has the name with the same size: by the newest listing of its directory made
//     through this backend, or, when there was none, by a HEAD (Size) request; and
//   - its bytes check: a sealed file's trailing hash, a pack's name (the hash of its bytes); an
//     age file (an encrypted repository, docs/ENCRYPTION.md) is checked by the decrypting
//     backend above, which evicts a copy that does not authenticate (Evict) and reads again.
// Otherwise the object is read from the remote and the copy replaced, so a deleted, truncated
// or damaged cache is rebuilt, never trusted. A listing also removes cached copies of objects
// the remote no longer has (a prune on another host).
//
// The cache is not the repository: losing it loses nothing, and it is written without fsync.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "storage/backend.h"
#include "storage/env.h"

namespace mv::storage {

class CachedBackend final : public Backend {
 public:
  static constexpr uint64_t kMaxCachedPack = 8u << 20;

  // `dir` holds the copies (made when missing); `env` must outlive the backend.
  CachedBackend(std::unique_ptr<Backend> remote, std::string dir, Env* env = Env::Default());
  ~CachedBackend() override;

  std::string Describe(std::string_view rel = {}) const override { return remote_->Describe(rel); }
  const std::string& local_root() const override { return remote_->local_root(); }
  std::string ScratchDir() const override { return remote_->ScratchDir(); }
  Status Create() override { return remote_->Create(); }
  Result<std::vector<ObjectInfo>> List(const std::string& dir) const override;
  Result<std::string> Read(const std::string& name) const override;
  Result<std::unique_ptr<ObjectReader>> OpenReader(const std::string& name) const override;
  // From a kept copy of the pack when there is one (spilled in this run, or a small pack that
  // checks), otherwise from the remote; ranges are not cached.
  Result<std::string> ReadAt(const std::string& name, uint64_t offset,
                             uint64_t length) const override;
  Result<uint64_t> Size(const std::string& name) const override { return remote_->Size(name); }
  Status Put(const std::string& name, std::string_view data) override;
  Status PutFile(const std::string& local_path, const std::string& name) override;
  Status SyncDir(const std::string& dir) override { return remote_->SyncDir(dir); }
  Status Overwrite(const std::string& name, std::string_view data) override {
    return remote_->Overwrite(name, data);
  }
  Status Delete(const std::string& name) override;
  Result<std::unique_ptr<HeldLock>> LockExclusive(const std::string& purpose, const LockWait& wait,
                                                  std::string* took_over_stale) override {
    return remote_->LockExclusive(purpose, wait, took_over_stale);
  }
  BackendStats stats() const override;
  void Evict(const std::string& name) const override { Forget(name); }
  void KeepReadPacks(uint64_t bytes) override;

 private:
  enum class Kind { kNone, kSealed, kPack };
  static Kind KindOf(const std::string& name);
  // The remote's size of `name` as the newest listing saw it; -1 when absent from it; -2 when
  // no listing of its directory was made.
  int64_t ListedSize(const std::string& name) const;
  // The cached bytes of `name` when they are fresh and check; nullopt otherwise.
  std::optional<std::string> Cached(const std::string& name, Kind kind) const;
  void Store(const std::string& name, std::string_view data) const;
  void Forget(const std::string& name) const;
  // A reader of pack `name` (`size` bytes) from the spill directory, downloading it there first
  // when it is not; nullptr when it does not fit the budget (the caller streams it instead).
  Result<std::unique_ptr<ObjectReader>> SpilledPack(const std::string& name, uint64_t size) const;

  std::unique_ptr<Backend> remote_;
  std::string dir_;
  Env* env_;
  mutable std::mutex mu_;
  mutable std::map<std::string, uint64_t> listed_;  // name -> size, for the dirs below
  mutable std::map<std::string, bool> dir_listed_;  // top directory -> listed
  mutable uint64_t hits_ = 0;
  mutable uint64_t hit_bytes_ = 0;
  // Spilled packs (KeepReadPacks), newest first; their bytes; the budget (0: none).
  std::string spill_dir_;
  uint64_t spill_budget_ = 0;
  mutable std::list<std::pair<std::string, uint64_t>> spilled_;
  mutable uint64_t spill_bytes_ = 0;
};

}  // namespace mv::storage
