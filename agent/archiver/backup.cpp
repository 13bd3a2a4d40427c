// The archiver. Write ordering (packs, index, manifest) follows docs/FORMAT.md §8; the stat
// shortcut and the Maildir rename rule are §7.2.
#include "agent/archiver/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <chrono>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <span>
#include <thread>
#include <unordered_map>

#include "agent/archiver/file_store.h"
#include "agent/archiver/header_log.h"
#include "agent/archiver/parent.h"
#include "agent/archiver/pipeline.h"
#include "agent/archiver/walk.h"
#include "agent/common/workers.h"
#include "hooks/sqlite_backup.h"
#include "storage/blob_writer.h"
#include "storage/header_index.h"
#include "storage/fs.h"
#include "storage/lock.h"
#include "storage/repository.h"
#include "storage/tree.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;
using Clock = std::chrono::steady_clock;

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

Status ValidateSources(const std::vector<SourceSpec>& sources) {
  if (sources.empty())
    return Status::Invalid("nothing to back up: give at least one --source NAME=DIR");
  static const std::regex kName("[A-Za-z0-9._@+-]+");
  std::set<std::string> names;
  for (const auto& s : sources) {
    if (!std::regex_match(s.name, kName) || s.name == "." || s.name == "..")
      return Status::Invalid("source name '" + s.name +
                             "' must be letters, digits and . _ @ + - "
                             "(it becomes the first path component in the snapshot)");
    if (!names.insert(s.name).second)
      return Status::Invalid("source name '" + s.name + "' is given twice");
    for (const auto& p : s.only_paths)
      if (p.empty() || p[0] == '/' || p.find("..") != std::string::npos)
        return Status::Invalid("selected path '" + p + "' of source '" + s.name +
                               "' must be relative to the source and must not contain '..'");
  }
  return Status::Ok();
}

// Candidate parents, best first: the one given, or the snapshots with the same host and source
// names, newest first. Damaged manifests are not listed; one whose body turns out damaged is
// passed over when loading (LoadParent), so a backup never fails for another snapshot's damage.
Result<std::vector<storage::SnapshotMeta>> ParentCandidates(const storage::Repository& repo,
                                                            const BackupOptions& opts,
                                                            const std::string& host) {
  std::vector<storage::SnapshotMeta> out;
  if (opts.parent == "none") return out;
  MV_ASSIGN_OR_RETURN(auto snaps, repo.ListSnapshots());
  std::string id;
  if (!opts.parent.empty()) {
    MV_ASSIGN_OR_RETURN(id, repo.ResolveSnapshot(opts.parent));
  }
  std::set<std::string> want;
  for (const auto& s : opts.sources) want.insert(s.name);
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (!id.empty()) {
      if (it->id == id) out.push_back(*it);
      continue;
    }
    std::set<std::string> have;
    for (const auto& s : it->sources) have.insert(s.name);
    if (it->host == host && have == want) out.push_back(*it);
  }
  if (!id.empty() && out.empty())  // the given parent's manifest is damaged: say so
    return repo.LoadSnapshot(id).status();
  return out;
}

// The first candidate whose manifest reads, as the stat shortcut's parent; a given --parent must
// read. A version-3 parent is read directory by directory as the walk goes
// (agent/archiver/parent.h).
Result<std::unique_ptr<ParentIndex>> LoadParent(
    const storage::Repository& repo, const storage::BlobReader& blobs,
    const std::vector<storage::SnapshotMeta>& candidates, bool given, BackupResult* result) {
  for (const auto& c : candidates) {
    auto root = repo.SnapshotRoot(c.id);
    if (root.ok() && !root->IsZero()) {
      result->parent_id = c.id;
      return TreeParent(blobs, *root);
    }
    Status st = root.status();
    if (root.ok()) {
      auto table = repo.LoadEntryTable(c.id);
      if (table.ok()) {
        result->parent_id = c.id;
        return FlatParent(std::move(table).value());
      }
      st = table.status();
    }
    if (given) return st;
    result->notes.push_back("parent candidate " + c.id.substr(0, 8) + " skipped: " + st.ToString());
  }
  return NoParent();
}

