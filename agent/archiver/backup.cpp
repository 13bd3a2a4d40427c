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
#include "agent/archiver/walk.h"
#include "agent/common/workers.h"
#include "hooks/sqlite_backup.h"
#include "storage/blob_writer.h"
#include "storage/fs.h"
#include "storage/lock.h"
#include "storage/repository.h"
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

// The entries of the first candidate whose manifest reads; a given --parent must read.
Result<std::optional<storage::EntryTable>> LoadParent(
    const storage::Repository& repo, const std::vector<storage::SnapshotMeta>& candidates,
    bool given, BackupResult* result) {
  for (const auto& c : candidates) {
    auto table = repo.LoadEntryTable(c.id);
    if (table.ok()) {
      result->parent_id = c.id;
      return std::optional<storage::EntryTable>(std::move(table).value());
    }
    if (given) return table.status();
    result->notes.push_back("parent candidate " + c.id.substr(0, 8) +
                            " skipped: " + table.status().ToString());
  }
  return std::optional<storage::EntryTable>();
}

struct InodeKey {
  uint64_t dev, ino;
  bool operator==(const InodeKey&) const = default;
};
struct InodeKeyHash {
  size_t operator()(const InodeKey& k) const { return k.ino * 1000003u ^ k.dev; }
};

// Content the stat shortcut never reuses: SQLite images and raw copies are taken again (§7.4),
// a file that changed while it was read is read again (§7.2).
constexpr uint32_t kNeverReused =
    storage::kFlagSqlite | storage::kFlagSqliteRaw | storage::kFlagChangedWhileRead;
// Flags the walk sets from the file as it is now; the others describe the content.
constexpr uint32_t kWalkFlags = storage::kFlagHardLink | storage::kFlagXattrs;

// Decides, from the parent snapshot, which files need no read (docs/FORMAT.md §7.2).
class ParentLookup {
 public:
  using Row = storage::EntryTable::Row;
  explicit ParentLookup(const storage::EntryTable* parent) : parent_(parent) {
    if (!parent) return;
    by_path_.reserve(parent->size());
    for (size_t i = 0; i < parent->size(); i++) {
      const Row& r = parent->row(i);
      if (r.type != FileType::kRegular) continue;
      std::string_view p = parent->path(r);
      by_path_.emplace(p, &r);
      if (IsMessagePath(p)) by_inode_.emplace(InodeKey{r.dev, r.ino}, &r);
    }
  }

  const Row* Reusable(const FileEntry& e, bool maildir_message) const {
    auto it = by_path_.find(e.path);
    if (it != by_path_.end()) {
      const Row* p = it->second;
      if (!(p->flags & kNeverReused) && p->dev == e.dev && p->ino == e.ino && p->size == e.size &&
          p->mtime_ns == e.mtime_ns && p->ctime_ns == e.ctime_ns)
        return p;
    }
    if (!maildir_message) return nullptr;
    // A Maildir message renamed for a flag change or moved between folders keeps its inode,
    // size and mtime (only ctime moves), and Maildir messages are never rewritten in place.
    auto range = by_inode_.equal_range(InodeKey{e.dev, e.ino});
    for (auto jt = range.first; jt != range.second; ++jt) {
      const Row* p = jt->second;
      if ((p->flags & kNeverReused) || p->size != e.size || p->mtime_ns != e.mtime_ns) continue;
      if (mailfiles::UniqueName(BaseName(parent_->path(*p))) !=
          mailfiles::UniqueName(BaseName(e.path)))
        continue;
      return p;
    }
    return nullptr;
  }

  std::span<const storage::BlobId> blobs(const Row& r) const { return parent_->blobs(r); }

 private:
  static std::string_view BaseName(std::string_view p) { return p.substr(p.find_last_of('/') + 1); }
  static bool IsMessagePath(std::string_view p) {
    auto s1 = p.find_last_of('/');
    if (s1 == std::string_view::npos || s1 < 4) return false;
    std::string_view dir = p.substr(0, s1);
    return dir.ends_with("/cur") || dir.ends_with("/new");
  }
  const storage::EntryTable* parent_;
  std::unordered_map<std::string_view, const Row*> by_path_;
  std::unordered_multimap<InodeKey, const Row*, InodeKeyHash> by_inode_;
};

