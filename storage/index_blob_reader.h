// A BlobReader over an index its caller loaded itself (prune's, copy's), so the repository's
// own index is not loaded and held a second time. Only what tree walks use is implemented:
// hasher(), Find() and ReadPackBlobs(); the rest fails with kUnsupported.
#pragma once

#include <optional>
#include <string>

#include "storage/blob_reader.h"
#include "storage/index.h"
#include "storage/repository.h"

namespace mv::storage {

class IndexBlobReader final : public BlobReader {
 public:
  // `repo` and `index` must outlive the reader. `what` names the caller in kUnsupported errors.
  IndexBlobReader(const Repository& repo, const Index& index, std::string what)
      : repo_(repo), index_(index), what_(std::move(what)) {}
  const KeyedHasher& hasher() const override { return repo_.hasher(); }
  std::optional<BlobLocation> Find(const BlobId& id) const override { return index_.Find(id); }
  bool index_damaged() const override { return false; }
  std::string PackPath(const BlobId& pack) const override { return repo_.PackPath(pack); }
  Status ReadPackBlobs(const BlobId& pack, const WantFn& want,
                       const VisitFn& visit) const override {
    return repo_.ReadPackFile(
        pack, {.verify_pack_hash = false}, [&](const BlobId& id, uint64_t) { return want(id); },
        [&](const BlobId& id, std::string_view data) {
          visit(id, data, hasher().Hash(data.data(), data.size()) == id);
          return true;
        });
  }
  Result<std::string> ReadBlob(const BlobId&) const override { return Unused(); }
  Result<Snapshot> LoadSnapshot(const std::string&) const override { return Unused(); }
  Result<std::unique_ptr<EntryCursor>> OpenEntries(const std::string&,
                                                   SnapshotMeta*) const override {
    return Unused();
  }
  Result<std::vector<std::string>> SnapshotIds() const override { return Unused(); }

 private:
  Status Unused() const { return Status::Unsupported("not used by " + what_); }
  const Repository& repo_;
  const Index& index_;
  std::string what_;
};

}  // namespace mv::storage
