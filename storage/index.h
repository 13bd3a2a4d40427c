// The index (docs/FORMAT.md §6): blob ID -> (pack, offset, length). Derived data: it can be
// rebuilt by listing every pack. On disk it is a set of sealed files under index/, each naming
// the packs one backup wrote and their blobs; in memory, the union of them.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <initializer_list>
#include <vector>

#include "storage/backend.h"
#include "storage/hash.h"
#include "storage/pack.h"
#include "storage/status.h"

namespace mv::storage {

struct BlobLocation {
  BlobId pack;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Memory layout (about 45 bytes a blob, against about 100 for a hash map): packs_ keeps every
// pack's entries as read (32 bytes a blob; packs() hands them out), and the lookup structure is
// one 12-byte row per distinct blob that points into them: {32 bits of the ID's mixed bits,
// pack number, entry number}, sorted by those bits, with a table of where each value of the
// first up to 16 bits starts (at most 256 KiB). A lookup goes to its bucket, binary-searches the
// rows and compares the whole ID in the entry a row points to.
//
// AddPack only appends the pack; the first lookup after it sorts the new packs' rows and merges
// them into the rest (once per batch of packs, so loading every index file sorts once). Of
// several entries for one blob the row kept is the one of the pack added first (§6: packs are
// added in the order the index files are read), the first entry within a pack.
//
// Not thread-safe for writes (AddPack, assignment). Concurrent const lookups are fine, also
// right after an AddPack: the merge they may start is done once, under a mutex.
class Index {
 public:
  Index() = default;
  Index(Index&& other) noexcept { *this = std::move(other); }
  Index& operator=(Index&& other) noexcept;
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  void AddPack(const PackInfo& pack);
  void AddPack(PackInfo&& pack);  // the same, without copying the pack's entries
  // Hands every pack back (in the order added) and leaves the index empty: for a caller that
  // needs the lookups only for a while and the packs after (retention/prune.cpp).
  std::vector<PackInfo> TakePacks() &&;
  bool Has(const BlobId& id) const { return FindRow(id) != nullptr; }
  std::optional<BlobLocation> Find(const BlobId& id) const;
  size_t blob_count() const;
  size_t pack_count() const { return packs_.size(); }
  const std::vector<PackInfo>& packs() const { return packs_; }
  bool HasPack(const BlobId& pack) const { return pack_ix_.count(pack) != 0; }
  // The pack as added (its first entry when added twice); nullptr when unknown. Valid until the
  // next AddPack or assignment.
  const PackInfo* FindPack(const BlobId& pack) const {
    auto it = pack_ix_.find(pack);
    return it == pack_ix_.end() ? nullptr : &packs_[it->second];
  }

 private:
  struct Row {
    uint32_t key;  // the top 32 of MixedBits(id)
    uint32_t pack_ix;
    uint32_t entry_ix;
  };
  // Rows of every pack, derived from packs_ by Settle().
  struct Table {
    std::vector<Row> rows;         // sorted by (key, pack_ix, entry_ix), one per distinct blob
    std::vector<uint32_t> starts;  // starts[b]: first row whose key >> shift is >= b
    int shift = 32;
    size_t merged_packs = 0;  // packs_[0, merged_packs) have their rows in `rows`
  };

  const PackEntry& EntryOf(const Row& r) const { return packs_[r.pack_ix].entries[r.entry_ix]; }
  const Row* FindRow(const BlobId& id) const;
  void Settle() const;          // merges the rows of packs added since the last merge, once
  void MergeNewPacks() const;   // what Settle() runs under mu_; writes only table_
  void DropDuplicates() const;  // keeps the first row of each blob
  void BuildStarts() const;

  std::vector<PackInfo> packs_;
  std::unordered_map<BlobId, uint32_t, BlobIdHash> pack_ix_;
  // Derived, so const lookups may complete it: written only under mu_ and before settled_ is set.
  mutable Table table_;
  mutable std::atomic<bool> settled_{true};
  mutable std::mutex mu_;
};

// One index file's content. The body is compressed as it is encoded, pack by pack, so only the
// compressed file is ever held whole.
std::string EncodeIndexFile(const std::vector<PackInfo>& packs);
// One index file naming the packs of every part, in order (no copy of the parts is made).
std::string EncodeIndexFile(std::initializer_list<const std::vector<PackInfo>*> parts);
// One index file naming `packs`, in order.
std::string EncodeIndexFile(const std::vector<const PackInfo*>& packs);
Result<std::vector<PackInfo>> DecodeIndexFile(std::string_view data, const std::string& path);

// Every index file of a repository as read (§6), for the commands that load the index themselves
// (prune, copy): their names ("index/N"), the packs they name, each pack once (from the first
// file in name order that names it), and apart the temp files of interrupted writes. The first
// file that cannot be read or decoded fails the call; its status names that file.
struct IndexFiles {
  std::vector<std::string> paths;  // "index/N" of every file read
  std::vector<std::string> temp;   // "index/N.tmp-…": interrupted writes, not read
  std::vector<PackInfo> packs;
};
Result<IndexFiles> ReadIndexFiles(const Backend& backend);

}  // namespace mv::storage