// The walk marked every regular file with more than one link. The first path of each inode
// (in manifest order) is stored as a plain file; each later one with the same content becomes
// a hard link to it (docs/FORMAT.md §7). Content that differs (the inode changed between two
// reads) is not linked: each name keeps what was read for it.
void ResolveHardLinks(std::vector<FileEntry>& files) {
  std::unordered_map<InodeKey, size_t, InodeKeyHash> first;
  for (size_t i = 0; i < files.size(); i++) {
    FileEntry& f = files[i];
    if (f.type != FileType::kRegular || !(f.flags & storage::kFlagHardLink)) continue;
    auto [it, inserted] = first.emplace(InodeKey{f.dev, f.ino}, i);
    const FileEntry& p = files[it->second];
    if (!inserted && p.content == f.content && p.size == f.size &&
        (p.flags & ~kWalkFlags) == (f.flags & ~kWalkFlags)) {
      f.link_target = p.path;
      continue;
    }
    f.flags &= ~storage::kFlagHardLink;
    f.link_target.clear();
  }
}

// What the steps of one backup share, from the walk to the manifest.
struct BackupRun {
  BackupRun(const BackupOptions& o, const ProgressFn& p, BackupResult& r)
      : opts(o), progress(p), result(r) {}
  void Report(const char* phase) const {
    if (progress) progress({files_done, jobs.size(), bytes_done, bytes_to_read, phase});
  }

  const BackupOptions& opts;
  const ProgressFn& progress;
  BackupResult& result;
  WalkOutput walk;
  std::vector<size_t> jobs;  // indexes into walk.entries of the files to read
  uint64_t bytes_to_read = 0;
  std::vector<char> dropped;  // per walk entry: 1 when it is left out of the snapshot
  std::atomic<uint64_t> files_done{0}, bytes_done{0};
};

// 1. Walk: stat only.
Status WalkSources(BackupRun& run, const storage::SnapshotMeta* parent_meta) {
  run.Report("scan");
  WalkOutput& walk = run.walk;
  if (parent_meta) {  // avoid growing the vectors by doubling: the tree is about as big as last
                      // time
    size_t n = parent_meta->files + parent_meta->files / 8 + 1024;
    walk.entries.reserve(n);
    walk.maildir_message.reserve(n);
    walk.source.reserve(n);
  }
  Status walked;
  for (size_t i = 0; i < run.opts.sources.size() && walked.ok(); i++)
    walked = WalkSource(run.opts.sources[i], static_cast<uint16_t>(i), &walk);
  return walked;
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
  if (adopted.adopted)
    result->notes.push_back("adopted " + std::to_string(adopted.adopted) +
                            " pack(s) not named by any index file (left by an interrupted "
                            "backup or a damaged index file)");
}

// 2. Plan: reuse from the parent, or read (run.jobs).
void PlanReads(BackupRun& run, const storage::EntryTable* parent) {
  ParentLookup lookup(parent);
  BackupStats& stats = run.result.stats;
  for (size_t i = 0; i < run.walk.entries.size(); i++) {
    FileEntry& w = run.walk.entries[i];
    if (w.type == FileType::kDirectory) stats.dirs++;
    if (w.type == FileType::kSymlink) stats.symlinks++;
    if (w.type != FileType::kRegular) continue;
    stats.files++;
    if (const auto* p = lookup.Reusable(w, run.walk.maildir_message[i])) {
      auto blobs = lookup.blobs(*p);
      w.content = p->content;
      w.blobs.assign(blobs.begin(), blobs.end());
      w.flags = (w.flags & kWalkFlags) | (p->flags & ~kWalkFlags);
    } else {
      run.jobs.push_back(i);
      run.bytes_to_read += w.size;
    }
  }
}

