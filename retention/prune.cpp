// docs/FORMAT.md §8 "Prune" (the steps and their order), §9 (why readers need no lock).
#include "retention/prune.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "retention/prune_walk.h"
#include "storage/held_mail.h"
#include "storage/fs.h"
#include "storage/layout.h"
#include "storage/pack.h"

namespace mv::retention {
namespace {

using storage::BlobId;
using storage::PackInfo;

constexpr uint64_t kTarBlock = 512;
constexpr uint64_t kDataPackBytes = 32ull << 20;  // as a backup's packs (§5)
constexpr uint64_t kTreePackBytes = 4ull << 20;   // as a backup's tree packs (§7.5)
constexpr size_t kPacksPerIndexFile = 4096;       // as `repair index` writes them

Status RunCheck(const std::string& what, const std::string& path) {
  return Status::Corruption("prune stopped, nothing was changed: " + what +
                                "; run `mailvault check` (and repair what it reports) first",
                            path);
}

// What one pack holds of the used blobs, and what is decided for it.
struct PackFate {
  const PackInfo* info = nullptr;
  uint64_t raw = 0, used_raw = 0;  // tar bytes of all its entries / of the ones it keeps
  enum Kind { kKeep, kDelete, kRepack } kind = kKeep;
  uint64_t Unused() const {  // its compressed size shared out by tar bytes
    return raw == 0 ? info->file_size
                    : static_cast<uint64_t>(static_cast<double>(info->file_size) *
                                            static_cast<double>(raw - used_raw) /
                                            static_cast<double>(raw));
  }
  double UnusedShare() const { return raw == 0 ? 1.0 : 1.0 - double(used_raw) / double(raw); }
};

uint64_t TarBytes(const storage::PackEntry& e) {
  return kTarBlock + (e.length + kTarBlock - 1) / kTarBlock * kTarBlock;
}

// Every pack file under packs/ with its size; refuses when an indexed one is missing or short.
Result<std::map<BlobId, uint64_t>> StatPacks(const storage::Repository& repo,
                                             const std::vector<PackInfo>& indexed) {
  // One listing (on S3 a few requests, not one per pack).
  MV_ASSIGN_OR_RETURN(auto objects, repo.backend().List("packs"));
  std::map<BlobId, uint64_t> sizes;
  for (const auto& o : objects) {
    BlobId id;
    if (storage::layout::ParsePackRelPath(o.name, &id)) sizes[id] = o.size;
  }
  for (const auto& pk : indexed) {
    auto it = sizes.find(pk.pack_id);
    if (it == sizes.end()) return RunCheck("an indexed pack is missing", repo.PackPath(pk.pack_id));
    if (it->second < pk.file_size)
      return RunCheck("an indexed pack is shorter (" + std::to_string(it->second) +
                          " bytes) than the index says (" + std::to_string(pk.file_size) + ")",
                      repo.PackPath(pk.pack_id));
  }
  return sizes;
}

// Decides every pack's fate (§8 Prune step 2). A blob in several packs is kept once: in the pack
// with the highest used share, which is the one least likely to be repacked.
std::vector<PackFate> Plan(const std::vector<PackInfo>& packs, const UsedBlobs& used,
                           const PruneOptions& opts, storage::BlobIdSet* claimed) {
  std::vector<PackFate> fates(packs.size());
  std::vector<double> naive(packs.size());
  for (size_t i = 0; i < packs.size(); i++) {
    fates[i].info = &packs[i];
    uint64_t raw = 0, u = 0;
    for (const auto& e : packs[i].entries) {
      raw += TarBytes(e);
      if (used.all.Contains(e.id)) u += TarBytes(e);
    }
    fates[i].raw = raw;
    naive[i] = raw ? double(u) / double(raw) : 0;
  }
  std::vector<size_t> order(packs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return naive[a] > naive[b]; });
  for (size_t i : order)
    for (const auto& e : packs[i].entries)
      if (used.all.Contains(e.id) && claimed->Insert(e.id)) fates[i].used_raw += TarBytes(e);
  uint64_t used_bytes = 0, unused = 0;
  for (auto& f : fates) {
    if (f.used_raw == 0) {
      f.kind = PackFate::kDelete;
      continue;
    }
    unused += f.Unused();
    used_bytes += f.info->file_size - f.Unused();
  }
  // Most unused share first (restic's order), until the share is under the limit or the budget
  // is spent.
  std::vector<PackFate*> partial;
  for (auto& f : fates)
    if (f.kind == PackFate::kKeep && f.used_raw < f.raw) partial.push_back(&f);
  std::stable_sort(partial.begin(), partial.end(), [](const PackFate* a, const PackFate* b) {
    return a->UnusedShare() > b->UnusedShare();
  });
  uint64_t budget = 0;
  for (PackFate* f : partial) {
    double total = double(used_bytes + unused);
    if (total == 0 || double(unused) <= opts.max_unused * total) break;
    if (opts.max_unused >= 1.0) break;
    if (f->info->file_size > opts.max_repack_bytes - budget) break;
    budget += f->info->file_size;
    f->kind = PackFate::kRepack;
    unused -= f->Unused();
  }
  return fates;
}

// The new packs of a repack: one open pack for tree records and one for data (§7.5).
class Repacker {
 public:
  Repacker(storage::Repository& repo, int level) : repo_(repo), level_(level) {}

