#include "agent/restorer/restore_plan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "hooks/sqlite_backup.h"
#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"
#include "storage/fs.h"
#include "storage/xattr.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;
namespace fs = storage::fs;

std::string Err(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A manifest path is acceptable when every component is a plain name.
bool SafeRel(const std::string& rel) {
  if (rel.empty()) return true;
  if (rel.front() == '/' || rel.find('\0') != std::string::npos) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string_view c(rel.data() + start,
                       (slash == std::string::npos ? rel.size() : slash) - start);
    if (c.empty() || c == "." || c == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

bool Included(const std::string& path, const std::vector<std::string>& inc) {
  if (inc.empty()) return true;
  for (const auto& i : inc) {
    if (path == i) return true;
    if (path.size() > i.size() && path.compare(0, i.size(), i) == 0 && path[i.size()] == '/')
      return true;
    if (i.size() > path.size() && i.compare(0, path.size(), path) == 0 && i[path.size()] == '/')
      return true;
  }
  return false;
}

// Extended attributes and ACLs (FORMAT.md §10). Before the mode: setting an access ACL sets the
// group bits, and the recorded mode (taken with the ACL in place) then sets the same mask again.
Status ApplyXattrs(int fd, const FileEntry& e, const std::string& path) {
  if (e.xattrs.empty()) return Status::Ok();
  return storage::WriteXattrs(fd, e.xattrs, path);
}

// Does `fd` (an open regular file) hold exactly `e`'s content?
bool SameContent(const storage::KeyedHasher& hasher, int fd, const FileEntry& e) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != e.size) return false;
  storage::KeyedHasher::Stream h(hasher);
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) return false;
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  return h.Final() == e.content;
}

std::string Parent(const std::string& rel) {
  auto s = rel.find_last_of('/');
  return s == std::string::npos ? "" : rel.substr(0, s);
}

std::string_view Basename(const std::string& rel) {
  auto s = rel.find_last_of('/');
  return s == std::string::npos ? std::string_view(rel) : std::string_view(rel).substr(s + 1);
}

}  // namespace

class RestorePlanner::Impl {
 public:
  Impl(const storage::KeyedHasher& hasher, const RestoreOptions& opts, RestoreResult* result)
      : hasher_(hasher), opts_(opts), result_(result), plan_(&plan_storage_) {
    for (auto i : opts_.includes) {
      while (i.size() > 1 && i.back() == '/') i.pop_back();
      inc_.push_back(i);
    }
  }

  RestorePlan& plan() { return plan_storage_; }

  Status Begin(const storage::SnapshotMeta& meta, storage::EntryCursor& scan) {
    for (const auto& [name, _] : opts_.source_targets) {
      bool found = false;
      for (const auto& s : meta.sources) found |= s.name == name;
      if (!found)
        return Status::Invalid("source '" + name + "' is not in snapshot " + meta.id.substr(0, 8));
    }
    // One pass before anything is written: the --include paths must all match, and a hard link's
    // first path must be known as such when it is restored (it comes first in walk order).
    std::vector<bool> inc_hit(inc_.size(), false);
    FileEntry e;
    std::string last_source = "/";  // never a source name
    for (;;) {
      MV_ASSIGN_OR_RETURN(bool more, scan.Next(&e));
      if (!more) break;
      for (size_t k = 0; k < inc_.size(); k++)
        if (e.path == inc_[k] ||
            (e.path.size() > inc_[k].size() && e.path.compare(0, inc_[k].size(), inc_[k]) == 0 &&
             e.path[inc_[k].size()] == '/'))
          inc_hit[k] = true;
      if (!Included(e.path, inc_)) {
        if (e.type == FileType::kDirectory) scan.SkipChildren();
        continue;
      }
      if (e.type == FileType::kRegular && (e.flags & storage::kFlagHardLink))
        link_targets_.emplace(e.link_target, LinkTarget{});
      // The restore roots are made (or refused) now, in the order the snapshot names them, so
      // a root that cannot be made stops the restore before any file is written.
      if (std::string_view(e.path).substr(0, e.path.find('/')) == last_source) continue;
      std::string rel;
      MV_ASSIGN_OR_RETURN(auto root, RootOf(e, &rel, false));
      if (root) last_source = e.path.substr(0, e.path.find('/'));
    }
    for (size_t k = 0; k < inc_.size(); k++)
      if (!inc_hit[k])
        return Status::Invalid("--include " + inc_[k] + " matches nothing in snapshot " +
                               meta.id.substr(0, 8) +
                               "; paths start with the source name, e.g. mail/alice@example.org "
                               "(see `mailvault ls`)");
    return Status::Ok();
  }

