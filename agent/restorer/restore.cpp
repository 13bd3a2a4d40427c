// The restorer (docs/FORMAT.md §10): reads the snapshot entry by entry and plans and writes it in
// batches (restore_plan.h): per batch, groups the blobs by pack, reads each needed pack once,
// writes blobs to every file that holds them; at the end sets metadata (directories last,
// deepest first). Memory is bounded by a batch, not by the snapshot.
#include "agent/restorer/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>

#include "agent/restorer/restore_plan.h"
#include "agent/common/workers.h"
#include "hooks/sqlite_backup.h"
#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"
#include "storage/fs.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

// A batch is written once it plans this many files or this many bytes of content (then its
// entries, plan and per-file state are dropped). For real mail (tens of KB a message) the bytes
// limit comes first and a batch spans several packs (a pack holds about 32 MiB,
// storage/blob_writer.h), so the pack readers run in parallel. The file limit keeps a batch of
// tiny messages to about 15 MB of plan (measured: restore of 300k files peaks at 62 MB with
// 16,384, 79 MB with 65,536, tests/scale_memory_test.cpp); such a batch may share a pack with
// the next one, which then reads it again.
constexpr size_t kBatchFiles = 16384;
constexpr uint64_t kBatchBytes = 256ull << 20;

// One (blob, file that holds it) of the current batch. Sorted by pack then blob, so a pack's
// needs are one range and a blob's files are found by binary search.
struct Need {
  storage::BlobId pack, blob;
  uint32_t file;  // index into plan.files
  uint64_t offset;
};

// Per file of the batch: blobs still to come (low bits) and whether it failed (kFailed).
constexpr uint32_t kFailed = 1u << 31;

// One restore batch between planning and its report: the steps below share it.
struct RestoreRun {
  RestoreRun(const storage::BlobReader& b, const RestoreOptions& o, RestorePlan& p,
             RestoreResult& r)
      : blobs(b), opts(o), plan(p), result(r), state(plan.files.size()) {}

  bool Failed(size_t i) const { return (state[i].load() & kFailed) != 0; }
  uint32_t Remaining(size_t i) const { return state[i].load() & ~kFailed; }
  // Records file i's one problem line and removes its temp file; later blobs for it are dropped.
  void Fail(size_t i, const std::string& msg) {
    if (state[i].fetch_or(kFailed) & kFailed) return;
    DiscardTemp(plan, i);
    std::lock_guard<std::mutex> l(mu);
    result.problems.push_back({plan.files[i].entry->path, msg});
  }
  // Called once per (blob, file that holds it). The decrement comes after any failure of this
  // blob is recorded, so whoever brings the count to 0 sees every failure of the file.
  void Deliver(const Need& n, std::string_view data, const std::string* damaged) {
    if (damaged)
      Fail(n.file, *damaged);
    else if (!Failed(n.file)) {
      Status ws = WriteBlob(plan, n.file, n.offset, data);
      if (!ws.ok()) Fail(n.file, ws.message());
    }
    if (((state[n.file].fetch_sub(1) - 1) & ~kFailed) == 0) {
      if (!Failed(n.file)) {
        Status fs = FinishFile(blobs.hasher(), plan, n.file);
        if (!fs.ok()) Fail(n.file, fs.message());
      }
      files_done++;
    }
    bytes_done += data.size();
  }
  bool Restored(size_t i) const { return state[i].load() == 0; }

  const storage::BlobReader& blobs;
  const RestoreOptions& opts;
  RestorePlan& plan;
  RestoreResult& result;
  std::vector<std::atomic<uint32_t>> state;
  std::mutex mu;  // guards result.problems while packs are read
  std::vector<Need> needs;
  uint64_t bytes_total = 0;
  std::atomic<uint64_t> bytes_done{0}, files_done{0};
  uint64_t files_before = 0, bytes_before = 0;  // progress of the earlier batches
};

std::string NotIndexed(const storage::BlobReader& blobs, const storage::BlobId& b) {
  return "not restored: blob " + b.Hex() + " is not in the repository index (run " +
         std::string(blobs.index_damaged() ? "`mailvault repair index`: an index file is damaged"
                                           : "`mailvault check`") +
         ")";
}

