// The repository in a directory on this machine (storage/backend.h): today's files, written
// through an Env (storage/env.h) so tests can fail writes and simulate a power cut.
#pragma once

#include <string>

#include "storage/backend.h"
#include "storage/env.h"

namespace mv::storage {

class LocalBackend final : public Backend {
 public:
  // `env` must outlive the backend.
  explicit LocalBackend(std::string root, Env* env = Env::Default());

  std::string Describe(std::string_view rel = {}) const override;
  const std::string& local_root() const override { return root_; }
  std::string ScratchDir() const override;
  Status Create() override;
  Result<std::vector<ObjectInfo>> List(const std::string& dir) const override;
  Result<std::string> Read(const std::string& name) const override;
  Result<std::unique_ptr<ObjectReader>> OpenReader(const std::string& name) const override;
  Result<std::string> ReadAt(const std::string& name, uint64_t offset,
                             uint64_t length) const override;
  Result<uint64_t> Size(const std::string& name) const override;
  Status Put(const std::string& name, std::string_view data) override;
  Status Overwrite(const std::string& name, std::string_view data) override {
    return Put(name, data);
  }
  Status PutFile(const std::string& local_path, const std::string& name) override;
  Status SyncDir(const std::string& dir) override;
  Status Delete(const std::string& name) override;
  Result<std::unique_ptr<HeldLock>> LockExclusive(const std::string& purpose, const LockWait& wait,
                                                  std::string* took_over_stale) override;

 private:
  std::string root_;
  Env* env_;
};

}  // namespace mv::storage
