// agent/restorer/entries_restore.h.
#include "agent/restorer/entries_restore.h"

#include <algorithm>
#include <string_view>

#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"

namespace mv::agent {
namespace {

using storage::FileEntry;

std::vector<std::string_view> Parts(const std::string& s) {
  std::vector<std::string_view> v;
  for (size_t i = 0;;) {
    size_t e = s.find('/', i);
    v.emplace_back(s.data() + i, (e == std::string::npos ? s.size() : e) - i);
    if (e == std::string::npos) return v;
    i = e + 1;
  }
}

// A BlobReader that reads blobs from `base` and whose only "snapshot" is `entries`.
class EntriesReader final : public storage::BlobReader {
 public:
  EntriesReader(const storage::BlobReader& base, std::vector<FileEntry> entries,
                storage::SnapshotMeta meta)
      : base_(base), entries_(std::move(entries)), meta_(std::move(meta)) {}
  const storage::KeyedHasher& hasher() const override { return base_.hasher(); }
  std::optional<storage::BlobLocation> Find(const storage::BlobId& id) const override {
    return base_.Find(id);
  }
  bool index_damaged() const override { return base_.index_damaged(); }
  std::string PackPath(const storage::BlobId& pack) const override { return base_.PackPath(pack); }
  Status ReadPackBlobs(const storage::BlobId& pack, const WantFn& want,
                       const VisitFn& visit) const override {
    return base_.ReadPackBlobs(pack, want, visit);
  }
  Result<std::string> ReadBlob(const storage::BlobId& id) const override {
    return base_.ReadBlob(id);
  }
  Result<storage::Snapshot> LoadSnapshot(const std::string&) const override {
    return storage::Snapshot{meta_, entries_, {}};
  }
  Result<std::unique_ptr<storage::EntryCursor>> OpenEntries(
      const std::string&, storage::SnapshotMeta* meta) const override {
    *meta = meta_;
    return storage::VectorCursor(entries_);
  }
  Result<std::vector<std::string>> SnapshotIds() const override {
    return std::vector<std::string>{};
  }

 private:
  const storage::BlobReader& base_;
  std::vector<FileEntry> entries_;
  storage::SnapshotMeta meta_;
};

}  // namespace

void SortInWalkOrder(std::vector<FileEntry>* entries) {
  std::sort(entries->begin(), entries->end(), [](const FileEntry& a, const FileEntry& b) {
    auto pa = Parts(a.path), pb = Parts(b.path);
    return std::lexicographical_compare(pa.begin(), pa.end(), pb.begin(), pb.end());
  });
}

Result<RestoreResult> RestoreEntries(const storage::BlobReader& blobs,
                                     std::vector<FileEntry> entries, storage::SnapshotMeta meta,
                                     const RestoreOptions& opts, const ProgressFn& progress) {
  RestoreOptions o = opts;
  o.snapshot = meta.id;
  o.exact = false;  // a list of entries is not a whole tree: never remove anything
  EntriesReader reader(blobs, std::move(entries), std::move(meta));
  return RunRestore(reader, o, progress);
}

}  // namespace mv::agent