  Result<bool> Add(FileEntry&& e) {
    if (!Included(e.path, inc_)) return e.type == FileType::kDirectory;
    std::string rel;
    MV_ASSIGN_OR_RETURN(auto root, RootOf(e, &rel, true));
    if (!root) return e.type == FileType::kDirectory && rel.empty();
    Add(std::move(e), *root, rel);
    return false;
  }

  void EndBatch(const std::function<bool(size_t)>& restored) {
    for (auto* t : batch_targets_) {
      t->restored = plan_->files[t->index].write && restored(t->index);
      t->index = PlannedHardLink::kEarlier;
    }
    batch_targets_.clear();
    plan_->files.clear();
    plan_->hard_links.clear();
    plan_->batch_entries.clear();
    plan_->batch_bytes = 0;
  }

 private:
  // The root selected entry `e` is restored into (made on first use), and its path below it in
  // *rel; nullopt when its source is not restored, or when its path is unsafe (then *rel is
  // "unsafe", and with `report` the problem is recorded).
  Result<std::optional<size_t>> RootOf(const FileEntry& e, std::string* rel, bool report) {
    auto slash = e.path.find('/');
    std::string source = e.path.substr(0, slash);
    *rel = slash == std::string::npos ? "" : e.path.substr(slash + 1);
    if (source.empty() || source == "." || source == ".." || !SafeRel(*rel)) {
      *rel = "unsafe";
      if (!report) return std::optional<size_t>();
      if (e.type == FileType::kRegular) plan_->failed++;
      result_->problems.push_back({e.path,
                                   "refused: unsafe path in the manifest (absolute, '..' or empty "
                                   "component); nothing written for it"});
      return std::optional<size_t>();
    }
    if (!opts_.source_targets.empty() && !opts_.source_targets.count(source)) {
      rel->clear();
      return std::optional<size_t>();
    }
    std::string path = opts_.source_targets.count(source) ? opts_.source_targets.at(source)
                                                          : fs::Join(opts_.target, source);
    // TARGET/<source> is inside the target: a symlink there is not followed (it could lead out).
    MV_ASSIGN_OR_RETURN(size_t root, Root(source, path, !opts_.source_targets.count(source)));
    return std::optional<size_t>(root);
  }

  // Creates a restore root and its parents; a permission failure says which directory lacks
  // write access (not errno's text alone).
  static Status MakeRoot(const std::string& path) {
    Status st = fs::MakeDirs(path, 0700);
    if (st.ok()) return st;
    std::string dir = fs::Dirname(path);
    while (dir.size() > 1 && !fs::Exists(dir)) dir = fs::Dirname(dir);
    if (::faccessat(AT_FDCWD, dir.c_str(), W_OK, AT_EACCESS) != 0 &&
        (errno == EACCES || errno == EPERM))
      return Status::IOError(
          "cannot create the restore directory: write access to " + dir +
              " is missing; run the "
              "restore as a user who may write there (as root to keep ownership), or choose "
              "another --target",
          path);
    return st;
  }

