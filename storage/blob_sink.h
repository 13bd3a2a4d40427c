// What the archiver writes into a repository: blobs, each stored once (docs/FORMAT.md §5), chunked
// and hashed with the repository's own chunker and key (§3, §4). Implemented by storage::BlobWriter
// (storage/blob_writer.h), which packs the blobs; the packs reach the index only when the backup
// writes it (§8), so the archiver cannot commit anything through this interface.
//
// Thread-safe: workers call Put() concurrently, each with its own worker number.
#pragma once

#include <cstddef>
#include <string>

#include "storage/chunker.h"
#include "storage/hash.h"
#include "storage/status.h"

namespace mv::storage {

class BlobSink {
 public:
  virtual ~BlobSink() = default;
  virtual const KeyedHasher& hasher() const = 0;
  virtual const Chunker& chunker() const = 0;
  // Stores the blob unless the repository or this backup already holds it. Returns true when it
  // was new. `worker` is in [0, the writer's worker count).
  virtual Result<bool> Put(int worker, const BlobId& id, const void* data, size_t len) = 0;
  // A directory on the repository's file system for scratch files (a SQLite image being taken):
  // the caller removes its files; an interrupted run's are removed by the next lock holder.
  virtual std::string ScratchDir() const = 0;
};

}  // namespace mv::storage
