// Restore planning and the file-level steps of a restore (docs/FORMAT.md §10). Every path is
// opened beneath its root with no symlink followed (storage::fs::OpenBeneath), so nothing a
// manifest says can make the restore write outside the target.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/restore.h"
#include "storage/snapshot.h"

namespace mv::storage { class Repository; }

namespace mv::agent {

// One per file to write; kept small (memory: one per restored file, paths not copied).
struct PlannedFile {
  const storage::FileEntry* entry = nullptr;
  uint32_t root = 0;
  uint32_t rel_offset = 0;   // the path relative to the root is entry->path.substr(rel_offset)
  std::string tmp_rel;       // a temp name beside it when the bytes go there first; else empty
  std::string rel() const { return entry->path.substr(rel_offset); }
  std::string write_rel() const { return tmp_rel.empty() ? rel() : tmp_rel; }
  bool write = false;        // content is written
  bool replace = false;      // write_rel is renamed over rel at the end (--overwrite)
  bool sqlite_live = false;  // write_rel is an image restored into rel with the backup API
};

struct PlannedNode {          // directories and symlinks
  const storage::FileEntry* entry = nullptr;
  size_t root = 0;
  std::string rel;
  bool created = false;       // made by this restore: its metadata is set
};

// A later name of a hard-linked inode (storage::kFlagHardLink) whose first name this restore
// writes into a new file: linked to it once the files are written, not written again.
struct PlannedHardLink {
  const storage::FileEntry* entry = nullptr;
  uint32_t root = 0;
  std::string rel;
  size_t target = 0;          // index into RestorePlan::files of the first name
};

struct RestorePlan {
  std::vector<int> root_fds;
  std::vector<std::string> root_paths;
  std::vector<std::string> sources;          // per root: the snapshot source it restores
  std::vector<PlannedFile> files;
  std::vector<PlannedNode> dirs;    // snapshot order (parents first)
  std::vector<PlannedNode> links;
  std::vector<PlannedHardLink> hard_links;
  std::vector<std::unordered_set<std::string>> keep;   // --exact only: per root, every snapshot path
  bool chown = false;
  uint64_t unchanged = 0, conflicts = 0, dirs_created = 0, links_created = 0;
  RestorePlan() = default;
  RestorePlan(RestorePlan&&) = default;   // the root fds move with the plan
  RestorePlan& operator=(RestorePlan&&) = default;
  ~RestorePlan();
};

Result<RestorePlan> PlanRestore(const storage::Repository& repo, const storage::Snapshot& snap,
                                const RestoreOptions& opts, RestoreResult* result);
Status CreateFile(const RestorePlan& plan, size_t i, const RestoreOptions& opts);
// Writes one blob of file i at `offset`. For a single-blob file this also finishes it.
Status WriteBlob(const RestorePlan& plan, size_t i, uint64_t offset, std::string_view data);
Status FinishFile(const RestorePlan& plan, size_t i, const RestoreOptions& opts);
void AbandonFile(const RestorePlan& plan, size_t i);
void FinishDirsAndLinks(const RestorePlan& plan, const RestoreOptions& opts, RestoreResult* result);
// Creates the planned hard links (after every file is written, before directories get their
// metadata). `restored(i)` tells whether plans.files[i] was written completely. A link that
// cannot be made (another filesystem below the target, a link limit) becomes a copy of the
// restored first name, reported.
void LinkHardLinks(const RestorePlan& plan, const std::function<bool(size_t)>& restored, RestoreResult* result);
// --exact: removes what is under the restored roots (within --include) but not in the snapshot.
void RemoveExtras(const RestorePlan& plan, const RestoreOptions& opts, RestoreResult* result);
void FinishPlanReport(const RestorePlan& plan, RestoreResult* result, const RestoreOptions& opts);

}  // namespace mv::agent
