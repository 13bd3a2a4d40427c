#include "storage/blob_writer.h"

#include "storage/fs.h"
#include "storage/layout.h"
#include "storage/repository.h"

namespace mv::storage {

BlobWriter::BlobWriter(const Repository& repo, const BlobReader& existing, BlobWriterOptions opts)
    : repo_(repo),
      existing_(existing),
      opts_(opts),
      open_(static_cast<size_t>(std::max(1, opts.workers))) {}

BlobWriter::~BlobWriter() = default;  // unfinished packs are removed by their writers

const KeyedHasher& BlobWriter::hasher() const { return repo_.hasher(); }
const Chunker& BlobWriter::chunker() const { return repo_.chunker(); }
std::string BlobWriter::ScratchDir() const { return repo_.TmpDir(); }

Result<bool> BlobWriter::Put(int worker, const BlobId& id, const void* data, size_t len) {
  if (existing_.Has(id)) return false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!seen_.Insert(id)) return false;
  }
  auto& w = open_[static_cast<size_t>(worker)];
  if (!w) {
    MV_ASSIGN_OR_RETURN(
        w, PackWriter::Create(repo_.TmpDir(), opts_.zstd_level, repo_.env(), &repo_.backend()));
  }
  MV_RETURN_IF_ERROR(w->Add(id, data, len));
  if (w->raw_bytes() >= opts_.pack_target_bytes) MV_RETURN_IF_ERROR(FinishPack(worker));
  return true;
}

Status BlobWriter::FinishPack(int worker) {
  auto& w = open_[static_cast<size_t>(worker)];
  if (!w || w->count() == 0) return Status::Ok();
  MV_ASSIGN_OR_RETURN(PackInfo info, w->Finish(repo_.backend()));
  w.reset();
  std::lock_guard<std::mutex> l(mu_);
  dirs_.insert(fs::Dirname(layout::PackRelPath(info.pack_id)));
  unindexed_blobs_ += info.entries.size();
  packs_.push_back(std::move(info));
  if (opts_.index_batch_blobs && unindexed_blobs_ >= opts_.index_batch_blobs)
    return IndexBatchLocked();
  return Status::Ok();
}

// §8: each pack's name is durable (its directory and packs/ fsynced) before an index file names
// it. Workers wait meanwhile (a few fsyncs per batch of blobs). Dedup is unchanged: seen_ still
// holds every blob of this backup.
Status BlobWriter::IndexBatchLocked() {
  for (const auto& d : dirs_) MV_RETURN_IF_ERROR(repo_.backend().SyncDir(d));
  MV_RETURN_IF_ERROR(repo_.backend().SyncDir("packs"));
  dirs_.clear();
  MV_RETURN_IF_ERROR(repo_.WriteIndexFile({&packs_}));
  for (const auto& p : packs_) bytes_packed_ += p.file_size;
  std::vector<PackInfo>().swap(packs_);
  unindexed_blobs_ = 0;
  return Status::Ok();
}

Status BlobWriter::Finish() {
  for (size_t i = 0; i < open_.size(); i++) MV_RETURN_IF_ERROR(FinishPack(static_cast<int>(i)));
  for (const auto& d : dirs_) MV_RETURN_IF_ERROR(repo_.backend().SyncDir(d));
  if (!dirs_.empty()) MV_RETURN_IF_ERROR(repo_.backend().SyncDir("packs"));
  return Status::Ok();
}

void BlobWriter::Release() {
  bytes_packed_ = bytes_packed();
  seen_.Clear();
  std::vector<PackInfo>().swap(packs_);
  unindexed_blobs_ = 0;
}

uint64_t BlobWriter::bytes_packed() const {
  uint64_t n = bytes_packed_;
  for (const auto& p : packs_) n += p.file_size;
  return n;
}

}  // namespace mv::storage