  // Removes the temp files a killed restore left in `dirfd` (RestoreTempName's pattern only).
  static void RemoveStaleTemps(int dirfd) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR* d = ::fdopendir(fd);
    std::vector<std::string> stale;
    while (struct dirent* de = ::readdir(d))
      if (IsRestoreTemp(de->d_name) && (de->d_type == DT_REG || de->d_type == DT_UNKNOWN))
        stale.emplace_back(de->d_name);
    for (const auto& n : stale) ::unlinkat(::dirfd(d), n.c_str(), 0);
    ::closedir(d);
  }

  // The directory `path` that `source` is restored into; `inside`: its last component must not be
  // a symlink.
  Result<size_t> Root(const std::string& source, const std::string& path, bool inside) {
    auto it = roots_.find(source);
    if (it != roots_.end()) return it->second;
    bool existed = fs::Exists(path);
    if (!opts_.dry_run) MV_RETURN_IF_ERROR(MakeRoot(path));
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (inside ? O_NOFOLLOW : 0));
    struct stat lst;
    if (fd < 0 && inside && ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
      return Status::IOError(
          "refused: this is a symlink, and restore never follows a symlink inside the "
          "target (it could lead outside it); remove it or choose another --target",
          path);
    if (fd < 0 && !(opts_.dry_run && !existed))
      return Status::FromErrno(errno, "open restore target", path);
    plan_->root_fds.push_back(fd);
    plan_->root_paths.push_back(path);
    plan_->keep.emplace_back();
    plan_->sources.push_back(source);
    root_new_.push_back(!existed);
    if (existed && fd >= 0 && !opts_.dry_run) RemoveStaleTemps(fd);
    roots_[source] = plan_->root_fds.size() - 1;
    return plan_->root_fds.size() - 1;
  }

  // Whether directory `dir_rel` could not be made (or opened): what goes in it is not restored.
  // (root/rel -> the host path of the first directory on its path that failed.)
  static std::string UnmadeReason(const std::string& dir) {
    struct stat st;
    if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return "refused: its path goes through the symlink " + dir +
             ", which restore never follows inside the "
             "target (it could lead outside it); nothing written for it";
    return "not restored: the directory " + dir +
           " on its path could not be made (see the line for it)";
  }
  bool Unmade(size_t root, const std::string& dir_rel) const {
    return !unmade_dirs_.empty() && !dir_rel.empty() &&
           unmade_dirs_.count(std::to_string(root) + "/" + dir_rel);
  }

  // Whether `rel` (a directory under root) was created by this restore, so nothing is in it.
  bool Fresh(size_t root, const std::string& dir_rel) const {
    if (dir_rel.empty()) return root_new_[root];
    return fresh_dirs_.count(std::to_string(root) + "/" + dir_rel) != 0;
  }

  void Add(FileEntry&& e, size_t root, const std::string& rel) {
    if (opts_.exact) plan_->keep[root].insert(rel);
    if (e.type == FileType::kDirectory) return AddDir(e, root, rel);
    if (Unmade(root, Parent(rel)))
      return Refuse(e, UnmadeReason(unmade_dirs_.at(std::to_string(root) + "/" + Parent(rel))));
    if (e.type == FileType::kSymlink) return AddLink(e, root, rel);
    AddFile(e, root, rel);
  }

  void AddDir(FileEntry& e, size_t root, const std::string& rel) {
    bool created = false;
    if (!rel.empty() && Unmade(root, Parent(rel))) {
      std::string first = unmade_dirs_.at(std::to_string(root) + "/" + Parent(rel));
      unmade_dirs_[std::to_string(root) + "/" + rel] = first;
      return Problem(e.path, UnmadeReason(first));
    }
    int rfd = plan_->root_fds[root];
    if (rel.empty()) {
      created = root_new_[root];
    } else if (opts_.dry_run) {
      struct stat st;
      created = Fresh(root, Parent(rel)) || rfd < 0 ||
                ::fstatat(rfd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0;
    } else if (!MakeDir(e, root, rel, &created)) {
      return;
    }
    if (!created) return;
    fresh_dirs_.insert(std::to_string(root) + "/" + rel);
    plan_->dirs_created++;
    plan_->dirs.push_back(Node(e, root, rel));
  }

  // What a directory or symlink keeps until its metadata is set at the end.
  static PlannedNode Node(FileEntry& e, size_t root, const std::string& rel) {
    e.blobs = {};
    uint32_t off = static_cast<uint32_t>(e.path.size() - rel.size());
    return PlannedNode{std::move(e), static_cast<uint32_t>(root), off};
  }

  // Moves `e` into the current batch (files and hard links point to it there).
  const FileEntry* Keep(FileEntry& e) {
    plan_->batch_entries.push_back(std::move(e));
    return &plan_->batch_entries.back();
  }

  void PushFile(PlannedFile f, FileEntry& e) {
    f.entry = Keep(e);
    plan_->batch_bytes += f.entry->size;
    plan_->files.push_back(f);
  }

  // Creates directory `rel` (*created), or finds a directory there, from which it removes a
  // killed restore's temp files. Otherwise records the problem, marks `rel` unmade (nothing below
  // it is restored) and returns false.
  bool MakeDir(const FileEntry& e, size_t root, const std::string& rel, bool* created) {
    int rfd = plan_->root_fds[root];
    std::string host = plan_->root_paths[root] + "/" + rel;
    std::string name;
    int pfd = fs::OpenParentBeneath(rfd, rel, &name);
    if (pfd < 0) {
      unmade_dirs_[std::to_string(root) + "/" + rel] = host;
      Problem(e.path, WriteFailure(errno, "open the parent directory of", host));
      return false;
    }
    if (::mkdirat(pfd, name.c_str(), 0700) == 0) {
      *created = true;
      ::close(pfd);
      return true;
    }
    int err = errno;
    struct stat st;
    bool seen = err == EEXIST && ::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    ::close(pfd);
    if (!seen || !S_ISDIR(st.st_mode)) {
      unmade_dirs_[std::to_string(root) + "/" + rel] = host;
      if (err != EEXIST) {
        Problem(e.path, WriteFailure(err, "create the directory", host));
      } else {
        plan_->conflicts++;
        if (seen && S_ISLNK(st.st_mode))
          Problem(e.path,
                  "kept: " + host +
                      " is a symlink where the snapshot has a directory; "
                      "restore never follows a symlink inside the target (it could lead outside "
                      "it), so nothing below it is restored; remove the symlink and restore again");
        else
          Problem(e.path, "kept: something that is not a directory is in the way (" + host + ")");
      }
      return false;
    }
    int dfd = fs::OpenBeneath(rfd, rel, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      RemoveStaleTemps(dfd);
      ::close(dfd);
    }
    return true;
  }

  // A regular file: new, unchanged, kept (in the way or differing) or replaced.
  void AddFile(FileEntry& e, size_t root, const std::string& rel) {
    int rfd = plan_->root_fds[root];
    PlannedFile f;
    f.entry = &e;
    f.root = static_cast<uint32_t>(root);
    f.rel_offset = static_cast<uint32_t>(e.path.size() - rel.size());
    if (Fresh(root, Parent(rel)) || rfd < 0) return AddNewFile(f, e);
    int fd = fs::OpenBeneath(rfd, rel, O_RDONLY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
      if (!opts_.exact && PresentUnderOtherName(root, rel, e)) {
        plan_->unchanged++;
        return;
      }
      return AddNewFile(f, e);
    }
    if (fd < 0) {
      // A symlink among the parent directories (one the snapshot itself restored, say) is a
      // path that would leave the target: refused, not a conflict with what is in the way.
      std::string name, why = Err("cannot open what is in the way");
      int pfd = fs::OpenParentBeneath(rfd, rel, &name);
      if (pfd < 0)
        return Refuse(e,
                      "refused: its parent path holds a symlink, which restore never follows "
                      "(it could lead outside the target); nothing written for it");
      ::close(pfd);
      plan_->conflicts++;
      return Problem(e.path, "kept: " + why + " (" + plan_->root_paths[root] + "/" + rel + ")");
    }
    // Dovecot's own state that the target has is the live one (an old uidlist or index would
    // renumber the folder for every client, an old maildirsize is a wrong quota): left alone,
    // counted in one line, even with --overwrite; only --exact makes it the snapshot's. One that
    // is missing (a rerun of an interrupted restore, a deleted quota file) is restored.
    if (!opts_.exact && mailfiles::IsDovecotStateFile(Basename(rel))) {
      ::close(fd);
      plan_->dovecot_left++;
      return;
    }
    AddOverExisting(f, e, fd, rel);
  }

  // File f has something at its path, open as `fd` (closed here): unchanged, kept, or replaced
  // (--overwrite, --exact, a live SQLite database of a stack restore).
  void AddOverExisting(PlannedFile f, FileEntry& e, int fd, const std::string& rel) {
    struct stat st;
    bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    bool same = regular && SameContent(hasher_, fd, e);
    ::close(fd);
    if (same) {
      plan_->unchanged++;
      return;
    }
    bool sqlite_live = regular && (e.flags & storage::kFlagSqlite) && !opts_.source_targets.empty();
    if (!regular || (!opts_.overwrite && !opts_.exact && !sqlite_live)) {
      plan_->conflicts++;
      if (!regular)
        return Problem(e.path, "kept: something that is not a regular file is in the way");
      result_->kept.push_back(
          {e.path,
           "kept: the file in the target differs from the snapshot (use --overwrite "
           "to replace it): " +
               plan_->root_paths[f.root] + "/" + rel});
      return;
    }
    f.write = true;
    f.replace = !sqlite_live;
    f.sqlite_live = sqlite_live;
    PushFile(f, e);
  }

  // A file with nothing in its way. A later name of a hard-linked inode whose first name is also
  // new here is linked to it afterwards (LinkHardLinks), not written again.
  void AddNewFile(PlannedFile f, FileEntry& e) {
    if (e.flags & storage::kFlagHardLink) {
      auto it = link_targets_.find(e.link_target);
      if (it != link_targets_.end() && it->second.seen && it->second.root == f.root) {
        const LinkTarget& t = it->second;
        uint32_t off = f.rel_offset;
        plan_->hard_links.push_back({Keep(e), f.root, off, t.index, t.restored});
        return;
      }
    }
    f.write = true;
    auto it = link_targets_.empty() ? link_targets_.end() : link_targets_.find(e.path);
    PushFile(f, e);
    if (it != link_targets_.end()) {
      it->second = {true, f.root, plan_->files.size() - 1, false};
      batch_targets_.push_back(&it->second);
    }
  }

  void AddLink(FileEntry& e, size_t root, const std::string& rel) {
    if (opts_.dry_run) return;  // nothing is made, so nothing gets metadata
    std::string name;
    int pfd = fs::OpenParentBeneath(plan_->root_fds[root], rel, &name);
    std::string host = plan_->root_paths[root] + "/" + rel;
    if (pfd < 0) return Problem(e.path, WriteFailure(errno, "open the parent directory of", host));
    if (::symlinkat(e.link_target.c_str(), pfd, name.c_str()) == 0) {
      plan_->links_created++;
      plan_->links.push_back(Node(e, root, rel));
    } else if (errno != EEXIST) {
      Problem(e.path, WriteFailure(errno, "create the symlink", host));
    } else {
      std::string cur(4096, '\0');
      ssize_t k = ::readlinkat(pfd, name.c_str(), cur.data(), cur.size());
      if (k >= 0 && std::string_view(cur.data(), static_cast<size_t>(k)) == e.link_target) {
        plan_->unchanged++;
      } else {
        plan_->conflicts++;
        result_->kept.push_back({e.path, "kept: something else is in the way of this symlink"});
      }
    }
    ::close(pfd);
  }

  // A Maildir message whose unique name is already in its folder (cur/ or new/) under other
  // flags, with the same content, is present: restoring it again would duplicate the message. A
  // file that shares the unique name but holds other content is another message and is restored.
  bool PresentUnderOtherName(size_t root, const std::string& rel, const FileEntry& e) {
    std::string dir = Parent(rel);
    std::string sub =
        dir.substr(dir.find_last_of('/') == std::string::npos ? 0 : dir.find_last_of('/') + 1);
    if (sub != "cur" && sub != "new") return false;
    std::string folder = Parent(dir);
    std::string key = std::to_string(root) + "/" + folder;
    if (names_key_ != key) {  // walk order: a folder's cur/ and new/ come together
      names_key_ = key;
      names_.clear();
      std::unordered_multimap<std::string, std::string> names;  // unique name -> "cur/<file>"
      for (const char* s : {"cur", "new"}) {
        int fd = fs::OpenBeneath(plan_->root_fds[root], folder.empty() ? s : folder + "/" + s,
                                 O_RDONLY | O_DIRECTORY);
        if (fd < 0) continue;
        DIR* d = ::fdopendir(fd);
        while (struct dirent* de = ::readdir(d))
          names.emplace(std::string(mailfiles::UniqueName(de->d_name)),
                        std::string(s) + "/" + de->d_name);
        ::closedir(d);
      }
      names_ = std::move(names);
    }
    std::string base = rel.substr(rel.find_last_of('/') + 1);
    auto [lo, hi] = names_.equal_range(std::string(mailfiles::UniqueName(base)));
    for (auto c = lo; c != hi; ++c) {
      int fd = fs::OpenBeneath(plan_->root_fds[root],
                               folder.empty() ? c->second : folder + "/" + c->second,
                               O_RDONLY | O_NONBLOCK);
      if (fd < 0) continue;
      bool same = SameContent(hasher_, fd, e);
      ::close(fd);
      if (same) return true;
    }
    return false;
  }

  void Problem(const std::string& path, std::string msg) {
    result_->problems.push_back({path, std::move(msg)});
  }
  // A snapshot entry that is not restored: a regular file among them counts as failed.
  void Refuse(const FileEntry& e, std::string msg) {
    if (e.type == FileType::kRegular) plan_->failed++;
    Problem(e.path, std::move(msg));
  }

  const storage::KeyedHasher& hasher_;  // compares what is in the way with the snapshot
  const RestoreOptions& opts_;
  RestoreResult* result_;
  RestorePlan* plan_;  // &plan_storage_
  std::map<std::string, size_t> roots_;
  std::vector<bool> root_new_;
  std::unordered_set<std::string> fresh_dirs_;
  std::unordered_map<std::string, std::string> unmade_dirs_;
  // The listing of the folder PresentUnderOtherName looked at last (unique name -> "cur/<file>").
  std::string names_key_;
  std::unordered_multimap<std::string, std::string> names_;
  // The first paths the snapshot's hard links name (Begin), and for each whether this restore
  // wrote it as a new file, under which root, and where it is (in the batch or done).
  struct LinkTarget {
    bool seen = false;  // written new by this restore
    uint32_t root = 0;
    size_t index = PlannedHardLink::kEarlier;  // in plan_->files while its batch is open
    bool restored = false;                     // once its batch is done
  };
  std::unordered_map<std::string, LinkTarget> link_targets_;
  std::vector<LinkTarget*> batch_targets_;  // those written new in the current batch
  std::vector<std::string> inc_;            // --include paths without a trailing '/'
  RestorePlan plan_storage_;
};