// Fills run.needs from the files to write; a file with a blob no index names fails here.
void GroupByPack(RestoreRun& run) {
  for (size_t i = 0; i < run.plan.files.size(); i++) {
    PlannedFile& pf = run.plan.files[i];
    run.state[i] = static_cast<uint32_t>(pf.entry->blobs.size());
    if (!pf.write) continue;
    uint64_t off = 0;
    size_t first = run.needs.size();
    for (const auto& b : pf.entry->blobs) {
      auto loc = run.blobs.Find(b);
      if (!loc) {
        run.state[i] |= kFailed;
        pf.write = false;
        run.result.stats.files_failed++;
        run.result.problems.push_back({pf.entry->path, NotIndexed(run.blobs, b)});
        run.needs.resize(first);
        break;
      }
      run.needs.push_back({loc->pack, b, static_cast<uint32_t>(i), off});
      off += loc->length;
    }
    if (run.Failed(i)) continue;
    run.bytes_total += pf.entry->size;
  }
  std::sort(run.needs.begin(), run.needs.end(), [](const Need& a, const Need& b) {
    return a.pack != b.pack ? a.pack < b.pack : a.blob < b.blob;
  });
}

// Files without content (empty) and the multi-blob ones get their temp file before any pack is
// read.
void CreateTempFiles(RestoreRun& run) {
  for (size_t i = 0; i < run.plan.files.size(); i++) {
    if (!run.plan.files[i].write || run.Failed(i)) continue;
    Status st = CreateFile(run.plan, i);
    if (!st.ok()) run.Fail(i, st.message());
  }
}

// Reads the packs the batch needs (spread over the workers) and delivers every blob to the files
// that hold it. When a batch needs fewer packs than there are workers (a batch of small
// messages may lie in one or two packs), each pack is read by several workers, each writing the
// files of its share (file index modulo the shares): writing the files costs far more than
// decompressing a pack again. A pack that cannot be read is one problem line (once); its files
// fail later.
void ReadPacks(RestoreRun& run, const ProgressFn& progress, const Progress& totals) {
  using It = std::vector<Need>::const_iterator;
  std::vector<std::pair<It, It>> packs;  // each pack's range of run.needs
  for (It it = run.needs.begin(); it != run.needs.end();) {
    It end = std::partition_point(it, run.needs.cend(),
                                  [&](const Need& n) { return n.pack == it->pack; });
    packs.emplace_back(it, end);
    it = end;
  }
  int workers = WorkerCount(run.opts.threads);
  size_t shares = packs.empty() ? 1 : std::max<size_t>(1, workers / packs.size());
  auto blob_less = [](const Need& n, const storage::BlobId& b) { return n.blob < b; };
  std::atomic<size_t> next{0};
  RunWorkers(
      workers,
      [&](int) {
        for (size_t w; (w = next.fetch_add(1)) < packs.size() * shares;) {
          // Not a structured binding: clang 14 (the sanitizer build) cannot capture one.
          It lo = packs[w / shares].first, hi = packs[w / shares].second;
          size_t share = w % shares;
          auto mine = [&](const Need& n) { return n.file % shares == share; };
          const storage::BlobId& pack = lo->pack;
          std::string pack_path = run.blobs.PackPath(pack);
          Status st = run.blobs.ReadPackBlobs(
              pack,
              [&](const storage::BlobId& id) {
                for (It f = std::lower_bound(lo, hi, id, blob_less); f != hi && f->blob == id; ++f)
                  if (mine(*f)) return true;
                return false;
              },
              [&](const storage::BlobId& id, std::string_view data, bool intact) {
                std::string damaged;
                if (!intact)
                  damaged = "not restored: blob " + id.Hex() + " in pack " + pack_path +
                            " does not match its hash (run `mailvault check --read-data`)";
                for (It f = std::lower_bound(lo, hi, id, blob_less); f != hi && f->blob == id; ++f)
                  if (mine(*f)) run.Deliver(*f, data, damaged.empty() ? nullptr : &damaged);
              });
          if (!st.ok() && share == 0) {
            std::lock_guard<std::mutex> l(run.mu);
            run.result.problems.push_back(
                {pack_path, st.ToString() + " (the files needing blobs from it are not restored)"});
          }
        }
      },
      [&] {
        if (progress)
          progress({run.files_before + run.files_done,
                    std::max(totals.files_total, run.files_before + run.plan.files.size()),
                    run.bytes_before + run.bytes_done,
                    std::max(totals.bytes_total, run.bytes_before + run.bytes_total), "restore"});
      });
}

