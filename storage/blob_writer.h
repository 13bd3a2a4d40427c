// The write side of a backup (docs/FORMAT.md §5, §8): stores blobs that the repository does
// not hold yet into packs, one open pack per worker, and hands back the finished packs for the
// index. Thread-safe: workers call Put() concurrently, each with its own worker number.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "storage/blob_id_set.h"
#include "storage/blob_reader.h"
#include "storage/blob_sink.h"
#include "storage/hash.h"
#include "storage/pack.h"
#include "storage/status.h"

namespace mv::storage {

class Repository;

struct BlobWriterOptions {
  int zstd_level = 3;
  int workers = 2;
  uint64_t pack_target_bytes = 32ull << 20;  // uncompressed tar bytes per pack
  // When the finished packs not yet indexed hold this many blobs, make them durable and write
  // an index file for them (docs/FORMAT.md §8), then forget their entries: a backup's memory
  // then does not grow with the entries of its new blobs. 0: only the caller writes the index.
  size_t index_batch_blobs = 0;
};

class BlobWriter final : public BlobSink {
 public:
  // `existing` (from repo.OpenBlobReader()) says which blobs the repository already holds; both
  // must outlive the writer.
  BlobWriter(const Repository& repo, const BlobReader& existing, BlobWriterOptions opts);
  ~BlobWriter() override;
  // Stores the blob unless the repository or this backup already has it. Returns true when it
  // was new. `worker` is in [0, opts.workers).
  Result<bool> Put(int worker, const BlobId& id, const void* data, size_t len) override;
  const KeyedHasher& hasher() const override;
  const Chunker& chunker() const override;
  std::string ScratchDir() const override;
  // Finishes every open pack and fsyncs the pack directories. Then packs() is complete.
  Status Finish();
  // The finished packs that no index file written by this writer names yet (all of them when
  // index_batch_blobs is 0): what the caller indexes after Finish().
  const std::vector<PackInfo>& packs() const { return packs_; }
  uint64_t bytes_packed() const;
  // Frees the per-backup bookkeeping once packs() has been written to the index.
  void Release();

 private:
  Status FinishPack(int worker);
  Status IndexBatchLocked();  // with mu_ held: durable, then an index file for packs_

  const Repository& repo_;
  const BlobReader& existing_;
  BlobWriterOptions opts_;
  std::vector<std::unique_ptr<PackWriter>> open_;
  std::mutex mu_;                         // guards seen_, packs_, dirs_
  BlobIdSet seen_;                        // stored (or being stored) by this backup
  std::vector<PackInfo> packs_;           // finished, not yet named by an index file of ours
  size_t unindexed_blobs_ = 0;            // entries in packs_
  std::unordered_set<std::string> dirs_;  // pack subdirectories to fsync
  uint64_t bytes_packed_ = 0;             // of the packs indexed already, then (Release) of all
};

}  // namespace mv::storage
