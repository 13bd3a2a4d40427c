#include "agent/walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "hooks/sqlite_backup.h"
#include "storage/fs.h"
#include "verify/maildir.h"

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
  Walker(const SourceSpec& src, uint16_t ix, WalkOutput* out) : src_(src), ix_(ix), out_(out) {}

  void Push(FileEntry&& e, bool message) {
    out_->entries.push_back(std::move(e));
    out_->maildir_message.push_back(message ? 1 : 0);
    out_->source.push_back(ix_);
  }

  // Adds `rel` (a directory, symlink or file) and, for a directory, everything below it.
  void Visit(int parent_fd, const std::string& name, const std::string& rel, bool parent_is_maildir,
             bool in_message_dir) {
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      Problem(rel, errno == ENOENT ? "vanished during the walk (deleted while backing up); not in this snapshot"
                                   : std::string("cannot stat: ") + std::strerror(errno));
      return;
    }
    FileEntry w;
    w.path = rel.empty() ? src_.name : src_.name + "/" + rel;
    FillStat(st, &w);
    if (S_ISREG(st.st_mode)) {
      w.type = FileType::kRegular;
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
      Push(std::move(w), false);
      WalkDir(parent_fd, name, rel, parent_is_maildir);
    } else {
      const char* kind = S_ISSOCK(st.st_mode) ? "socket" : S_ISFIFO(st.st_mode) ? "fifo" : "device";
      out_->skipped.push_back({HostPath(rel), std::string("skipped: a ") + kind + " cannot be backed up"});
    }
  }

  std::string HostPath(const std::string& rel) const { return rel.empty() ? src_.path : src_.path + "/" + rel; }

 private:
  void Problem(const std::string& rel, std::string msg) { out_->problems.push_back({HostPath(rel), std::move(msg)}); }

  void WalkDir(int parent_fd, const std::string& name, const std::string& rel, bool parent_is_maildir) {
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
    bool is_maildir = verify::IsMaildir(has[0], has[1], has[2]);
    size_t cur_begin = 0, cur_end = 0;   // cur/'s entries, itself first
    std::string dir_host = HostPath(rel);
    for (const auto& [n, t] : kids) {
      std::string child_rel = Cat(rel, n);
      if (hooks::IsSqliteSideFile(n) && hooks::IsSqliteSideFileOf(dir_host, n)) continue;
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
      bool message_dir = is_maildir && (n == "cur" || n == "new");
      if (message_dir) {
        if (n == "cur") cur_begin = out_->entries.size();
        VisitMessageDir(fd, n, child_rel);
        if (n == "cur") cur_end = out_->entries.size();
        continue;
      }
      Visit(fd, n, child_rel, is_maildir, false);
    }
    if (is_maildir && cur_end > cur_begin) AddMovedIntoCur(fd, rel, cur_begin, cur_end);
    ::closedir(d);
  }

  // cur/ is listed before new/. A client opening the folder in between moves messages from new/
  // to cur/, and they are in neither listing: cur/ is listed again, and messages whose unique
  // name was not walked are added to cur/'s entries [begin, end), in manifest order.
  void AddMovedIntoCur(int maildir_fd, const std::string& rel, size_t begin, size_t end) {
    auto& v = out_->entries;
    std::unordered_set<std::string> seen;
    for (size_t i = begin + 1; i < v.size(); i++) {
      if (i < end && v[i].type == FileType::kDirectory) return;   // not a plain cur/: left alone
      if (out_->maildir_message[i]) seen.emplace(verify::UniqueName(BaseName(v[i].path)));
    }
    int fd = ::openat(maildir_fd, "cur", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    DIR* d = ::fdopendir(fd);
    std::vector<std::string> late;
    while (struct dirent* e = ::readdir(d))
      if (e->d_name[0] != '.' && !seen.count(std::string(verify::UniqueName(e->d_name)))) late.emplace_back(e->d_name);
    std::sort(late.begin(), late.end());
    for (const auto& n : late) {
      struct stat st;
      if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      FileEntry w;
      w.path = src_.name + "/" + Cat(Cat(rel, "cur"), n);
      w.type = FileType::kRegular;
      FillStat(st, &w);
      size_t at = begin + 1;
      while (at < end && BaseName(v[at].path) < n) at++;
      v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), std::move(w));
      out_->maildir_message.insert(out_->maildir_message.begin() + static_cast<std::ptrdiff_t>(at), 1);
      out_->source.insert(out_->source.begin() + static_cast<std::ptrdiff_t>(at), ix_);
      end++;
    }
    ::closedir(d);
  }

  static std::string_view BaseName(std::string_view p) { return p.substr(p.find_last_of('/') + 1); }

  // cur/ and new/: files in them are messages.
  void VisitMessageDir(int parent_fd, const std::string& name, const std::string& rel) {
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      Visit(parent_fd, name, rel, false, false);
      return;
    }
    FileEntry w;
    w.path = src_.name + "/" + rel;
    w.type = FileType::kDirectory;
    FillStat(st, &w);
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
    for (const auto& n : kids) Visit(fd, n, Cat(rel, n), false, true);
    ::closedir(d);
  }

  const SourceSpec& src_;
  uint16_t ix_;
  WalkOutput* out_;
};

}  // namespace

Status WalkSource(const SourceSpec& src, uint16_t source_ix, WalkOutput* out) {
  struct stat st;
  if (::stat(src.path.c_str(), &st) != 0)
    return Status::FromErrno(errno, "source '" + src.name + "' cannot be read", src.path);
  if (!S_ISDIR(st.st_mode))
    return Status::Invalid("source '" + src.name + "' is not a directory; give a directory", src.path);
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
        std::string comp = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        std::string next = acc.empty() ? comp : acc + "/" + comp;
        if (slash == std::string::npos) {
          int pfd = acc.empty() ? ::dup(root) : storage::fs::OpenBeneath(root, acc, O_RDONLY | O_DIRECTORY);
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
