#include "storage/mailfiles/sqlite_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace mv::mailfiles {

bool HasSqliteHeader(std::string_view first_bytes) {
  return first_bytes.size() >= kSqliteHeader.size() &&
         first_bytes.substr(0, kSqliteHeader.size()) == kSqliteHeader;
}

bool LooksLikeSqlite(const std::string& path) {
  // O_NONBLOCK: a fifo of that name must not hang the caller (its open waits for a writer).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  char buf[16];
  ssize_t n = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? ::pread(fd, buf, sizeof buf, 0) : -1;
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof buf) &&
         HasSqliteHeader(std::string_view(buf, sizeof buf));
}

bool HeaderSaysWal(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char b[20] = {};
  ssize_t n = ::pread(fd, b, sizeof b, 0);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof b) && b[18] == 2;
}

bool DirectoryWritable(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  return ::access(dir.c_str(), W_OK) == 0;
}

bool WalHasContent(const std::string& path) {
  struct stat wal;
  return ::stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0;
}

std::string ImmutableUri(const std::string& path) {
  std::string out = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "?immutable=1";
}

bool IsSqliteSideFile(std::string_view name) {
  for (std::string_view suffix : {"-wal", "-shm", "-journal"}) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix)
      return true;
  }
  return false;
}

bool IsSqliteSideFileOf(const std::string& dir, std::string_view name) {
  for (std::string_view suffix : {"-wal", "-shm", "-journal"}) {
    if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix)
      continue;
    std::string db = dir + "/" + std::string(name.substr(0, name.size() - suffix.size()));
    return LooksLikeSqlite(db);
  }
  return false;
}

}  // namespace mv::mailfiles