  Status Add(bool tree, const BlobId& id, std::string_view data) {
    auto& w = tree ? tree_ : data_;
    if (!w) {
      MV_ASSIGN_OR_RETURN(
          w, storage::PackWriter::Create(repo_.TmpDir(), level_, repo_.env(), &repo_.backend()));
    }
    MV_RETURN_IF_ERROR(w->Add(id, data.data(), data.size()));
    if (w->raw_bytes() >= (tree ? kTreePackBytes : kDataPackBytes)) return Close(w);
    return Status::Ok();
  }

  // Closes both packs and makes their names durable (§8 Prune step 3).
  Status Finish() {
    MV_RETURN_IF_ERROR(Close(tree_));
    MV_RETURN_IF_ERROR(Close(data_));
    for (const auto& d : dirs_) MV_RETURN_IF_ERROR(repo_.backend().SyncDir(d));
    if (!dirs_.empty()) MV_RETURN_IF_ERROR(repo_.backend().SyncDir("packs"));
    return Status::Ok();
  }
  std::vector<PackInfo>& packs() { return packs_; }

 private:
  Status Close(std::unique_ptr<storage::PackWriter>& w) {
    if (!w || w->count() == 0) return Status::Ok();
    MV_ASSIGN_OR_RETURN(PackInfo info, w->Finish(repo_.backend()));
    w.reset();
    dirs_.insert(storage::fs::Dirname(storage::layout::PackRelPath(info.pack_id)));
    packs_.push_back(std::move(info));
    return Status::Ok();
  }

