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
#include "storage/blob_reader.h"
#include "storage/fs.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

struct Target {
  size_t file;  // index into plan.files
  uint64_t offset;
};

struct FileState {
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
};

using PackNeeds = std::unordered_map<storage::BlobId, std::vector<Target>, storage::BlobIdHash>;

// One restore between planning and the final report: the steps below share it.
struct RestoreRun {
  RestoreRun(const storage::BlobReader& b, const RestoreOptions& o, RestorePlan p, RestoreResult& r)
      : blobs(b), opts(o), plan(std::move(p)), result(r), state(plan.files.size()) {}

  // Records file i's one problem line and removes its temp file; later blobs for it are dropped.
  void Fail(size_t i, const std::string& msg) {
    if (state[i].failed.exchange(true)) return;
    DiscardTemp(plan, i);
    std::lock_guard<std::mutex> l(mu);
    result.problems.push_back({plan.files[i].entry->path, msg});
  }
  // Called once per (blob, file that holds it). The decrement comes after any failure of this
  // blob is recorded, so whoever brings `remaining` to 0 sees every failure of the file.
  void Deliver(const Target& tg, std::string_view data, const std::string* damaged) {
    if (damaged)
      Fail(tg.file, *damaged);
    else if (!state[tg.file].failed) {
      Status ws = WriteBlob(plan, tg.file, tg.offset, data);
      if (!ws.ok()) Fail(tg.file, ws.message());
    }
    if (--state[tg.file].remaining == 0) {
      if (!state[tg.file].failed) {
        Status fs = FinishFile(blobs.hasher(), plan, tg.file);
        if (!fs.ok()) Fail(tg.file, fs.message());
      }
      files_done++;
    }
    bytes_done += data.size();
  }
  bool Restored(size_t i) const { return !state[i].failed && state[i].remaining == 0; }

  const storage::BlobReader& blobs;
  const RestoreOptions& opts;
  RestorePlan plan;
  RestoreResult& result;
  // Per file: blobs still to come, and whether it failed.
  std::vector<FileState> state;
  std::mutex mu;  // guards result.problems while packs are read
  // Blob -> the files (and offsets) that need it, grouped by pack.
  std::map<storage::BlobId, PackNeeds> by_pack;
  uint64_t bytes_total = 0;
  std::atomic<uint64_t> bytes_done{0}, files_done{0};
};

std::string NotIndexed(const storage::BlobReader& blobs, const storage::BlobId& b) {
  return "not restored: blob " + b.Hex() + " is not in the repository index (run " +
         std::string(blobs.index_damaged() ? "`mailvault repair index`: an index file is damaged"
                                           : "`mailvault check`") +
         ")";
}

// Fills run.by_pack from the files to write; a file with a blob no index names fails here.
void GroupByPack(RestoreRun& run) {
  for (size_t i = 0; i < run.plan.files.size(); i++) {
    PlannedFile& pf = run.plan.files[i];
    run.state[i].remaining = static_cast<int>(pf.entry->blobs.size());
    if (!pf.write) continue;
    uint64_t off = 0;
    for (const auto& b : pf.entry->blobs) {
      auto loc = run.blobs.Find(b);
      if (!loc) {
        run.state[i].failed = true;
        pf.write = false;
        run.result.stats.files_failed++;
        run.result.problems.push_back({pf.entry->path, NotIndexed(run.blobs, b)});
        break;
      }
      run.by_pack[loc->pack][b].push_back({i, off});
      off += loc->length;
    }
    if (run.state[i].failed) continue;
    run.bytes_total += pf.entry->size;
  }
}

// Files without content (empty) and the multi-blob ones get their temp file before any pack is
// read.
void CreateTempFiles(RestoreRun& run) {
  for (size_t i = 0; i < run.plan.files.size(); i++) {
    if (!run.plan.files[i].write || run.state[i].failed) continue;
    Status st = CreateFile(run.plan, i);
    if (!st.ok()) run.Fail(i, st.message());
  }
}

// Reads each needed pack once (packs spread over the workers) and delivers every blob to the
// files that hold it. A pack that cannot be read is one problem line; its files fail later.
void ReadPacks(RestoreRun& run, const ProgressFn& progress) {
  std::vector<storage::BlobId> packs;
  for (const auto& [p, _] : run.by_pack) packs.push_back(p);
  std::atomic<size_t> next{0};
  RunWorkers(
      WorkerCount(run.opts.threads),
      [&](int) {
        for (size_t k; (k = next.fetch_add(1)) < packs.size();) {
          const PackNeeds& need = run.by_pack[packs[k]];
          std::string pack_path = run.blobs.PackPath(packs[k]);
          Status st = run.blobs.ReadPackBlobs(
              packs[k], [&](const storage::BlobId& id) { return need.count(id) != 0; },
              [&](const storage::BlobId& id, std::string_view data, bool intact) {
                std::string damaged;
                if (!intact)
                  damaged = "not restored: blob " + id.Hex() + " in pack " + pack_path +
                            " does not match its hash (run `mailvault check --read-data`)";
                for (const auto& tg : need.at(id))
                  run.Deliver(tg, data, damaged.empty() ? nullptr : &damaged);
              });
          if (!st.ok()) {
            std::lock_guard<std::mutex> l(run.mu);
            run.result.problems.push_back(
                {pack_path, st.ToString() + " (the files needing blobs from it are not restored)"});
          }
        }
      },
      [&] {
        if (progress)
          progress(
              {run.files_done, run.plan.files.size(), run.bytes_done, run.bytes_total, "restore"});
      });
}

// After every pack: finishes the files with no blob, fails those that still miss blobs, and
// counts the failed ones.
void SettleFiles(RestoreRun& run) {
  for (size_t i = 0; i < run.plan.files.size(); i++) {
    PlannedFile& pf = run.plan.files[i];
    if (!pf.write) continue;
    FileState& st = run.state[i];
    if (!st.failed && st.remaining == 0 && pf.entry->blobs.empty()) {
      Status fs = FinishFile(run.blobs.hasher(), run.plan, i);
      if (!fs.ok()) run.Fail(i, fs.message());
    } else if (!st.failed && st.remaining != 0) {
      run.Fail(i,
               "not restored: some of its blobs could not be read (see the pack named above; run "
               "`mailvault check`)");
    }
    if (st.failed) {
      pf.write = false;
      run.result.stats.files_failed++;
    }
  }
}

}  // namespace

Result<RestoreResult> RunRestore(const storage::BlobReader& blobs, const RestoreOptions& opts,
                                 const ProgressFn& progress) {
  auto t0 = std::chrono::steady_clock::now();
  MV_ASSIGN_OR_RETURN(storage::Snapshot snap, blobs.LoadSnapshot(opts.snapshot));
  RestoreResult result;
  MV_ASSIGN_OR_RETURN(RestorePlan plan, PlanRestore(blobs, snap, opts, &result));
  RestoreRun run(blobs, opts, std::move(plan), result);
  GroupByPack(run);
  if (opts.dry_run) {
    if (opts.exact) RemoveExtras(run.plan, opts, &result);
    FinishPlanReport(run.plan, &result, opts);
    return result;
  }
  CreateTempFiles(run);
  ReadPacks(run, progress);
  SettleFiles(run);
  LinkHardLinks(
      run.plan, [&](size_t i) { return run.Restored(i); }, &result);
  if (opts.exact) RemoveExtras(run.plan, opts, &result);
  FinishDirsAndLinks(run.plan, opts, &result);
  if (opts.sync) SyncRoots(run.plan);
  FinishPlanReport(run.plan, &result, opts);
  result.stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace mv::agent
