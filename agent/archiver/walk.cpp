#include "agent/archiver/walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>
#include <tuple>

#include "hooks/sqlite_backup.h"
#include "storage/fs.h"
#include "storage/xattr.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

void FillStat(const struct stat& st, FileEntry* e) {
  e->mode = st.st_mode & 07777;
  e->uid = st.st_uid;
  e->gid = st.st_gid;
  e->size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  e->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  e->ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  e->dev = st.st_dev;
  e->ino = st.st_ino;
}

std::string Cat(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

class Walker {
 public:
  Walker(const SourceSpec& src, uint16_t ix, WalkOutput* out)
      : src_(src), ix_(ix), out_(out), top_(out) {}

  void Push(FileEntry&& e, bool message) {
    out_->entries.push_back(std::move(e));
    out_->maildir_message.push_back(message ? 1 : 0);
    out_->source.push_back(ix_);
  }

  // Adds `rel` (a directory, symlink or file) and, for a directory, everything below it.
  void Visit(int parent_fd, const std::string& name, const std::string& rel, bool parent_is_maildir,
             bool in_message_dir) {
    struct stat st;
    int err = ::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ? errno : 0;
    VisitStat(parent_fd, name, rel, parent_is_maildir, in_message_dir, st, err);
  }

  // Visit() with the entry's lstat already taken (`err`: its errno, or 0).
  void VisitStat(int parent_fd, const std::string& name, const std::string& rel,
                 bool parent_is_maildir, bool in_message_dir, const struct stat& st, int err) {
    if (err != 0) {
      Problem(rel, err == ENOENT
                       ? "vanished during the walk (deleted while backing up); not in this snapshot"
                       : std::string("cannot stat: ") + std::strerror(err));
      return;
    }
    FileEntry w;
    w.path = rel.empty() ? src_.name : src_.name + "/" + rel;
    FillStat(st, &w);
    if (S_ISREG(st.st_mode)) {
      w.type = FileType::kRegular;
      // Another name of this inode may follow: the backup links them (FORMAT.md §7).
      if (st.st_nlink > 1) w.flags |= storage::kFlagHardLink;
      // Its xattrs are left to the consumer (WalkOutput): most files take the parent's.
      Push(std::move(w), in_message_dir);
    } else if (S_ISLNK(st.st_mode)) {
      w.type = FileType::kSymlink;
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(parent_fd, name.c_str(), target.data(), target.size());
      if (n < 0) {
        Problem(rel, std::string("cannot read symlink: ") + std::strerror(errno));
        return;
      }
      target.resize(static_cast<size_t>(n));
      w.link_target = std::move(target);
      Push(std::move(w), false);
    } else if (S_ISDIR(st.st_mode)) {
      w.type = FileType::kDirectory;
      w.xattrs = storage::ReadXattrs(parent_fd, name, &top_->xattrs_not_kept);
      Push(std::move(w), false);
      WalkDir(parent_fd, name, rel, parent_is_maildir);
    } else {
      const char* kind = S_ISSOCK(st.st_mode) ? "socket" : S_ISFIFO(st.st_mode) ? "fifo" : "device";
      out_->skipped.push_back(
          {HostPath(rel), std::string("skipped: a ") + kind + " cannot be backed up"});
    }
  }

  std::string HostPath(const std::string& rel) const {
    return rel.empty() ? src_.path : src_.path + "/" + rel;
  }

 private:
  void Problem(const std::string& rel, std::string msg) {
    out_->problems.push_back({HostPath(rel), std::move(msg)});
  }

  void WalkDir(int parent_fd, const std::string& name, const std::string& rel,
               bool parent_is_maildir) {
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      Problem(rel, std::string("cannot open directory: ") + std::strerror(errno) +
                       " (its contents are not in this snapshot; check permissions)");
      return;
    }
    DIR* d = ::fdopendir(fd);
    std::vector<std::pair<std::string, unsigned char>> kids;
    while (struct dirent* e = ::readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      kids.emplace_back(e->d_name, e->d_type);
    }
    std::sort(kids.begin(), kids.end());
    bool has[3] = {false, false, false};
    for (const auto& [n, t] : kids) {
      bool dir = t == DT_DIR || t == DT_UNKNOWN;
      if (dir && n == "cur") has[0] = true;
      if (dir && n == "new") has[1] = true;
      if (dir && n == "tmp") has[2] = true;
    }
    bool is_maildir = mailfiles::IsMaildir(has[0], has[1], has[2]);
    // Messages only ever move from new/ to cur/, so new/ is listed before cur/: a message a
    // client moves in between is then seen in cur/, never missed by both listings. The entries
    // still go out in sorted order (new/'s wait in `pending_new` until its turn).
    WalkOutput pending_new;
    bool new_listed = false;
    std::string dir_host = HostPath(rel);
    for (const auto& [n, t] : kids) {
      std::string child_rel = Cat(rel, n);
      if (mailfiles::IsSqliteSideFile(n) && mailfiles::IsSqliteSideFileOf(dir_host, n)) continue;
      if (is_maildir && n == "tmp") {
        // Keep tmp/ itself (dovecot expects it) but not its contents: half-delivered mail.
        struct stat st;
        if (::fstatat(fd, "tmp", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
          FileEntry w;
          w.path = src_.name + "/" + child_rel;
          w.type = FileType::kDirectory;
          FillStat(st, &w);
          Push(std::move(w), false);
        }
        continue;
      }
      if (is_maildir && n == "cur") {
        WalkOutput* out = out_;
        out_ = &pending_new;
        VisitMessageDir(fd, "new", Cat(rel, "new"));
        out_ = out;
        new_listed = true;
        size_t cur_begin = out_->entries.size();
        VisitMessageDir(fd, n, child_rel);
        DropMovedToCur(&pending_new, cur_begin);
        continue;
      }
      if (is_maildir && n == "new") {
        if (!new_listed) {
          VisitMessageDir(fd, n, child_rel);
          continue;
        }
        Append(std::move(pending_new));
        continue;
      }
      Visit(fd, n, child_rel, is_maildir, false);
      if (top_->stop) break;
    }
    ::closedir(d);
    MaybeFlush();
  }

  // Hands what was listed to the consumer, except while new/ waits for cur/ or inside a
  // message directory (DropMovedToCur looks back at cur/'s entries).
  void MaybeFlush() {
    if (hold_ == 0 && out_ == top_ && top_->on_batch && !top_->entries.empty())
      top_->on_batch(*top_);
  }

  // A message listed in new/ and then, moved by a client, in cur/ too is kept once: as in cur/.
  // It is the same message only if it is the same file (dev, ino): a rename keeps the inode. A
  // different file that merely shares the unique name (a copy or `tar -x` into a live Maildir
  // makes such pairs; Dovecot renames one of them later) is another message and is kept.
  void DropMovedToCur(WalkOutput* pending_new, size_t cur_begin) {
    using Key = std::tuple<std::string_view, uint64_t, uint64_t>;  // unique name, dev, ino
    auto key = [](const FileEntry& e) {
      return Key{mailfiles::UniqueName(BaseName(e.path)), e.dev, e.ino};
    };
    std::set<Key> fresh;
    for (size_t i = 0; i < pending_new->entries.size(); i++)
      if (pending_new->maildir_message[i]) fresh.insert(key(pending_new->entries[i]));
    if (fresh.empty()) return;
    std::set<Key> moved;
    for (size_t i = cur_begin; i < out_->entries.size(); i++)
      if (out_->maildir_message[i] && fresh.count(key(out_->entries[i])))
        moved.insert(key(out_->entries[i]));
    for (size_t i = 0; i < pending_new->entries.size(); i++)
      if (pending_new->maildir_message[i] && moved.count(key(pending_new->entries[i])))
        pending_new->maildir_message[i] = 2;  // dropped by Append
  }

  void Append(WalkOutput&& o) {
    for (size_t i = 0; i < o.entries.size(); i++) {
      if (o.maildir_message[i] == 2) continue;
      out_->entries.push_back(std::move(o.entries[i]));
      out_->maildir_message.push_back(o.maildir_message[i]);
      out_->source.push_back(o.source[i]);
    }
    for (auto& p : o.problems) out_->problems.push_back(std::move(p));
    for (auto& p : o.skipped) out_->skipped.push_back(std::move(p));
  }

  static std::string_view BaseName(std::string_view p) { return p.substr(p.find_last_of('/') + 1); }

  // cur/ and new/: files in them are messages.
  void VisitMessageDir(int parent_fd, const std::string& name, const std::string& rel) {
    hold_++;
    VisitMessageDirHeld(parent_fd, name, rel);
    hold_--;
  }
  void VisitMessageDirHeld(int parent_fd, const std::string& name, const std::string& rel) {
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      Visit(parent_fd, name, rel, false, false);
      return;
    }
    FileEntry w;
    w.path = src_.name + "/" + rel;
    w.type = FileType::kDirectory;
    FillStat(st, &w);
    w.xattrs = storage::ReadXattrs(parent_fd, name, &top_->xattrs_not_kept);
    Push(std::move(w), false);
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      Problem(rel, std::string("cannot open directory: ") + std::strerror(errno));
      return;
    }
    DIR* d = ::fdopendir(fd);
    std::vector<std::string> kids;
    while (struct dirent* e = ::readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      kids.emplace_back(e->d_name);
    }
    std::sort(kids.begin(), kids.end());
    std::vector<struct stat> sts(kids.size());
    std::vector<int> errs(kids.size());
    StatAll(fd, kids, &sts, &errs);
    for (size_t i = 0; i < kids.size(); i++)
      VisitStat(fd, kids[i], Cat(rel, kids[i]), false, true, sts[i], errs[i]);
    ::closedir(d);
  }

  // lstat of every name in directory `fd`. A message directory's thousands of lstat calls are
  // most of a no-op backup's time; a large one is split with a second thread.
  static void StatAll(int fd, const std::vector<std::string>& names, std::vector<struct stat>* sts,
                      std::vector<int>* errs) {
    auto range = [&](size_t from, size_t to) {
      for (size_t i = from; i < to; i++)
        (*errs)[i] =
            ::fstatat(fd, names[i].c_str(), &(*sts)[i], AT_SYMLINK_NOFOLLOW) != 0 ? errno : 0;
    };
    constexpr size_t kSplitAt = 64;  // below this a thread costs more than it saves (measured)
    if (names.size() < kSplitAt) return range(0, names.size());
    size_t half = names.size() / 2;
    std::thread other(range, half, names.size());
    range(0, half);
    other.join();
  }

  const SourceSpec& src_;
  uint16_t ix_;
  WalkOutput* out_;
  WalkOutput* top_;  // the caller's output (out_ is a side buffer while new/ waits)
  int hold_ = 0;     // inside a message directory: no batch is handed out
};

}  // namespace

