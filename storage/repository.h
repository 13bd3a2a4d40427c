// The repository (docs/FORMAT.md §1 layout, §8 write ordering). Opening checks the format
// version; reading never needs a lock; a backup holds the exclusive lock (storage/lock.h).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/chunker.h"
#include "storage/entry_table.h"
#include "storage/hash.h"
#include "storage/index.h"
#include "storage/pack.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

// The version this build writes (docs/FORMAT.md). It reads every version from
// kOldestFormatVersion up to it.
constexpr int kFormatVersion = 2;
constexpr int kOldestFormatVersion = 1;

class Repository {
 public:
  // Creates an empty repository at `path` (which must not exist or be an empty directory).
  static Status Init(const std::string& path);
  // Opens and loads the config and key; the index is loaded lazily by LoadIndex().
  static Result<std::unique_ptr<Repository>> Open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& id() const { return id_; }
  const KeyedHasher& hasher() const { return hasher_; }
  const Chunker& chunker() const { return chunker_; }

  // Index: the union of index/*. Rebuild-free: packs not named by any index file (left by an
  // interrupted backup) are reported by OrphanPacks() and can be adopted.
  Status LoadIndex();
  const Index& index() const { return index_; }
  Index& mutable_index() { return index_; }
  Result<std::vector<BlobId>> ListPackFiles() const;
  // Lists orphan packs, checks each, and writes one index file adopting the good ones.
  // Returns how many were adopted. Requires the exclusive lock.
  Result<size_t> AdoptOrphanPacks();
  // Writes one index file naming `packs` (after their pack files are durable). §8 step 2.
  Status WriteIndex(const std::vector<PackInfo>& packs);

  std::string PackPath(const BlobId& pack) const;
  std::string TmpDir() const;
  std::string PacksDir() const;
  // Removes temp files left by interrupted runs. Requires the exclusive lock.
  void CleanTmp() const;

  // Snapshots.
  Result<std::vector<SnapshotMeta>> ListSnapshots() const;   // sorted by time, oldest first
  // "latest", a full ID, or a unique prefix (at least 4 hex digits).
  Result<std::string> ResolveSnapshot(const std::string& ref) const;
  Result<Snapshot> LoadSnapshot(const std::string& id) const;
  // The same entries in compact form, for change detection (storage/entry_table.h).
  Result<EntryTable> LoadEntryTable(const std::string& id) const;
  // The commit point (§8 step 3): writes snapshots/<id> atomically. Assigns meta.id if empty.
  Status CommitSnapshot(Snapshot& snap);

  // Reads one blob (decompressing its pack up to it) and checks its hash.
  Result<std::string> ReadBlob(const BlobId& id) const;

 private:
  Repository() = default;
  std::string path_;
  std::string id_;
  KeyedHasher hasher_{std::string(kSecretSize, '\0')};
  Chunker chunker_{""};
  Index index_;
  bool index_loaded_ = false;
};

}  // namespace mv::storage
