// Restore planning and the file-level steps of a restore (docs/FORMAT.md §10). Every path is
// opened beneath its root with no symlink followed (storage::fs::OpenBeneath), so nothing a
// manifest says can make the restore write outside the target.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/restorer/restore.h"
#include "storage/hash.h"
#include "storage/snapshot.h"

namespace mv::storage {
class BlobReader;
class EntryCursor;
}  // namespace mv::storage

namespace mv::agent {

// A restore is planned and written in batches (restore.cpp): the snapshot is read entry by entry
// through a storage::EntryCursor, and what a batch plans (files to write, later names of hard
// links) is written and dropped before the next one, so memory is bounded by a batch, not by
// the snapshot. What outlives a batch: the restore roots, the directories this restore created
// and the symlinks it made (their metadata is set last), and for each hard-link first path the
// snapshot names (only those) whether it was restored here.

// One per file to write in the current batch; kept small.
//
// Every file is written to a temp name first and renamed to its final name only once all its
// bytes are written, its content hash checks and its metadata is set (restore_write.cpp), so a
// killed or failed restore never leaves a partial file under a final name.
struct PlannedFile {
  const storage::FileEntry* entry = nullptr;  // owned by RestorePlan::batch_entries
  uint32_t root = 0;
  uint32_t rel_offset = 0;  // the path relative to the root is entry->path.substr(rel_offset)
  uint64_t tmp_tag = 0;     // makes the temp name unique (RestoreTempName)
  std::string rel() const { return entry->path.substr(rel_offset); }
  // Where the bytes go first: ".<name>.mv-tmp-<hex>" in the Maildir's tmp/ for a message in
  // cur/ or new/ (tmp_in_maildir_tmp), else beside the final name.
  std::string write_rel() const;
  bool write : 1 = false;        // content is written
  bool replace : 1 = false;      // write_rel is renamed over an existing rel (--overwrite, --exact)
  bool sqlite_live : 1 = false;  // write_rel is an image restored into rel with the backup API
  bool tmp_in_maildir_tmp : 1 = false;
};

// A directory this restore created, or a symlink it made: its metadata is set at the end.
struct PlannedNode {
  storage::FileEntry entry;  // without blobs
  uint32_t root = 0;
  uint32_t rel_offset = 0;
  std::string rel() const { return entry.path.substr(rel_offset); }
};

// A later name of a hard-linked inode (storage::kFlagHardLink) whose first name this restore
// writes into a new file: linked to it once that file is written, not written again.
struct PlannedHardLink {
  const storage::FileEntry* entry = nullptr;  // owned by RestorePlan::batch_entries
  uint32_t root = 0;
  uint32_t rel_offset = 0;
  // The first name: in this batch (index into RestorePlan::files), or written by an earlier
  // batch (kEarlier; target_restored tells whether completely).
  static constexpr size_t kEarlier = SIZE_MAX;
  size_t target = kEarlier;
  bool target_restored = false;
  std::string rel() const { return entry->path.substr(rel_offset); }
  std::string target_rel() const;  // entry->link_target without its source
};

// Extended attributes or ACLs a restored file or directory could not get (the target filesystem
// refuses them): the file itself is restored, and each is reported. Filled concurrently.
struct AttrProblems {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> list;  // snapshot path, message
};

struct RestorePlan {
  std::vector<int> root_fds;
  std::vector<std::string> root_paths;
  std::vector<std::string> sources;  // per root: the snapshot source it restores
  // The current batch: files to write and hard links to make, and the entries they point to.
  std::vector<PlannedFile> files;
  std::vector<PlannedHardLink> hard_links;
  std::deque<storage::FileEntry> batch_entries;
  uint64_t batch_bytes = 0;  // sum of the sizes of `files`
  // The whole restore.
  std::vector<PlannedNode> dirs;   // created by this restore, snapshot order (parents first)
  std::vector<PlannedNode> links;  // symlinks created by this restore
  std::vector<std::unordered_set<std::string>> keep;  // --exact only: per root, every snapshot path
  bool chown = false;
  uint64_t unchanged = 0, conflicts = 0, dirs_created = 0, links_created = 0;
  uint64_t dovecot_left = 0;  // Dovecot state files the target has, left alone (not --exact)
  uint64_t failed = 0;        // files the planner could not restore (each is in problems)
  uint64_t tmp_base = 0, tmp_next = 0;  // temp name tags: tmp_base + a count over the restore
  std::unique_ptr<AttrProblems> attr_problems = std::make_unique<AttrProblems>();
  RestorePlan() = default;
  RestorePlan(RestorePlan&&) = default;  // the root fds move with the plan
  RestorePlan& operator=(RestorePlan&&) = default;
  ~RestorePlan();
};

// Plans a restore entry by entry, in the cursor's walk order (directories before what is in
// them). Creates the restore roots and the directories as it goes (not in a dry run); files are
// added to the current batch of plan(), which the caller writes and then hands back with
// EndBatch. Not thread-safe.
class RestorePlanner {
 public:
  RestorePlanner(const storage::BlobReader& blobs, const RestoreOptions& opts,
                 RestoreResult* result);
  ~RestorePlanner();
  // Checks the options against the snapshot before anything is written: every source named in
  // opts.source_targets and every --include path must be in it (reads `scan`, skipping what no
  // --include selects). Also notes the hard-link first paths of the snapshot.
  Status Begin(const storage::SnapshotMeta& meta, storage::EntryCursor& scan);
  // Plans one entry (the next of the cursor; directories before their contents). Returns
  // whether the entry is a directory no --include selects anything below (the caller skips its
  // children). An error stops the restore (a restore root that cannot be made).
  Result<bool> Add(storage::FileEntry e);
  RestorePlan& plan();
  // After the current batch is written (or, in a dry run, reported): `restored(i)` tells
  // whether plan().files[i] was written completely. Clears the batch.
  void EndBatch(const std::function<bool(size_t)>& restored);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Gives every file of the current batch its temp name (restore_write.cpp says where and why).
void NameTemps(RestorePlan* plan);

// The file-level steps (restore_write.cpp). Each returns a Status whose message is the one
// problem line for the file (what failed, on which host path, what to do); after a failure the
// caller calls DiscardTemp and counts the file failed. Thread-safe for distinct files; the blobs
// of one file may be written concurrently.
//
// Creates the temp file of a file with no blob or several, at its final size (so skipped zero
// blocks are holes). A single-blob file is created by its WriteBlob.
Status CreateFile(const RestorePlan& plan, size_t i);
// Writes one blob of file i at `offset`, skipping all-zero blocks (holes stay holes).
Status WriteBlob(const RestorePlan& plan, size_t i, uint64_t offset, std::string_view data);
// After the last blob: checks the content hash (files of several blobs; a single blob was checked
// when read), sets ownership, mode and mtime, and renames the temp file to the final name (or, for
// a live SQLite database, restores it through the backup API).
Status FinishFile(const storage::KeyedHasher& hasher, const RestorePlan& plan, size_t i);
void DiscardTemp(const RestorePlan& plan, size_t i);
// Sets ownership (as root), extended attributes and ACLs, mode and mtime. An attribute the target
// refuses goes to plan.attr_problems (the file is still restored); the rest fails the call.
Status ApplyMeta(int fd, const storage::FileEntry& e, const RestorePlan& plan,
                 const std::string& host);
std::string HostPath(const RestorePlan& plan, size_t root, const std::string& rel);
// ".<name>.mv-tmp-<16 hex>": what a restore names its temp files, and what a later restore
// removes from the directories it restores into (left by a killed run).
std::string RestoreTempName(const std::string& name, uint64_t tag);
bool IsRestoreTemp(std::string_view name);
// The problem line for a failed write step: `what` ("create", "write"...) on `host`, which is in
// `dir` (default: host's parent) as far as permissions go.
std::string WriteFailure(int err, const std::string& what, const std::string& host,
                         const std::string& dir = {});
// Makes what was restored durable before the restore reports success (one syncfs per root).
void SyncRoots(const RestorePlan& plan);

void FinishDirsAndLinks(const RestorePlan& plan, const RestoreOptions& opts, RestoreResult* result);
// Creates the planned hard links of the current batch (after its files are written; directories
// get their metadata at the end). `restored(i)` tells whether plans.files[i] was written
// completely. A link that
// cannot be made (another filesystem below the target, a link limit) becomes a copy of the
// restored first name, reported.
void LinkHardLinks(const RestorePlan& plan, const std::function<bool(size_t)>& restored,
                   RestoreResult* result);
// --exact: removes what is under the restored roots (within --include) but not in the snapshot.
void RemoveExtras(const RestorePlan& plan, const RestoreOptions& opts, RestoreResult* result);
// Counts the current batch's files and hard links as written (a dry run lists them in
// result->written).
void ReportBatch(const RestorePlan& plan, RestoreResult* result, const RestoreOptions& opts);
// The restore's counters and the attribute problems, once every batch is done.
void FinishPlanReport(const RestorePlan& plan, RestoreResult* result);

}  // namespace mv::agent