Status WalkSource(const SourceSpec& src, uint16_t source_ix, WalkOutput* out) {
  struct stat st;
  if (::stat(src.path.c_str(), &st) != 0)
    return Status::FromErrno(errno, "source '" + src.name + "' cannot be read", src.path);
  // Not a directory is an error like a missing one (exit 1, not a usage error): the command line
  // is well-formed, the path just does not hold what it must.
  if (!S_ISDIR(st.st_mode))
    return Status::NotFound("source '" + src.name + "' is not a directory; give a directory",
                            src.path);
  int root = ::open(src.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Status::FromErrno(errno, "open source", src.path);
  Walker w(src, source_ix, out);
  // The source root itself is entry "<name>" (its mode and owner are restored too).
  if (src.only_paths.empty()) {
    w.Visit(root, ".", "", false, false);
  } else {
    // Selected subtrees only: their ancestors are recorded as directories, without contents.
    FileEntry r;
    r.path = src.name;
    r.type = storage::FileType::kDirectory;
    FillStat(st, &r);
    w.Push(std::move(r), false);
    std::vector<std::string> paths = src.only_paths;
    std::sort(paths.begin(), paths.end());
    std::vector<std::string> done;
    for (const auto& p : paths) {
      std::string acc;
      size_t start = 0;
      while (true) {
        size_t slash = p.find('/', start);
        std::string comp =
            p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        std::string next = acc.empty() ? comp : acc + "/" + comp;
        if (slash == std::string::npos) {
          int pfd = acc.empty() ? ::dup(root)
                                : storage::fs::OpenBeneath(root, acc, O_RDONLY | O_DIRECTORY);
          if (pfd >= 0) {
            w.Visit(pfd, comp, next, false, false);
            ::close(pfd);
          } else {
            out->problems.push_back({w.HostPath(next), "selected path cannot be opened: " +
                                                           std::string(std::strerror(errno))});
          }
          break;
        }
        if (std::find(done.begin(), done.end(), next) == done.end()) {
          struct stat ds;
          std::string host = w.HostPath(next);
          if (::lstat(host.c_str(), &ds) == 0 && S_ISDIR(ds.st_mode)) {
            FileEntry a;
            a.path = src.name + "/" + next;
            a.type = storage::FileType::kDirectory;
            FillStat(ds, &a);
            w.Push(std::move(a), false);
            done.push_back(next);
          }
        }
        acc = next;
        start = slash + 1;
      }
    }
  }
  ::close(root);
  return Status::Ok();
}

}  // namespace mv::agent