std::string HostPath(const RestorePlan& plan, size_t root, const std::string& rel) {
  return rel.empty() ? plan.root_paths[root] : plan.root_paths[root] + "/" + rel;
}

Status ApplyMeta(int fd, const FileEntry& e, const RestorePlan& plan, const std::string& host) {
  if (plan.chown && ::fchown(fd, e.uid, e.gid) != 0)
    return Status::IOError(WriteFailure(errno, "set the owner of", host));
  if (Status xattrs = ApplyXattrs(fd, e, host); !xattrs.ok()) {
    std::lock_guard<std::mutex> l(plan.attr_problems->mu);
    plan.attr_problems->list.emplace_back(
        e.path, "restored without some of its extended attributes or ACLs: " + xattrs.ToString());
  }
  if (::fchmod(fd, e.mode & 07777) != 0)
    return Status::IOError(WriteFailure(errno, "set the mode of", host));
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = e.mtime_ns / 1000000000;
  ts[0].tv_nsec = ts[1].tv_nsec = e.mtime_ns % 1000000000;
  if (::futimens(fd, ts) != 0)
    return Status::IOError(WriteFailure(errno, "set the mtime of", host));
  return Status::Ok();
}

RestorePlan::~RestorePlan() {
  for (int fd : root_fds)
    if (fd >= 0) ::close(fd);
}

