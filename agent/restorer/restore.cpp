// The restorer (docs/FORMAT.md §10): plans per pack, reads each needed pack once, writes blobs
// to every file that holds them, then sets metadata (directories last, deepest first).
#include "agent/restorer/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "agent/restorer/restore_plan.h"
#include "agent/common/workers.h"
#include "hooks/sqlite_backup.h"
#include "storage/fs.h"
#include "storage/repository.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

struct Target {
  size_t file;        // index into plan.files
  uint64_t offset;
};

struct FileState {
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
};

}  // namespace

Result<RestoreResult> RunRestore(storage::Repository& repo, const RestoreOptions& opts,
                                 const ProgressFn& progress) {
  auto t0 = std::chrono::steady_clock::now();
  MV_RETURN_IF_ERROR(repo.LoadIndex());
  MV_ASSIGN_OR_RETURN(storage::Snapshot snap, repo.LoadSnapshot(opts.snapshot));
  RestoreResult result;
  MV_ASSIGN_OR_RETURN(RestorePlan plan, PlanRestore(repo, snap, opts, &result));

  // Per file: blobs still to come, and whether it failed (then its one problem line is recorded
  // and its temp file removed; later blobs for it are dropped).
  std::vector<FileState> state(plan.files.size());
  std::mutex mu;
  auto fail = [&](size_t i, const std::string& msg) {
    if (state[i].failed.exchange(true)) return;
    DiscardTemp(plan, i);
    std::lock_guard<std::mutex> l(mu);
    result.problems.push_back({plan.files[i].entry->path, msg});
  };

  // Blob -> the files (and offsets) that need it, grouped by pack.
  std::map<storage::BlobId, std::unordered_map<storage::BlobId, std::vector<Target>, storage::BlobIdHash>> by_pack;
  uint64_t bytes_total = 0;
  for (size_t i = 0; i < plan.files.size(); i++) {
    PlannedFile& pf = plan.files[i];
    state[i].remaining = static_cast<int>(pf.entry->blobs.size());
    if (!pf.write) continue;
    uint64_t off = 0;
    for (const auto& b : pf.entry->blobs) {
      auto loc = repo.index().Find(b);
      if (!loc) {
        state[i].failed = true;
        pf.write = false;
        result.stats.files_failed++;
        result.problems.push_back({pf.entry->path, "not restored: blob " + b.Hex() + " is not in the repository index (run " +
                                                   std::string(repo.damaged_index_files().empty()
                                                                   ? "`mailvault check`"
                                                                   : "`mailvault repair index`: an index file is damaged") +
                                                   ")"});
        break;
      }
      by_pack[loc->pack][b].push_back({i, off});
      off += loc->length;
    }
    if (state[i].failed) continue;
    bytes_total += pf.entry->size;
  }
  if (opts.dry_run) {
    if (opts.exact) RemoveExtras(plan, opts, &result);
    FinishPlanReport(plan, &result, opts);
    return result;
  }
  // Files without content (empty) and the multi-blob ones get their temp file now.
  for (size_t i = 0; i < plan.files.size(); i++) {
    if (!plan.files[i].write || state[i].failed) continue;
    Status st = CreateFile(plan, i);
    if (!st.ok()) fail(i, st.message());
  }

  std::vector<storage::BlobId> packs;
  for (const auto& [p, _] : by_pack) packs.push_back(p);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes_done{0}, files_done{0};
  // Called once per (blob, file that holds it). The decrement comes after any failure of this
  // blob is recorded, so whoever brings `remaining` to 0 sees every failure of the file.
  auto deliver = [&](const Target& tg, std::string_view data, const std::string* damaged) {
    if (damaged) fail(tg.file, *damaged);
    else if (!state[tg.file].failed) {
      Status ws = WriteBlob(plan, tg.file, tg.offset, data);
      if (!ws.ok()) fail(tg.file, ws.message());
    }
    if (--state[tg.file].remaining == 0) {
      if (!state[tg.file].failed) {
        Status fs = FinishFile(repo.hasher(), plan, tg.file);
        if (!fs.ok()) fail(tg.file, fs.message());
      }
      files_done++;
    }
    bytes_done += data.size();
  };
  RunWorkers(WorkerCount(opts.threads), [&](int) {
      for (size_t k; (k = next.fetch_add(1)) < packs.size();) {
        const auto& need = by_pack[packs[k]];
        std::string pack_path = repo.PackPath(packs[k]);
        Status st = storage::ReadPack(
            pack_path, packs[k], {.verify_pack_hash = false},
            [&](const storage::BlobId& id, uint64_t) { return need.count(id) != 0; },
            [&](const storage::BlobId& id, std::string_view data) {
              std::string damaged;
              if (repo.hasher().Hash(data.data(), data.size()) != id)
                damaged = "not restored: blob " + id.Hex() + " in pack " + pack_path +
                          " does not match its hash (run `mailvault check --read-data`)";
              for (const auto& tg : need.at(id)) deliver(tg, data, damaged.empty() ? nullptr : &damaged);
              return true;
            });
        if (!st.ok()) {
          std::lock_guard<std::mutex> l(mu);
          result.problems.push_back({pack_path, st.ToString() + " (the files needing blobs from it are not restored)"});
        }
      }
    }, [&] {
      if (progress) progress({files_done, plan.files.size(), bytes_done, bytes_total, "restore"});
    });
  for (size_t i = 0; i < plan.files.size(); i++) {
    if (!plan.files[i].write) continue;
    if (!state[i].failed && state[i].remaining == 0 && plan.files[i].entry->blobs.empty()) {
      Status fs = FinishFile(repo.hasher(), plan, i);
      if (!fs.ok()) fail(i, fs.message());
    } else if (!state[i].failed && state[i].remaining != 0) {
      fail(i, "not restored: some of its blobs could not be read (see the pack named above; run `mailvault check`)");
    }
    if (state[i].failed) {
      plan.files[i].write = false;
      result.stats.files_failed++;
    }
  }
  LinkHardLinks(plan, [&](size_t i) { return !state[i].failed && state[i].remaining == 0; }, &result);
  if (opts.exact) RemoveExtras(plan, opts, &result);
  FinishDirsAndLinks(plan, opts, &result);
  if (opts.sync) SyncRoots(plan);
  FinishPlanReport(plan, &result, opts);
  result.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace mv::agent