// What loading the index found and did, as notes of the backup.
void NoteIndexRepairs(const storage::Repository& repo, const storage::AdoptResult& adopted,
                      BackupResult* result) {
  for (const auto& d : repo.damaged_index_files())
    result->notes.push_back("index file " + d.path + " is damaged (" + d.reason +
                            "); skipped, its packs were "
                            "re-listed as orphans. Replace it with `mailvault repair index`");
  for (const auto& r : adopted.rejected)
    result->notes.push_back(r.path + " is not a valid pack (" + r.reason +
                            "); not adopted: left in place and "
                            "ignored (`mailvault check` reports it)");
  if (repo.locked_objects())
    result->notes.push_back(
        "write-only key: " + std::to_string(repo.locked_objects()) +
        " index file(s) and pack(s) written with the repository's identity are not readable "
        "with it; mail they hold and this agent has not stored itself is stored again");
  if (adopted.adopted)
    result->notes.push_back("adopted " + std::to_string(adopted.adopted) +
                            " pack(s) not named by any index file (left by an interrupted "
                            "backup or a damaged index file)");
}

// Tree records go to small packs of their own, so that reading one decompresses little (§7.5).
storage::BlobWriterOptions TreePackOptions(int zstd_level) {
  return {.zstd_level = zstd_level, .workers = 1, .pack_target_bytes = 4ull << 20};
}

// Packs durable, then the index (docs/FORMAT.md §8 steps 1-2).
Status WritePacksAndIndex(storage::Repository& repo, storage::BlobWriter& writer,
                          storage::BlobWriter& tree_writer, const FileStore& store,
                          BackupStats* stats) {
  MV_RETURN_IF_ERROR(writer.Finish());
  MV_RETURN_IF_ERROR(tree_writer.Finish());
  MV_RETURN_IF_ERROR(repo.WriteIndexFile({&writer.packs(), &tree_writer.packs()}));
  stats->files_read = store.files_read();
  stats->bytes_read = store.bytes_read();
  stats->blobs_new = store.blobs_new();
  stats->bytes_new = store.bytes_new();
  stats->sqlite_databases = store.sqlite_databases();
  stats->bytes_packed = writer.bytes_packed() + tree_writer.bytes_packed();
  writer.Release();  // its bookkeeping is in the index now
  tree_writer.Release();
  return Status::Ok();
}

// The manifest's header (§7): the root tree, the census and the totals the pipeline recorded.
storage::Snapshot BuildSnapshot(const BackupOptions& opts, const Pipeline& pipe,
                                const storage::BlobId& root, const WalkOutput& walk,
                                const std::string& host, int64_t started, int64_t started_ns,
                                BackupResult& result) {
  storage::Snapshot snap;
  snap.tree = root;
  auto& m = snap.meta;
  m.time = started;
  m.time_ns = started_ns;
  m.host = host;
  m.parent = result.parent_id;
  m.tags = opts.tags;
  for (const auto& s : opts.sources) m.sources.push_back({s.name, s.path});
  m.census = pipe.Census();
  m.files = pipe.files();
  m.bytes = pipe.bytes();
  result.stats.bytes_total = m.bytes;
  m.bytes_new = result.stats.bytes_new;
  m.bytes_packed = result.stats.bytes_packed;
  for (const auto& p : walk.problems) result.problems.push_back(p);
  if (walk.xattrs_not_kept)
    result.notes.push_back(
        std::to_string(walk.xattrs_not_kept) +
        " extended attribute(s) not backed up: only user.* and POSIX ACLs are kept "
        "(security.* and trusted.* belong to the host; unreadable ones are counted too)");
  m.problems = result.problems.size();
  return snap;
}

// Walks every source into the pipeline, one directory at a time.
Status WalkInto(const BackupOptions& opts, Pipeline& pipe, WalkOutput& walk) {
  Status consumed;
  walk.on_batch = [&](WalkOutput& batch) {
    if (consumed.ok()) consumed = pipe.Add(batch);
    if (!consumed.ok()) batch.stop = true;
  };
  Status walked;
  for (size_t i = 0; i < opts.sources.size() && walked.ok() && consumed.ok(); i++)
    walked = WalkSource(opts.sources[i], static_cast<uint16_t>(i), &walk);
  if (consumed.ok()) consumed = pipe.Add(walk);
  walk.on_batch = nullptr;
  MV_RETURN_IF_ERROR(consumed);
  return walked;
}

