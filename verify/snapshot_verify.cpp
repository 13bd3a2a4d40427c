#include "verify/snapshot_verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "storage/blob_reader.h"
#include "storage/fs.h"
#include "verify/check.h"
#include "verify/merge_walk.h"

namespace mv::verify {
namespace {

using storage::FileEntry;
using storage::FileType;

int64_t MtimeNs(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Where a snapshot path lives in the live sources, or "" when its source is not given.
std::string LivePath(const VerifyOptions& o, const std::string& snap_path) {
  auto slash = snap_path.find('/');
  auto it = o.live.find(snap_path.substr(0, slash));
  if (it == o.live.end() || slash == std::string::npos) return "";
  return it->second + snap_path.substr(slash);
}

// Every regular file of the manifest must be back with its recorded content.
void CheckFiles(const storage::BlobReader& reader, const storage::Snapshot& snap,
                const std::map<std::string, std::pair<uint64_t, storage::BlobId>>& restored,
                const std::map<std::string, std::string>& mailbox_of, VerifyResult& r) {
  for (const auto& f : snap.files) {
    if (f.type != FileType::kRegular) continue;
    auto it = restored.find(f.path);
    std::string what;
    if (it == restored.end())
      what = "missing after restore";
    else if (it->second.first != f.size)
      what = "restored with " + std::to_string(it->second.first) + " bytes, recorded " +
             std::to_string(f.size);
    else if (it->second.second != f.content)
      what = "restored content differs from the recorded content";
    if (what.empty()) continue;
    auto mb = mailbox_of.find(f.path);
    r.damaged_files.push_back({f.path, mb == mailbox_of.end() ? "" : mb->second, what, {}});
  }
  // Which other snapshots hold the same (damaged) blobs: one pass over the manifests.
  if (r.damaged_files.empty()) return;
  std::map<std::string, const FileEntry*> by_path;
  for (const auto& f : snap.files) by_path[f.path] = &f;
  std::vector<storage::BlobId> blobs;
  for (const auto& d : r.damaged_files)
    if (const FileEntry* e = by_path[d.path])
      blobs.insert(blobs.end(), e->blobs.begin(), e->blobs.end());
  auto holders = SnapshotsHoldingBlobs(reader, blobs);
  for (auto& d : r.damaged_files) {
    std::set<std::string> others;
    if (const FileEntry* e = by_path[d.path])
      for (const auto& b : e->blobs)
        for (const auto& s : holders[b])
          if (s != snap.meta.id) others.insert(s);
    d.other_snapshots.assign(others.begin(), others.end());
  }
}

// SQLite's unix VFS names a database by a path of at most 512 bytes (MAX_PATHNAME). A restored
// image deeper than that (the restorer writes any depth) is checked through a copy at the top of
// the scratch directory, made by descriptors and removed when this goes out of scope.
class SqliteImage {
 public:
  static constexpr size_t kMaxDirect = 400;  // margin below 512 for the scratch root itself

  SqliteImage(const std::string& root, const std::string& rel) : path_(root + "/" + rel) {
    if (path_.size() <= kMaxDirect) return;
    std::string copy = root + "/.mailvault-sqlite-" + storage::fs::RandomHex(6) + ".db";
    int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int in = root_fd < 0 ? -1 : storage::fs::OpenBeneath(root_fd, rel, O_RDONLY);
    if (root_fd >= 0) ::close(root_fd);
    if (in < 0) return;  // checks then fail on path_, naming it
    int out = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool done = out >= 0;
    char buf[1 << 16];
    for (ssize_t n; done && (n = ::read(in, buf, sizeof buf)) != 0;)
      done = n > 0 && storage::fs::WriteAll(out, buf, static_cast<size_t>(n), copy).ok();
    ::close(in);
    if (out >= 0) ::close(out);
    if (done)
      path_ = copy, copied_ = true;
    else
      ::unlink(copy.c_str());
  }
  ~SqliteImage() {
    if (copied_) ::unlink(path_.c_str());
  }
  SqliteImage(const SqliteImage&) = delete;
  SqliteImage& operator=(const SqliteImage&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool copied_ = false;
};

// The live database: present, readable, and passing its own integrity check (read-only).
void CheckLiveDatabase(DatabaseCheck& d) {
  struct stat st;
  if (::stat(d.live_path.c_str(), &st) != 0) {
    int err = errno;
    d.live = err == ENOENT ? LiveDb::kMissing : LiveDb::kUnreadable;
    d.live_problem = err == ENOENT
                         ? "live database " + d.path + " is missing: no file at " + d.live_path
                         : "live database " + d.path + " cannot be read at " + d.live_path + ": " +
                               std::strerror(err);
    return;
  }
  auto integ = CheckSqliteIntegrity(d.live_path);
  if (!integ.ok()) {
    d.live = LiveDb::kUnreadable;
    d.live_problem = "live database " + d.path + " cannot be read: " + integ.status().ToString();
  } else if (!integ->ok) {
    d.live = LiveDb::kDamaged;
    d.live_problem = "live database " + d.path + " is damaged (PRAGMA integrity_check failed) at " +
                     d.live_path + (integ->problems.empty() ? "" : ": " + integ->problems[0]);
  } else {
    d.live = LiveDb::kOk;
  }
}

DatabaseCheck CheckDatabase(
    const FileEntry& f, const VerifyOptions& o, const storage::SnapshotMeta& meta,
    const std::map<std::string, std::pair<uint64_t, storage::BlobId>>& restored) {
  DatabaseCheck d;
  d.path = f.path;
  SqliteImage img(o.restored_root, f.path);
  auto it = restored.find(f.path);
  d.content_matches = it != restored.end() && it->second.second == f.content;
  auto integ = CheckSqliteIntegrity(img.path());
  if (!integ.ok()) {
    d.integrity_problems.push_back(integ.status().ToString());
  } else {
    d.integrity_ok = integ->ok;
    d.integrity_problems = integ->problems;
  }
  d.live_path = o.against_live ? LivePath(o, f.path) : "";
  if (d.live_path.empty()) return d;
  CheckLiveDatabase(d);
  if (d.live != LiveDb::kOk || !d.integrity_ok) return d;
  int64_t since = meta.time_ns ? meta.time_ns : meta.time * 1000000000;
  d.live_unchanged_since = MtimeNs(d.live_path) < since && MtimeNs(d.live_path + "-wal") < since;
  SqliteDiffOptions dopts;
  dopts.tables = o.sqlite_tables;
  dopts.max_listed_rows = o.max_listed;
  auto diff = DiffSqlite(img.path(), d.live_path, dopts);
  if (diff.ok())
    d.vs_live = std::move(diff).value();
  else
    d.error = diff.status().ToString();
  return d;
}

// The checks of one regular file of the snapshot that is a database image or its raw copy.
void CheckDatabases(const FileEntry& f, const VerifyOptions& o, const storage::SnapshotMeta& meta,
                    const std::map<std::string, std::pair<uint64_t, storage::BlobId>>& restored,
                    VerifyResult& r) {
  if (f.flags & storage::kFlagSqlite) r.databases.push_back(CheckDatabase(f, o, meta, restored));
  if (f.flags & storage::kFlagSqliteRaw) {
    DatabaseCheck d;
    d.path = f.path;
    d.raw_copy = true;
    auto it = restored.find(f.path);
    d.content_matches = it != restored.end() && it->second.second == f.content;
    r.databases.push_back(std::move(d));
  }
}

// The same comparison as VerifyRestored over whole lists, for a snapshot read through a cursor.
Result<VerifyResult> VerifyWhole(const storage::BlobReader& blobs, const std::string& id,
                                 const VerifyOptions& o,
                                 const std::vector<std::string>& restore_problems) {
  storage::Snapshot snap;
  MV_ASSIGN_OR_RETURN(auto cursor, blobs.OpenEntries(id, &snap.meta));
  storage::FileEntry e;
  for (;;) {
    MV_ASSIGN_OR_RETURN(bool more, cursor->Next(&e));
    if (!more) break;
    snap.files.push_back(std::move(e));
  }
  std::sort(snap.files.begin(), snap.files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return VerifyRestored(blobs, snap, o, restore_problems);
}

// Damaged files, and which other snapshots hold the same (damaged) blobs.
void AddDamaged(const storage::BlobReader& reader, const std::string& snapshot_id,
                std::vector<MergeWalkResult::Damaged>& damaged, VerifyResult& r) {
  if (damaged.empty()) return;
  std::vector<storage::BlobId> blobs;
  for (const auto& d : damaged) blobs.insert(blobs.end(), d.blobs.begin(), d.blobs.end());
  auto holders = SnapshotsHoldingBlobs(reader, blobs);
  for (auto& d : damaged) {
    std::set<std::string> others;
    for (const auto& b : d.blobs)
      for (const auto& s : holders[b])
        if (s != snapshot_id) others.insert(s);
    r.damaged_files.push_back({std::move(d.path), std::move(d.mailbox), std::move(d.what),
                               std::vector<std::string>(others.begin(), others.end())});
  }
}

// The live comparison of source `name` at `path`; nullopt when only whole lists resolve it.
Result<std::optional<LiveComparison>> CompareLive(const storage::BlobReader& blobs,
                                                  const std::string& id,
                                                  const storage::SnapshotMeta& meta,
                                                  const std::string& name,
                                                  const std::string& path) {
  LiveComparison lc{name, path, {}, {}, {}};
  MV_ASSIGN_OR_RETURN(auto cursor, blobs.OpenEntries(id, nullptr));
  MV_ASSIGN_OR_RETURN(auto w, MergeWalk(*cursor, {{name, path}}, TreeKind::kLive, blobs.hasher()));
  if (!w) return std::optional<LiveComparison>();
  if (auto it = w->root_errors.find(name); it != w->root_errors.end()) {
    lc.problems.push_back(it->second.ToString());
    return std::optional<LiveComparison>(std::move(lc));
  }
  std::vector<storage::CensusRow> mine;
  for (const auto& c : meta.census)
    if (c.source == name) mine.push_back(c);
  lc.census = DiffCensus(mine, w->tree_census);
  lc.messages = std::move(w->messages);
  lc.problems = std::move(w->problems[name]);
  return std::optional<LiveComparison>(std::move(lc));
}

}  // namespace

bool DatabaseCheck::loss() const {
  if (raw_copy) return !content_matches;
  return !integrity_ok || !content_matches ||
         (live_unchanged_since && vs_live && !vs_live->identical());
}

uint64_t VerifyResult::lost_messages() const {
  return snapshot_vs_restored.only_base.size() + snapshot_vs_restored.changed.size() +
         snapshot_vs_restored.moved.size();
}

std::vector<std::string> VerifyResult::Errors() const {
  std::vector<std::string> e;
  auto n = [](size_t k, const char* what) { return std::to_string(k) + " " + what; };
  if (!restore_problems.empty())
    e.push_back(n(restore_problems.size(), "restore problem(s): damaged or missing blobs"));
  if (!snapshot_vs_restored.only_base.empty())
    e.push_back(
        n(snapshot_vs_restored.only_base.size(), "message(s) lost: in the snapshot, not restored"));
  if (!snapshot_vs_restored.changed.empty())
    e.push_back(n(snapshot_vs_restored.changed.size(), "message(s) restored with changed content"));
  if (!snapshot_vs_restored.moved.empty() || !snapshot_vs_restored.only_other.empty())
    e.push_back(n(snapshot_vs_restored.moved.size() + snapshot_vs_restored.only_other.size(),
                  "message(s) restored in a place the snapshot does not name"));
  size_t other_files = 0;
  for (const auto& d : damaged_files) other_files += d.mailbox.empty();
  if (other_files) e.push_back(n(other_files, "other file(s) missing or damaged after restore"));
  if (!recorded_vs_manifest.empty())
    e.push_back(n(recorded_vs_manifest.size(),
                  "folder(s) where the manifest disagrees with the census recorded at backup"));
  if (!recorded_vs_restored.empty())
    e.push_back(n(recorded_vs_restored.size(),
                  "folder(s) where the restored Maildir disagrees with the recorded census"));
  for (const auto& l : live)
    if (!l.messages.changed.empty())
      e.push_back(n(
          l.messages.changed.size(),
          ("message(s) whose content differs from live source " + l.source + " under the same name")
              .c_str()));
  for (const auto& d : databases) {
    if (d.raw_copy) {
      if (!d.content_matches) e.push_back(d.path + ": raw copy missing or damaged after restore");
      continue;
    }
    if (!d.integrity_ok && !d.content_matches)
      e.push_back(d.path + ": database missing or damaged after restore");
    else if (!d.integrity_ok)
      e.push_back(d.path + ": SQLite integrity check failed");
    else if (!d.content_matches)
      e.push_back(d.path + ": restored database differs from the recorded image");
    if (d.integrity_ok && d.live_unchanged_since && d.vs_live && !d.vs_live->identical())
      e.push_back(
          d.path +
          ": rows differ from the live database, which has not changed since the snapshot (loss)");
    if (!d.live_problem.empty())
      e.push_back(d.live_problem);
    else if (!d.error.empty())
      e.push_back(d.path + ": could not be compared with the live database: " + d.error);
  }
  return e;
}

bool VerifyResult::ok() const { return Errors().empty(); }

std::vector<std::string> UnreadableAtBackup(const storage::SnapshotMeta& meta) {
  std::vector<std::string> paths;
  if (meta.stats_json.empty()) return paths;
  auto stats = nlohmann::json::parse(meta.stats_json, nullptr, /*allow_exceptions=*/false);
  if (!stats.is_object() || !stats.contains("problems") || !stats["problems"].is_array())
    return paths;
  for (const auto& p : stats["problems"]) {
    if (p.is_string())
      paths.push_back(p.get<std::string>());
    else if (p.is_object() && p.contains("path") && p["path"].is_string())
      paths.push_back(p["path"].get<std::string>());
  }
  return paths;
}

Result<VerifyResult> VerifyRestored(const storage::BlobReader& blobs, const storage::Snapshot& snap,
                                    const VerifyOptions& o,
                                    const std::vector<std::string>& restore_problems) {
  VerifyResult r;
  r.snapshot_id = snap.meta.id;
  r.snapshot_time = snap.meta.time;
  r.restore_problems = restore_problems;
  r.unreadable_at_backup = snap.meta.problems;
  r.unreadable_paths = UnreadableAtBackup(snap.meta);
  Inventory recorded_inv = InventoryOfEntries(snap.files);
  std::map<std::string, std::string> mailbox_of;
  std::set<std::pair<std::string, std::string>> mailboxes;
  for (const auto& m : recorded_inv.messages) {
    mailbox_of[m.path] = m.mailbox;
    mailboxes.insert({m.source, m.mailbox});
  }
  r.messages = recorded_inv.messages.size();
  r.mailboxes = mailboxes.size();
  r.folders = snap.meta.census.size();
  for (const auto& f : snap.files)
    if (f.type == FileType::kRegular) r.files++, r.bytes += f.size;

  // The restored tree, every file hashed.
  ScannedTree restored;
  for (const auto& src : snap.meta.sources) {
    auto t = ScanTree(src.name, o.restored_root + "/" + src.name, blobs.hasher(),
                      {.hash_all_files = true});
    if (!t.ok() && t.status().code() == Code::kNotFound) {  // nothing of it came back: all lost
      r.restore_problems.push_back(src.name + ": source not restored at all (" +
                                   t.status().message() + ")");
      continue;
    }
    if (!t.ok()) return t.status();
    restored.files.insert(t->files.begin(), t->files.end());
    restored.inventory.census.insert(restored.inventory.census.end(), t->inventory.census.begin(),
                                     t->inventory.census.end());
    restored.inventory.messages.insert(restored.inventory.messages.end(),
                                       t->inventory.messages.begin(), t->inventory.messages.end());
    for (auto& p : t->problems) r.restore_problems.push_back(p);
  }
  if (o.against_snapshot) {
    r.recorded_vs_manifest = DiffCensus(snap.meta.census, recorded_inv.census);
    r.recorded_vs_restored = DiffCensus(snap.meta.census, restored.inventory.census);
    r.snapshot_vs_restored = DiffMessages(recorded_inv.messages, restored.inventory.messages);
    CheckFiles(blobs, snap, restored.files, mailbox_of, r);
  }
  if (o.against_live) {
    for (const auto& [name, path] : o.live) {
      LiveComparison lc{name, path, {}, {}, {}};
      auto t = ScanTree(name, path, blobs.hasher());
      if (!t.ok()) {
        lc.problems.push_back(t.status().ToString());
      } else {
        std::vector<storage::CensusRow> mine;
        for (const auto& c : snap.meta.census)
          if (c.source == name) mine.push_back(c);
        std::vector<MessageRecord> msgs;
        for (const auto& m : recorded_inv.messages)
          if (m.source == name) msgs.push_back(m);
        lc.census = DiffCensus(mine, t->inventory.census);
        lc.messages = DiffMessages(msgs, t->inventory.messages);
        lc.problems = t->problems;
      }
      r.live.push_back(std::move(lc));
    }
  }
  for (const auto& f : snap.files)
    if (f.type == FileType::kRegular) CheckDatabases(f, o, snap.meta, restored.files, r);
  return r;
}

}  // namespace mv::verify

namespace mv::verify {

Result<VerifyResult> VerifyRestoredStream(const storage::BlobReader& blobs, const std::string& id,
                                          const VerifyOptions& o,
                                          const std::vector<std::string>& restore_problems) {
  storage::SnapshotMeta meta;
  MV_ASSIGN_OR_RETURN(auto cursor, blobs.OpenEntries(id, &meta));
  std::map<std::string, std::string> roots;
  for (const auto& src : meta.sources) roots[src.name] = o.restored_root + "/" + src.name;
  MV_ASSIGN_OR_RETURN(auto w, MergeWalk(*cursor, roots, TreeKind::kRestored, blobs.hasher()));
  cursor.reset();
  if (!w) return VerifyWhole(blobs, id, o, restore_problems);
  VerifyResult r;
  r.snapshot_id = meta.id;
  r.snapshot_time = meta.time;
  r.restore_problems = restore_problems;
  r.unreadable_at_backup = meta.problems;
  r.unreadable_paths = UnreadableAtBackup(meta);
  r.messages = w->messages_count;
  r.mailboxes = w->mailboxes;
  r.folders = meta.census.size();
  r.files = w->files;
  r.bytes = w->bytes;
  for (const auto& src : meta.sources) {
    if (auto it = w->root_errors.find(src.name); it != w->root_errors.end()) {
      if (it->second.code() != Code::kNotFound) return it->second;
      r.restore_problems.push_back(src.name + ": source not restored at all (" +
                                   it->second.message() + ")");
      continue;
    }
    for (auto& p : w->problems[src.name]) r.restore_problems.push_back(std::move(p));
  }
  if (o.against_snapshot) {
    r.recorded_vs_manifest = DiffCensus(meta.census, w->snapshot_census);
    r.recorded_vs_restored = DiffCensus(meta.census, w->tree_census);
    r.snapshot_vs_restored = std::move(w->messages);
    AddDamaged(blobs, meta.id, w->damaged, r);
  }
  if (o.against_live) {
    for (const auto& [name, path] : o.live) {
      MV_ASSIGN_OR_RETURN(auto lc, CompareLive(blobs, id, meta, name, path));
      if (!lc) return VerifyWhole(blobs, id, o, restore_problems);
      r.live.push_back(std::move(*lc));
    }
  }
  for (const auto& f : w->databases) CheckDatabases(f, o, meta, w->database_files, r);
  return r;
}

}  // namespace mv::verify
