#include "storage/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "storage/hash.h"
#include "storage/layout.h"

namespace mv::storage::fs {

std::string Join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string Dirname(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

namespace {

int OpenByComponents(int dirfd, const std::string& rel, int flags, unsigned mode) {
  int cur = dirfd;
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) break;
    std::string comp = rel.substr(start, slash - start);
    start = slash + 1;
    if (comp.empty() || comp == "." || comp == "..") {
      if (cur != dirfd) ::close(cur);
      errno = EXDEV;
      return -1;
    }
    int next = ::openat(cur, comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    if (cur != dirfd) ::close(cur);
    if (next < 0) {
      errno = err;
      return -1;
    }
    cur = next;
  }
  std::string last = rel.substr(start);
  if (last.empty() || last == "." || last == "..") {
    if (cur != dirfd) ::close(cur);
    errno = EXDEV;
    return -1;
  }
  int fd = ::openat(cur, last.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int err = errno;
  if (cur != dirfd) ::close(cur);
  errno = err;
  return fd;
}

}  // namespace

int OpenBeneath(int dirfd, const std::string& rel, int flags, unsigned mode) {
  if (rel.empty() || rel[0] == '/') {
    errno = EXDEV;
    return -1;
  }
  if (rel.size() < 4000) {
    struct open_how how = {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
    if (fd >= 0 || errno != ENOSYS) return fd;
  }
  return OpenByComponents(dirfd, rel, flags, mode);
}

int OpenParentBeneath(int dirfd, const std::string& rel, std::string* name) {
  auto slash = rel.find_last_of('/');
  *name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (name->empty() || *name == "." || *name == "..") {
    errno = EXDEV;
    return -1;
  }
  if (slash == std::string::npos) return ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  return OpenBeneath(dirfd, rel.substr(0, slash), O_PATH | O_DIRECTORY);
}

Status WriteAll(int fd, const void* data, size_t len, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write", path);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ReadExact(int fd, void* data, size_t len, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read", path);
    }
    if (n == 0) return Status::Corruption("unexpected end of file (truncated?)", path);
    p += n;
    offset += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir, Env* env) { return env->SyncDir(dir); }

Status RenameDurable(const std::string& from, const std::string& to, Env* env) {
  MV_RETURN_IF_ERROR(env->Rename(from, to));
  return env->SyncDir(Dirname(to));
}

Status WriteFileAtomic(const std::string& path, std::string_view data, Env* env) {
  std::string tmp = layout::TempNameFor(path, RandomHex(6));
  MV_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp, 0600));
  Status st = file->Append(data);
  if (st.ok()) st = file->Sync();
  Status closed = file->Close();
  if (st.ok()) st = closed;
  if (st.ok()) st = RenameDurable(tmp, path, env);
  if (!st.ok()) (void)env->RemoveFile(tmp);  // best effort: the first error is the one to report
  return st;
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0)
    out.reserve(static_cast<size_t>(st.st_size));  // one allocation
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status MakeDirs(const std::string& path, unsigned mode, Env* env) {
  if (path.empty()) return Status::Ok();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return Status::Invalid("exists and is not a directory", path);
  }
  std::string parent = Dirname(path);
  if (parent != path && parent != "." && parent != "/")
    MV_RETURN_IF_ERROR(MakeDirs(parent, mode, env));
  return env->CreateDir(path, mode);
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno(errno, "open directory", dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Status RemoveFile(const std::string& path, Env* env) { return env->RemoveFile(path); }

// Empties the directory `dfd`; `where` names it in errors. Closes nothing it did not open.
Status RemoveBelow(int dfd, const std::string& where) {
  int lfd = ::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = lfd < 0 ? nullptr : ::fdopendir(lfd);
  if (!d) {
    if (lfd >= 0) ::close(lfd);
    return Status::FromErrno(errno, "open directory", where);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  Status first;
  auto keep = [&first](Status st) {
    if (first.ok() && !st.ok()) first = std::move(st);
  };
  for (const auto& n : names) {
    int fd = ::openat(dfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      keep(RemoveBelow(fd, where + "/" + n));
      ::close(fd);
    }
    if (::unlinkat(dfd, n.c_str(), fd >= 0 ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT)
      keep(Status::FromErrno(errno, "remove", where + "/" + n));
  }
  return first;
}

Status RemoveTree(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    if (errno != ENOTDIR && errno != ELOOP) return Status::FromErrno(errno, "open directory", path);
    return RemoveFile(path);  // a file or a symlink: removed itself
  }
  Status st = RemoveBelow(fd, path);
  ::close(fd);
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT && st.ok())
    st = Status::FromErrno(errno, "remove", path);
  return st;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(out.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

std::string RandomHex(size_t nbytes) {
  std::string raw = RandomBytes(nbytes);
  return ToHex(raw.data(), raw.size());
}

}  // namespace mv::storage::fs