// In the Maildir's tmp/ for a message in cur/ or new/ when that tmp/ is a directory (it was made
// by the planner if the snapshot has it), else beside the final name.
void NameTemps(RestorePlan* plan) {
  std::map<std::pair<uint32_t, std::string>, bool>
      has_tmp;  // (root, Maildir) -> tmp/ is a directory
  for (size_t i = 0; i < plan->files.size(); i++) {
    PlannedFile& f = plan->files[i];
    f.tmp_tag = plan->tmp_base + plan->tmp_next++;
    std::string dir = Parent(f.rel());
    std::string sub =
        dir.substr(dir.find_last_of('/') == std::string::npos ? 0 : dir.find_last_of('/') + 1);
    if (sub != "cur" && sub != "new") continue;
    std::string maildir = Parent(dir), tmp = maildir.empty() ? "tmp" : maildir + "/tmp";
    auto [it, fresh] = has_tmp.try_emplace({f.root, maildir}, false);
    if (fresh) {
      int fd = fs::OpenBeneath(plan->root_fds[f.root], tmp, O_PATH | O_DIRECTORY);
      it->second = fd >= 0;
      if (fd >= 0) ::close(fd);
    }
    f.tmp_in_maildir_tmp = it->second;
  }
}

RestorePlanner::RestorePlanner(const storage::BlobReader& blobs, const RestoreOptions& opts,
                               RestoreResult* result)
    : impl_(std::make_unique<Impl>(blobs.hasher(), opts, result)) {
  RestorePlan& plan = impl_->plan();
  plan.chown = opts.numeric_owner && ::geteuid() == 0;
  std::string r = fs::RandomBytes(sizeof plan.tmp_base);
  std::memcpy(&plan.tmp_base, r.data(), sizeof plan.tmp_base);
}
RestorePlanner::~RestorePlanner() = default;
Status RestorePlanner::Begin(const storage::SnapshotMeta& meta, storage::EntryCursor& scan) {
  return impl_->Begin(meta, scan);
}
Result<bool> RestorePlanner::Add(storage::FileEntry e) { return impl_->Add(std::move(e)); }
RestorePlan& RestorePlanner::plan() { return impl_->plan(); }
void RestorePlanner::EndBatch(const std::function<bool(size_t)>& restored) {
  impl_->EndBatch(restored);
}