// The manifest's "stats" (§7), with what the snapshot lacks so that verify and ls can say it
// later (stats.problems). Capped: the header is read by every listing.
std::string StatsJson(const BackupResult& result, const WalkOutput& walk) {
  nlohmann::json stats = {{"files_read", result.stats.files_read},
                          {"bytes_read", result.stats.bytes_read},
                          {"blobs_new", result.stats.blobs_new},
                          {"seconds", result.stats.seconds},
                          {"sqlite_databases", result.stats.sqlite_databases},
                          {"skipped", walk.skipped.size()},
                          {"warnings", result.warnings.size()}};
  constexpr size_t kMaxRecordedProblems = 1000;
  stats["problems"] = nlohmann::json::array();
  for (size_t i = 0; i < result.problems.size() && i < kMaxRecordedProblems; i++)
    stats["problems"].push_back(
        {{"path", result.problems[i].path}, {"message", result.problems[i].message}});
  return stats.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

namespace {

// Content packs are indexed in batches of this many blobs while the backup runs (the index files
// of §8 step 3, written early), so its memory does not hold every new blob's entry to the end.
constexpr size_t kIndexBatchBlobs = 65536;

Result<BackupResult> RunBackupLocked(storage::Repository& repo, const BackupOptions& opts,
                                     const ProgressFn& progress) {
  auto t0 = Clock::now();
  int64_t started_ns = opts.time_ns ? *opts.time_ns : repo.env()->NowNanos();
  int64_t started = started_ns / 1000000000LL;
  MV_RETURN_IF_ERROR(ValidateSources(opts.sources));
  BackupResult result;
  std::string stale;
  MV_ASSIGN_OR_RETURN(auto lock, repo.LockExclusive("backup", opts.lock_wait, &stale));
  if (!stale.empty()) result.notes.push_back("took over a " + stale);
  repo.CleanTmp();
  std::string host = opts.host.empty() ? HostName() : opts.host;
  MV_ASSIGN_OR_RETURN(auto candidates, ParentCandidates(repo, opts, host));
  if (progress) progress({0, 0, 0, 0, "scan"});
  MV_ASSIGN_OR_RETURN(storage::AdoptResult adopted, repo.AdoptOrphanPacks());
  NoteIndexRepairs(repo, adopted, &result);
  MV_ASSIGN_OR_RETURN(auto existing, repo.OpenBlobReader());
  MV_ASSIGN_OR_RETURN(auto parent,
                      LoadParent(repo, *existing, candidates, !opts.parent.empty(), &result));

  // Walk, decide, read and record the trees as one stream (agent/archiver/pipeline.h).
  int threads = WorkerCount(opts.threads);
  storage::BlobWriter writer(repo, *existing,
                             {.zstd_level = opts.compression_level,
                              .workers = threads,
                              .index_batch_blobs = kIndexBatchBlobs});
  storage::BlobWriter tree_writer(repo, *existing, TreePackOptions(opts.compression_level));
  FileStore store(writer, opts);
  // The header fields of the messages read go into header records (§15) as the backup runs.
  HeaderLog headers([&repo, started_ns](std::vector<storage::MessageHeaders> batch) {
    return storage::RecordHeaders(repo, started_ns, batch);
  });
  store.set_header_log(&headers);
  WalkOutput walk;
  storage::BlobId root;
  {
    Pipeline pipe(opts, store, tree_writer, *parent, threads, result, progress);
    MV_RETURN_IF_ERROR(WalkInto(opts, pipe, walk));
    MV_ASSIGN_OR_RETURN(root, pipe.Finish());
    for (auto& n : parent->TakeNotes()) result.notes.push_back(std::move(n));
    parent.reset();

    // Packs durable, then the index, then the manifest (the commit point, §8).
    if (progress) progress({0, 0, 0, 0, "commit"});
    MV_RETURN_IF_ERROR(WritePacksAndIndex(repo, writer, tree_writer, store, &result.stats));
    // A record that cannot be written fails the backup like any other repository write: the
    // disk that refused it would not take the manifest either, and the operator must know.
    MV_RETURN_IF_ERROR(headers.Finish());
    storage::Snapshot snap =
        BuildSnapshot(opts, pipe, root, walk, host, started, started_ns, result);
    result.stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    snap.meta.stats_json = StatsJson(result, walk);
    MV_RETURN_IF_ERROR(repo.CommitSnapshot(snap));
    result.snapshot_id = snap.meta.id;
  }
  result.skipped = std::move(walk.skipped);
  return result;
}

}  // namespace

Result<BackupResult> RunBackup(storage::Repository& repo, const BackupOptions& opts,
                               const ProgressFn& progress) {
  auto result = RunBackupLocked(repo, opts, progress);
  // The index files this backup wrote are not in the in-memory index (WriteIndexFile): a later
  // reader of `repo` (the next stack of one run) reads them from disk. Its readers are gone now.
  repo.DropIndex();
  return result;
}

}  // namespace mv::agent
