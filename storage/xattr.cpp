#include "storage/xattr.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mv::storage {
namespace {

// "/proc/self/fd/N/name" names `name` in directory fd N with no lookup of the directory's own
// path (it cannot be redirected by a rename or symlink swap above it). Without /proc mounted
// there is no such path and xattrs are read through nothing: reported by the caller as none.
std::string ProcPath(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
}

// The file has no attributes to read (vanished, or its filesystem has no xattrs).
bool NoXattrs(int err) { return err == ENOTSUP || err == ENOENT || err == ENODATA; }

}  // namespace

bool KeptXattr(std::string_view name) {
  return name.starts_with("user.") || name == "system.posix_acl_access" ||
         name == "system.posix_acl_default";
}

std::vector<Xattr> ReadXattrs(int dirfd, const std::string& name, uint64_t* not_kept) {
  std::vector<Xattr> out;
  std::string p = ProcPath(dirfd, name);
  char small[256];
  std::string names;
  ssize_t n = ::llistxattr(p.c_str(), small, sizeof small);
  if (n < 0 && errno == ERANGE) {
    n = ::llistxattr(p.c_str(), nullptr, 0);
    if (n > 0) {
      names.resize(static_cast<size_t>(n));
      n = ::llistxattr(p.c_str(), names.data(), names.size());
    }
  } else if (n > 0) {
    names.assign(small, static_cast<size_t>(n));
  }
  if (n < 0) {
    if (!NoXattrs(errno)) (*not_kept)++;  // unreadable (permissions): counted, not kept
    return out;
  }
  names.resize(static_cast<size_t>(n));
  for (size_t pos = 0; pos < names.size();) {
    std::string attr(names.c_str() + pos);
    pos += attr.size() + 1;
    if (attr.empty()) continue;
    if (!KeptXattr(attr)) {
      (*not_kept)++;
      continue;
    }
    std::string value;
    for (;;) {
      ssize_t len = ::lgetxattr(p.c_str(), attr.c_str(), nullptr, 0);
      if (len < 0) {
        if (!NoXattrs(errno)) (*not_kept)++;
        break;
      }
      value.resize(static_cast<size_t>(len));
      len = ::lgetxattr(p.c_str(), attr.c_str(), value.data(), value.size());
      if (len < 0 && errno == ERANGE) continue;  // grew in between
      if (len >= 0) {
        value.resize(static_cast<size_t>(len));
        out.push_back({std::move(attr), std::move(value)});
      }
      break;
    }
  }
  return out;
}

Status WriteXattrs(int fd, const std::vector<Xattr>& xattrs, const std::string& path) {
  Status first;
  for (const auto& x : xattrs) {
    if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) == 0) continue;
    int err = errno;
    if (first.ok())
      first = Status::FromErrno(
          err,
          "set extended attribute " + x.name +
              (err == ENOTSUP ? " (the target filesystem does not support it)" : ""),
          path);
  }
  return first;
}

}  // namespace mv::storage