void FinishDirsAndLinks(const RestorePlan& plan, const RestoreOptions& opts,
                        RestoreResult* result) {
  for (const auto& l : plan.links) {
    std::string name;
    int pfd = storage::fs::OpenParentBeneath(plan.root_fds[l.root], l.rel(), &name);
    if (pfd < 0) continue;
    if (plan.chown) ::fchownat(pfd, name.c_str(), l.entry.uid, l.entry.gid, AT_SYMLINK_NOFOLLOW);
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = l.entry.mtime_ns / 1000000000;
    ts[0].tv_nsec = ts[1].tv_nsec = l.entry.mtime_ns % 1000000000;
    ::utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    ::close(pfd);
  }
  for (auto it = plan.dirs.rbegin(); it != plan.dirs.rend(); ++it) {
    std::string rel = it->rel();
    int fd = rel.empty()
                 ? ::dup(plan.root_fds[it->root])
                 : storage::fs::OpenBeneath(plan.root_fds[it->root], rel, O_RDONLY | O_DIRECTORY);
    std::string path = HostPath(plan, it->root, rel);
    if (fd < 0) {
      result->problems.push_back({it->entry.path, Err("cannot open restored directory")});
      continue;
    }
    Status st = ApplyMeta(fd, it->entry, plan, path);
    if (!st.ok()) result->problems.push_back({it->entry.path, st.message()});
    ::close(fd);
  }
}