// After every pack of the batch: finishes the files with no blob, fails those that still miss
// blobs, and counts the failed ones.
void SettleFiles(RestoreRun& run) {
  for (size_t i = 0; i < run.plan.files.size(); i++) {
    PlannedFile& pf = run.plan.files[i];
    if (!pf.write) continue;
    if (!run.Failed(i) && run.Remaining(i) == 0 && pf.entry->blobs.empty()) {
      Status fs = FinishFile(run.blobs.hasher(), run.plan, i);
      if (!fs.ok()) run.Fail(i, fs.message());
    } else if (!run.Failed(i) && run.Remaining(i) != 0) {
      run.Fail(i,
               "not restored: some of its blobs could not be read (see the pack named above; run "
               "`mailvault check`)");
    }
    if (run.Failed(i)) {
      pf.write = false;
      run.result.stats.files_failed++;
    }
  }
}

// Writes (or, in a dry run, only checks and reports) the planner's current batch, then hands it
// back. `done` carries the progress over batches.
void WriteBatch(const storage::BlobReader& blobs, const RestoreOptions& opts,
                RestorePlanner& planner, RestoreResult& result, const ProgressFn& progress,
                Progress* done) {
  RestorePlan& plan = planner.plan();
  if (!opts.dry_run) NameTemps(&plan);
  RestoreRun run(blobs, opts, plan, result);
  run.files_before = done->files_done;
  run.bytes_before = done->bytes_done;
  GroupByPack(run);
  if (!opts.dry_run) {
    CreateTempFiles(run);
    ReadPacks(run, progress, *done);
    SettleFiles(run);
    LinkHardLinks(
        plan, [&](size_t i) { return run.Restored(i); }, &result);
  }
  ReportBatch(plan, &result, opts);
  done->files_done += run.files_done;
  done->bytes_done += run.bytes_done;
  planner.EndBatch([&](size_t i) { return run.Restored(i); });
}

// Plans the snapshot entry by entry and writes it batch by batch.
Status PlanAndWrite(const storage::BlobReader& blobs, const RestoreOptions& opts,
                    storage::EntryCursor& entries, RestorePlanner& planner, RestoreResult& result,
                    const ProgressFn& progress, Progress* done) {
  FileEntry e;
  for (;;) {
    MV_ASSIGN_OR_RETURN(bool more, entries.Next(&e));
    if (!more) break;
    MV_ASSIGN_OR_RETURN(bool skip, planner.Add(std::move(e)));
    if (skip) entries.SkipChildren();
    const RestorePlan& plan = planner.plan();
    if (plan.files.size() + plan.hard_links.size() >= kBatchFiles ||
        plan.batch_bytes >= kBatchBytes)
      WriteBatch(blobs, opts, planner, result, progress, done);
  }
  WriteBatch(blobs, opts, planner, result, progress, done);
  return Status::Ok();
}

}  // namespace

Result<RestoreResult> RunRestore(const storage::BlobReader& blobs, const RestoreOptions& opts,
                                 const ProgressFn& progress) {
  auto t0 = std::chrono::steady_clock::now();
  storage::SnapshotMeta meta;
  MV_ASSIGN_OR_RETURN(auto scan, blobs.OpenEntries(opts.snapshot, &meta));
  if (opts.target.empty() && opts.source_targets.empty())
    return Status::Invalid("no restore target: give --target DIR");
  RestoreResult result;
  RestorePlanner planner(blobs, opts, &result);
  MV_RETURN_IF_ERROR(planner.Begin(meta, *scan));
  scan.reset();
  MV_ASSIGN_OR_RETURN(auto entries, blobs.OpenEntries(opts.snapshot, &meta));
  // Progress counts against the snapshot's totals when all of it is restored.
  Progress done;
  if (opts.includes.empty() && opts.source_targets.empty()) {
    done.files_total = meta.files;
    done.bytes_total = meta.bytes;
  }
  MV_RETURN_IF_ERROR(PlanAndWrite(blobs, opts, *entries, planner, result, progress, &done));
  entries.reset();
  const RestorePlan& plan = planner.plan();
  if (opts.exact) RemoveExtras(plan, opts, &result);
  if (!opts.dry_run) {
    FinishDirsAndLinks(plan, opts, &result);
    if (opts.sync) SyncRoots(plan);
  }
  FinishPlanReport(plan, &result);
  if (!opts.dry_run)
    result.stats.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace mv::agent
