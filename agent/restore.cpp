// The restorer (docs/FORMAT.md §10): plans per pack, reads each needed pack once, writes blobs
// to every file that holds them, then sets metadata (directories last, deepest first).
#include "agent/restore.h"

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

#include "agent/restore_plan.h"
#include "agent/workers.h"
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

}  // namespace

Result<RestoreResult> RunRestore(storage::Repository& repo, const RestoreOptions& opts,
                                 const ProgressFn& progress) {
  auto t0 = std::chrono::steady_clock::now();
  MV_RETURN_IF_ERROR(repo.LoadIndex());
  MV_ASSIGN_OR_RETURN(storage::Snapshot snap, repo.LoadSnapshot(opts.snapshot));
  RestoreResult result;
  MV_ASSIGN_OR_RETURN(RestorePlan plan, PlanRestore(repo, snap, opts, &result));

  // Blob -> the files (and offsets) that need it, grouped by pack.
  std::map<storage::BlobId, std::unordered_map<storage::BlobId, std::vector<Target>, storage::BlobIdHash>> by_pack;
  std::vector<std::atomic<int>> remaining(plan.files.size());
  uint64_t bytes_total = 0;
  for (size_t i = 0; i < plan.files.size(); i++) {
    const PlannedFile& pf = plan.files[i];
    remaining[i] = static_cast<int>(pf.entry->blobs.size());
    if (!pf.write) continue;
    uint64_t off = 0;
    for (const auto& b : pf.entry->blobs) {
      auto loc = repo.index().Find(b);
      if (!loc) {
        result.problems.push_back({pf.entry->path, "blob " + b.Hex() + " is not in the repository index; "
                                                   "file not restored (run `mailvault check`)"});
        plan.files[i].write = false;
        break;
      }
      by_pack[loc->pack][b].push_back({i, off});
      off += loc->length;
    }
    bytes_total += pf.entry->size;
  }
  if (opts.dry_run) {
    if (opts.exact) RemoveExtras(plan, opts, &result);
    FinishPlanReport(plan, &result, opts);
    return result;
  }
  // Files without content (empty) and the multi-blob ones are created now.
  for (size_t i = 0; i < plan.files.size(); i++) {
    if (!plan.files[i].write) continue;
    Status st = CreateFile(plan, i, opts);
    if (!st.ok()) {
      result.problems.push_back({plan.files[i].entry->path, st.message()});
      plan.files[i].write = false;
    }
  }

  std::vector<storage::BlobId> packs;
  for (const auto& [p, _] : by_pack) packs.push_back(p);
  int threads = WorkerCount(opts.threads);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes_done{0}, files_done{0};
  std::mutex mu;
  auto problem = [&](const std::string& path, const std::string& msg) {
    std::lock_guard<std::mutex> l(mu);
    result.problems.push_back({path, msg});
  };
  RunWorkers(threads, [&](int) {
      for (size_t k; (k = next.fetch_add(1)) < packs.size();) {
        const auto& need = by_pack[packs[k]];
        std::string pack_path = repo.PackPath(packs[k]);
        Status st = storage::ReadPack(
            pack_path, packs[k], {.verify_pack_hash = false},
            [&](const storage::BlobId& id, uint64_t) { return need.count(id) != 0; },
            [&](const storage::BlobId& id, std::string_view data) {
              if (repo.hasher().Hash(data.data(), data.size()) != id) {
                for (const auto& tg : need.at(id))
                  problem(plan.files[tg.file].entry->path,
                          "blob " + id.Hex() + " in pack " + pack_path + " does not match its hash; file is damaged");
                return true;
              }
              for (const auto& tg : need.at(id)) {
                Status ws = WriteBlob(plan, tg.file, tg.offset, data);
                if (!ws.ok()) problem(plan.files[tg.file].entry->path, ws.message());
                if (--remaining[tg.file] == 0) {
                  Status fs = FinishFile(plan, tg.file, opts);
                  if (!fs.ok()) problem(plan.files[tg.file].entry->path, fs.message());
                  files_done++;
                }
                bytes_done += data.size();
              }
              return true;
            });
        if (!st.ok()) problem(pack_path, st.ToString() + " (files needing blobs from it are incomplete)");
      }
    }, [&] {
      if (progress) progress({files_done, plan.files.size(), bytes_done, bytes_total, "restore"});
    });
  for (size_t i = 0; i < plan.files.size(); i++) {
    if (!plan.files[i].write) continue;
    if (remaining[i] == 0 && plan.files[i].entry->blobs.empty()) {
      Status fs = FinishFile(plan, i, opts);
      if (!fs.ok()) result.problems.push_back({plan.files[i].entry->path, fs.message()});
    } else if (remaining[i] != 0) {
      result.problems.push_back({plan.files[i].entry->path, "not completely restored (missing or damaged blobs)"});
      AbandonFile(plan, i);
    }
  }
  LinkHardLinks(plan, [&](size_t i) { return remaining[i] == 0; }, &result);
  if (opts.exact) RemoveExtras(plan, opts, &result);
  FinishDirsAndLinks(plan, opts, &result);
  FinishPlanReport(plan, &result, opts);
  result.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace mv::agent