namespace {

// Removes `name` in `dirfd` (recursively for a directory), never following a symlink.
void RemoveTree(int dirfd, const std::string& name) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ::unlinkat(dirfd, name.c_str(), 0);
    return;
  }
  (void)fs::RemoveBelow(fd, name);  // what stays is found by the caller's listing of removals
  ::close(fd);
  ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
}

void RemoveExtrasIn(const RestorePlan& plan, size_t root, int dirfd, const std::string& rel,
                    const RestoreOptions& opts, RestoreResult* result) {
  int fd = rel.empty() ? ::dup(dirfd)
                       : ::openat(dirfd, rel.substr(rel.find_last_of('/') + 1).c_str(),
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  std::vector<std::pair<std::string, bool>> kids;
  while (struct dirent* de = ::readdir(d))
    if (std::strcmp(de->d_name, ".") && std::strcmp(de->d_name, ".."))
      kids.emplace_back(de->d_name, de->d_type == DT_DIR);
  for (const auto& [name, is_dir] : kids) {
    std::string child = rel.empty() ? name : rel + "/" + name;
    std::string snap_path = plan.sources[root] + "/" + child;
    bool in_scope = Included(snap_path, opts.includes);
    if (!plan.keep[root].count(child)) {
      if (!in_scope) continue;  // an ancestor of an --include path: leave its other children
      bool under_include = opts.includes.empty();
      for (const auto& i : opts.includes)
        under_include |= snap_path.size() > i.size() && snap_path.compare(0, i.size(), i) == 0;
      if (!under_include) continue;
      result->removed.push_back(HostPath(plan, root, child));
      if (!opts.dry_run) RemoveTree(::dirfd(d), name);
    } else if (is_dir) {
      RemoveExtrasIn(plan, root, ::dirfd(d), child, opts, result);
    }
  }
  ::closedir(d);
}

}  // namespace