// 3. Read what changed, in parallel (batches of 8 files); each worker owns one open pack. Fails
// with the first repository failure (disk full...), after which workers stop taking files.
Status ReadChanged(BackupRun& run, FileStore& store, int threads) {
  const auto& sources = run.opts.sources;
  WalkOutput& walk = run.walk;
  std::vector<int> root_fds;
  for (const auto& s : sources)
    root_fds.push_back(::open(s.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  run.dropped.assign(walk.entries.size(), 0);
  std::atomic<size_t> next{0};
  std::mutex mu;  // guards fatal, dropped and the result's lists
  Status fatal;
  RunWorkers(
      threads,
      [&](int t) {
        for (;;) {
          size_t start = next.fetch_add(8);
          if (start >= run.jobs.size()) return;
          size_t end = std::min(start + 8, run.jobs.size());
          for (size_t j = start; j < end; j++) {
            size_t i = run.jobs[j];
            FileEntry& w = walk.entries[i];
            const SourceSpec& src = sources[walk.source[i]];
            std::string rel(RelPath(w, src.name));
            FileOutcome out =
                store.Store(t, root_fds[walk.source[i]], src.path + "/" + rel, rel, &w);
            run.files_done++;
            run.bytes_done += w.size;
            std::lock_guard<std::mutex> l(mu);
            if (!out.fatal.ok() && fatal.ok()) fatal = out.fatal;
            if (out.drop) run.dropped[i] = 1;
            if (!out.problem.empty())
              run.result.problems.push_back({src.path + "/" + rel, out.problem});
            if (!out.warning.empty())
              run.result.warnings.push_back({src.path + "/" + rel, out.warning});
          }
          std::lock_guard<std::mutex> l(mu);
          if (!fatal.ok()) return;
        }
      },
      [&] { run.Report("read"); });
  for (int fd : root_fds)
    if (fd >= 0) ::close(fd);
  return fatal;
}

// 4a. Packs durable, then the index (docs/FORMAT.md §8 steps 1-2).
Status WritePacksAndIndex(storage::Repository& repo, storage::BlobWriter& writer,
                          const FileStore& store, BackupStats* stats) {
  MV_RETURN_IF_ERROR(writer.Finish());
  MV_RETURN_IF_ERROR(repo.WriteIndex(writer.packs()));
  stats->files_read = store.files_read();
  stats->bytes_read = store.bytes_read();
  stats->blobs_new = store.blobs_new();
  stats->bytes_new = store.bytes_new();
  stats->sqlite_databases = store.sqlite_databases();
  stats->bytes_packed = writer.bytes_packed();
  writer.Release();  // its bookkeeping is in the index now
  return Status::Ok();
}

// The manifest: every walked entry not dropped, hard links resolved, and the header (§7). Moves
// the entries out of run.walk.
storage::Snapshot BuildSnapshot(BackupRun& run, const std::string& host, int64_t started,
                                int64_t started_ns) {
  BackupResult& result = run.result;
  WalkOutput& walk = run.walk;
  storage::Snapshot snap;
  size_t kept = 0;
  for (size_t i = 0; i < walk.entries.size(); i++)
    if (!run.dropped[i]) {
      if (kept != i) walk.entries[kept] = std::move(walk.entries[i]);
      kept++;
    }
  walk.entries.resize(kept);
  ResolveHardLinks(walk.entries);
  snap.files = std::move(walk.entries);
  auto& m = snap.meta;
  m.time = started;
  m.time_ns = started_ns;
  m.host = host;
  m.parent = result.parent_id;
  m.tags = run.opts.tags;
  for (const auto& s : run.opts.sources) m.sources.push_back({s.name, s.path});
  m.census = mailfiles::CensusOfEntries(snap.files);
  for (const auto& f : snap.files)
    if (f.type == FileType::kRegular) {
      m.files++;
      m.bytes += f.size;
    }
  result.stats.bytes_total = m.bytes;
  m.bytes_new = result.stats.bytes_new;
  m.bytes_packed = result.stats.bytes_packed;
  for (auto& p : walk.problems) result.problems.push_back(std::move(p));
  if (walk.xattrs_not_kept)
    result.notes.push_back(
        std::to_string(walk.xattrs_not_kept) +
        " extended attribute(s) not backed up: only user.* and POSIX ACLs are kept "
        "(security.* and trusted.* belong to the host; unreadable ones are counted too)");
  m.problems = result.problems.size();
  return snap;
}

// The manifest's "stats" (§7), with what the snapshot lacks so that verify and ls can say it
// later (stats.problems). Capped: the header is read by every listing.
std::string StatsJson(const BackupRun& run) {
  const BackupResult& result = run.result;
  nlohmann::json stats = {{"files_read", result.stats.files_read},
                          {"bytes_read", result.stats.bytes_read},
                          {"blobs_new", result.stats.blobs_new},
                          {"seconds", result.stats.seconds},
                          {"sqlite_databases", result.stats.sqlite_databases},
                          {"skipped", run.walk.skipped.size()},
                          {"warnings", result.warnings.size()}};
  constexpr size_t kMaxRecordedProblems = 1000;
  stats["problems"] = nlohmann::json::array();
  for (size_t i = 0; i < result.problems.size() && i < kMaxRecordedProblems; i++)
    stats["problems"].push_back(
        {{"path", result.problems[i].path}, {"message", result.problems[i].message}});
  return stats.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Result<BackupResult> RunBackup(storage::Repository& repo, const BackupOptions& opts,
                               const ProgressFn& progress) {
  auto t0 = Clock::now();
  int64_t started_ns = repo.env()->NowNanos();
  int64_t started = started_ns / 1000000000LL;
  MV_RETURN_IF_ERROR(ValidateSources(opts.sources));
  BackupResult result;
  std::string stale;
  MV_ASSIGN_OR_RETURN(
      auto lock, storage::RepoLock::AcquireExclusive(repo.path(), "backup", &stale, repo.env()));
  if (!stale.empty()) result.notes.push_back("took over a " + stale);
  repo.CleanTmp();
  std::string host = opts.host.empty() ? HostName() : opts.host;
  MV_ASSIGN_OR_RETURN(auto candidates, ParentCandidates(repo, opts, host));
  // The index and the parent's entries load on another core while this one walks.
  storage::AdoptResult adopted;
  BackupResult loader_result;  // parent_id and notes from the loader, merged after the walk
  auto loading =
      std::async(std::launch::async, [&]() -> Result<std::optional<storage::EntryTable>> {
        MV_ASSIGN_OR_RETURN(adopted, repo.AdoptOrphanPacks());
        return LoadParent(repo, candidates, !opts.parent.empty(), &loader_result);
      });
  BackupRun run(opts, progress, result);
  Status walked = WalkSources(run, candidates.empty() ? nullptr : &candidates.front());
  auto loaded = loading.get();
  MV_RETURN_IF_ERROR(walked);
  MV_RETURN_IF_ERROR(loaded.status());
  std::optional<storage::EntryTable> parent = std::move(loaded).value();
  result.parent_id = loader_result.parent_id;
  for (auto& n : loader_result.notes) result.notes.push_back(std::move(n));
  NoteIndexRepairs(repo, adopted, &result);

  PlanReads(run, parent ? &*parent : nullptr);
  parent.reset();  // not needed past planning: free its entries before reading

  int threads = WorkerCount(opts.threads);
  MV_ASSIGN_OR_RETURN(auto existing, repo.OpenBlobReader());  // loaded by AdoptOrphanPacks
  storage::BlobWriter writer(repo, *existing,
                             {.zstd_level = opts.compression_level, .workers = threads});
  FileStore store(writer, opts);
  MV_RETURN_IF_ERROR(ReadChanged(run, store, threads));

  // 4. Packs durable, then the index, then the manifest (the commit point).
  run.Report("commit");
  MV_RETURN_IF_ERROR(WritePacksAndIndex(repo, writer, store, &result.stats));
  storage::Snapshot snap = BuildSnapshot(run, host, started, started_ns);
  result.stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  snap.meta.stats_json = StatsJson(run);
  MV_RETURN_IF_ERROR(repo.CommitSnapshot(snap));
  result.snapshot_id = snap.meta.id;
  result.skipped = std::move(run.walk.skipped);
  return result;
}

}  // namespace mv::agent