  storage::Repository& repo_;
  int level_;
  std::unique_ptr<storage::PackWriter> tree_, data_;
  std::vector<PackInfo> packs_;
  std::set<std::string> dirs_;
};

// Copies the blobs each repacked pack keeps into new packs. Only these packs are read.
Status Repack(storage::Repository& repo, const std::vector<PackFate>& fates, const UsedBlobs& used,
              const PruneOptions& opts, const PruneProgressFn& progress,
              std::vector<PackInfo>* written) {
  Repacker out(repo, opts.zstd_level);
  PruneProgress p{"repack", 0, 0};
  for (const auto& f : fates)
    if (f.kind == PackFate::kRepack) p.total += f.info->file_size;
  // The blobs to copy: each one's copy in its claiming pack (Plan), once.
  storage::BlobIdSet copied;
  for (const auto& f : fates) {
    if (f.kind != PackFate::kRepack) continue;
    const BlobId& pack = f.info->pack_id;
    std::string path = repo.PackPath(pack);
    Status bad;
    Status st = repo.ReadPackFile(
        pack, {.verify_pack_hash = true},
        [&](const BlobId& id, uint64_t) { return used.all.Contains(id) && !copied.Contains(id); },
        [&](const BlobId& id, std::string_view data) {
          if (repo.hasher().Hash(data.data(), data.size()) != id) {
            bad = RunCheck("blob " + id.Hex() + " does not match its hash", path);
            return false;
          }
          bad = out.Add(used.trees.Contains(id), id, data);
          copied.Insert(id);
          return bad.ok();
        });
    MV_RETURN_IF_ERROR(bad);
    if (!st.ok()) return RunCheck("a pack to repack cannot be read (" + st.message() + ")", path);
    p.done += f.info->file_size;
    if (progress) progress(p);
  }
  MV_RETURN_IF_ERROR(out.Finish());
  *written = std::move(out.packs());
  return Status::Ok();
}

// Replaces every index file by new ones naming `packs` (§8 Prune step 4): the new files are
// durable before any old one is removed.
Status ReplaceIndex(storage::Repository& repo, const std::vector<std::string>& old_files,
                    const std::vector<const PackInfo*>& packs, PruneResult* res) {
  for (size_t i = 0; i < packs.size(); i += kPacksPerIndexFile) {
    auto end =
        packs.begin() + static_cast<std::ptrdiff_t>(std::min(packs.size(), i + kPacksPerIndexFile));
    std::vector<const PackInfo*> part(packs.begin() + static_cast<std::ptrdiff_t>(i), end);
    std::string p = "index/" + storage::fs::RandomHex(16);
    MV_RETURN_IF_ERROR(repo.backend().Put(p, storage::EncodeIndexFile(part)));
    res->index_files_written++;
  }
  for (const auto& p : old_files) MV_RETURN_IF_ERROR(repo.backend().Delete(p));
  res->index_files_removed = old_files.size();
  return repo.backend().SyncDir("index");
}

// Deletes `packs` (§8 Prune step 5), then makes the deletions durable.
Status DeletePacks(storage::Repository& repo, const std::vector<BlobId>& packs,
                   const PruneProgressFn& progress) {
  std::set<std::string> dirs;
  PruneProgress p{"delete", 0, packs.size()};
  for (const auto& id : packs) {
    MV_RETURN_IF_ERROR(repo.backend().Delete(storage::layout::PackRelPath(id)));
    dirs.insert(storage::fs::Dirname(storage::layout::PackRelPath(id)));
    p.done++;
    if (progress && (p.done % 256 == 0 || p.done == p.total)) progress(p);
  }
  for (const auto& d : dirs) MV_RETURN_IF_ERROR(repo.backend().SyncDir(d));
  return Status::Ok();
}

void Tally(const std::vector<PackFate>& fates, const std::map<BlobId, uint64_t>& sizes,
           const std::set<BlobId>& indexed, PruneResult* res) {
  for (const auto& [id, size] : sizes) {
    res->size_before += size;
    if (!indexed.count(id)) res->unindexed.Add(size);
  }
  for (const auto& f : fates) {
    res->unused_before += f.Unused();
    if (f.kind == PackFate::kDelete) res->deleted.Add(f.info->file_size);
    if (f.kind == PackFate::kRepack) res->repacked.Add(f.info->file_size);
    if (f.kind == PackFate::kKeep) {
      res->kept.Add(f.info->file_size);
      res->unused_after += f.Unused();
    }
  }
}

}  // namespace

