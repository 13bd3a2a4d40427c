// The write side of a backup (docs/FORMAT.md §5, §8): stores blobs that the repository does
// not hold yet into packs, one open pack per worker, and hands back the finished packs for the
// index. Thread-safe: workers call Put() concurrently, each with its own worker number.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "storage/hash.h"
#include "storage/pack.h"
#include "storage/status.h"

namespace mv::storage {

class Repository;

struct BlobWriterOptions {
  int zstd_level = 3;
  int workers = 2;
  uint64_t pack_target_bytes = 32ull << 20;   // uncompressed tar bytes per pack
};

class BlobWriter {
 public:
  BlobWriter(const Repository& repo, BlobWriterOptions opts);
  ~BlobWriter();
  // Stores the blob unless the repository or this backup already has it. Returns true when it
  // was new. `worker` is in [0, opts.workers).
  Result<bool> Put(int worker, const BlobId& id, const void* data, size_t len);
  // Finishes every open pack and fsyncs the pack directories. Then packs() is complete.
  Status Finish();
  const std::vector<PackInfo>& packs() const { return packs_; }
  uint64_t bytes_packed() const;
  // Frees the per-backup bookkeeping once packs() has been written to the index.
  void Release();

 private:
  Status FinishPack(int worker);

  const Repository& repo_;
  BlobWriterOptions opts_;
  std::vector<std::unique_ptr<PackWriter>> open_;
  std::mutex mu_;                                      // guards seen_, packs_, dirs_
  std::unordered_set<BlobId, BlobIdHash> seen_;        // stored (or being stored) by this backup
  std::vector<PackInfo> packs_;
  std::unordered_set<std::string> dirs_;               // pack subdirectories to fsync
  uint64_t bytes_packed_ = 0;                          // kept by Release()
};

}  // namespace mv::storage