void RemoveExtras(const RestorePlan& plan, const RestoreOptions& opts, RestoreResult* result) {
  for (size_t r = 0; r < plan.root_fds.size(); r++)
    if (plan.root_fds[r] >= 0) RemoveExtrasIn(plan, r, plan.root_fds[r], "", opts, result);
}

void ReportBatch(const RestorePlan& plan, RestoreResult* result, const RestoreOptions& opts) {
  for (const auto& f : plan.files) {
    if (!f.write) continue;
    result->stats.files_written++;
    result->stats.bytes_written += f.entry->size;
    if (opts.dry_run) result->written.push_back(HostPath(plan, f.root, f.rel()));
  }
  for (const auto& h : plan.hard_links) {
    result->stats.files_written++;
    if (opts.dry_run) result->written.push_back(HostPath(plan, h.root, h.rel()));
  }
}

void FinishPlanReport(const RestorePlan& plan, RestoreResult* result) {
  result->stats.files_failed += plan.failed;
  for (auto& [path, msg] : plan.attr_problems->list)
    result->problems.push_back({path, std::move(msg)});
  plan.attr_problems->list.clear();
  result->stats.files_unchanged = plan.unchanged;
  result->stats.files_conflict = plan.conflicts;
  result->stats.dovecot_files_left = plan.dovecot_left;
  result->stats.dirs_created = plan.dirs_created;
  result->stats.symlinks_created = plan.links_created;
}

}  // namespace mv::agent

namespace mv::agent {

std::string PlannedHardLink::target_rel() const {
  return entry->link_target.substr(rel_offset);  // the same source, so the same prefix
}

namespace {

// The fallback of a hard link that cannot be made: a copy of the restored first name.
Status CopyRestored(const RestorePlan& plan, const PlannedHardLink& h, const std::string& from_rel,
                    bool chown) {
  int rfd = plan.root_fds[h.root];
  std::string to = HostPath(plan, h.root, h.rel());
  int in = fs::OpenBeneath(rfd, from_rel, O_RDONLY);
  if (in < 0) return Status::FromErrno(errno, "open", HostPath(plan, h.root, from_rel));
  int out = fs::OpenBeneath(rfd, h.rel(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return Status::FromErrno(err, "create", to);
  }
  Status st;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) st = Status::FromErrno(errno, "read", HostPath(plan, h.root, from_rel));
      break;
    }
    st = fs::WriteAll(out, buf.data(), static_cast<size_t>(n), to);
    if (!st.ok()) break;
  }
  if (st.ok()) st = ApplyMeta(out, *h.entry, plan, to);
  ::close(in);
  ::close(out);
  return st;
}

}  // namespace

void LinkHardLinks(const RestorePlan& plan, const std::function<bool(size_t)>& restored,
                   RestoreResult* result) {
  for (const auto& h : plan.hard_links) {
    std::string target_rel = h.target_rel();
    bool ok = h.target == PlannedHardLink::kEarlier
                  ? h.target_restored
                  : plan.files[h.target].write && restored(h.target);
    if (!ok) {
      result->problems.push_back({h.entry->path, "not restored: it is a hard link of " +
                                                     h.entry->link_target +
                                                     ", which was not restored (see above)"});
      continue;
    }
    std::string from_name, to_name, rel = h.rel();
    int from = fs::OpenParentBeneath(plan.root_fds[h.root], target_rel, &from_name);
    int to = fs::OpenParentBeneath(plan.root_fds[h.root], rel, &to_name);
    int rc = from >= 0 && to >= 0 ? ::linkat(from, from_name.c_str(), to, to_name.c_str(), 0) : -1;
    int err = errno;
    if (from >= 0) ::close(from);
    if (to >= 0) ::close(to);
    if (rc == 0) continue;
    Status st = CopyRestored(plan, h, target_rel, plan.chown);
    result->problems.push_back(
        {h.entry->path, st.ok() ? "restored as a separate copy: the hard link to " +
                                      HostPath(plan, h.root, target_rel) +
                                      " failed: " + std::strerror(err)
                                : st.message()});
  }
}

}  // namespace mv::agent