Result<PruneResult> Prune(storage::Repository& repo, const PruneOptions& opts,
                          const PruneProgressFn& progress) {
  PruneResult res;
  res.dry_run = opts.dry_run;
  // Step 1: the lock excludes every writer, so packs no index names are nobody's work in
  // progress, and nothing read below changes.
  MV_ASSIGN_OR_RETURN(auto lock, repo.LockExclusive("prune", opts.lock_wait, &res.took_over_stale));
  if (!opts.dry_run) repo.CleanTmp();
  // Under the lock, so nothing changes the index files meanwhile.
  auto read = storage::ReadIndexFiles(repo.backend());
  if (!read.ok())
    return RunCheck(
        "index file is damaged (" + read.status().message() + "; its packs would look unused)",
        read.status().path());
  storage::IndexFiles index_files = std::move(read).value();
  // The temp files of interrupted writes go with the old files.
  index_files.paths.insert(index_files.paths.end(), index_files.temp.begin(),
                           index_files.temp.end());
  MV_ASSIGN_OR_RETURN(auto sizes, StatPacks(repo, index_files.packs));
  UsedBlobs used;
  {
    // The packs move into the index for the walk and back out after it: held once, not twice.
    storage::Index index;
    for (auto& pk : index_files.packs) index.AddPack(std::move(pk));
    index_files.packs.clear();
    auto walked = CollectUsedBlobs(repo, index, progress, &used);
    index_files.packs = std::move(index).TakePacks();
    MV_RETURN_IF_ERROR(walked.status());
    res.snapshots = *walked;
  }
  res.used_blobs = used.all.size();
  res.held_messages = used.held_messages;
  res.held_bytes = used.held_bytes;
  res.held_records_expired = used.expired_records.size();
  // Step 2: the plan.
  storage::BlobIdSet claimed;
  std::vector<PackFate> fates = Plan(index_files.packs, used, opts, &claimed);
  claimed.Clear();
  std::set<BlobId> indexed;
  for (const auto& pk : index_files.packs) indexed.insert(pk.pack_id);
  Tally(fates, sizes, indexed, &res);
  if (opts.dry_run) {
    for (const auto& f : fates)
      if (f.kind == PackFate::kRepack) res.written.bytes += f.info->file_size - f.Unused();
    res.size_after = res.kept.bytes + res.written.bytes;
    return res;
  }
  // docs/FORMAT.md §1 versions 4 and 5: readers of a repository that prune may delete packs
  // from must reload their index when a pack is gone, and a prune must keep held mail, which
  // older builds do not; so before the first pack goes, they are made to refuse it.
  MV_RETURN_IF_ERROR(storage::RaiseConfigVersion(repo));
  // Step 3: new packs, durable.
  std::vector<PackInfo> written;
  MV_RETURN_IF_ERROR(Repack(repo, fates, used, opts, progress, &written));
  for (const auto& pk : written) res.written.Add(pk.file_size);
  // Step 4: one index naming every pack that remains, then the old index files go.
  std::vector<const PackInfo*> remaining;  // not copies: they hold every kept blob's entry
  std::set<BlobId> remain_ids;
  for (const auto& f : fates)
    if (f.kind == PackFate::kKeep && remain_ids.insert(f.info->pack_id).second)
      remaining.push_back(f.info);
  for (const auto& pk : written)
    if (remain_ids.insert(pk.pack_id).second) remaining.push_back(&pk);
  MV_RETURN_IF_ERROR(ReplaceIndex(repo, index_files.paths, remaining, &res));
  // Step 5: packs no index names now. A new pack may have the name of an orphan an interrupted
  // prune left (the same blobs repacked give the same bytes): it is indexed, so it stays.
  std::vector<BlobId> doomed;
  for (const auto& [id, size] : sizes)
    if (!remain_ids.count(id)) doomed.push_back(id);
  MV_RETURN_IF_ERROR(DeletePacks(repo, doomed, progress));
  // Records of held mail whose period ended: their blobs were not counted as used above.
  for (const auto& r : used.expired_records) MV_RETURN_IF_ERROR(storage::RemoveHeldRecord(repo, r));
  res.size_after = 0;
  for (const PackInfo* pk : remaining) res.size_after += pk->file_size;
  return res;  // step 6: the lock is released
}

}  // namespace mv::retention
