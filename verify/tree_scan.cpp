#include "verify/tree_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "storage/fs.h"
#include "storage/mailfiles/maildir.h"

namespace mv::verify {
using storage::FileEntry;
using storage::FileType;

Inventory InventoryOfEntries(const std::vector<FileEntry>& files) {
  Inventory inv;
  inv.census = mailfiles::CensusOfEntries(files);
  mailfiles::MaildirIndex idx(files);
  for (const auto& f : files) {
    if (f.type != FileType::kRegular) continue;
    std::string dir = idx.MaildirOfMessage(f.path);
    if (dir.empty()) continue;
    MessageRecord m;
    mailfiles::MaildirPlace place = idx.Place(dir, &m.source);
    m.mailbox = place.mailbox;
    m.folder = place.folder;
    m.unique = std::string(mailfiles::UniqueName(f.path.substr(f.path.find_last_of('/') + 1)));
    m.path = f.path;
    m.size = f.size;
    m.content = f.content;
    inv.messages.push_back(std::move(m));
  }
  std::sort(inv.messages.begin(), inv.messages.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return inv;
}

namespace {

Result<storage::BlobId> HashFd(int fd, const std::string& path,
                               const storage::KeyedHasher& hasher) {
  storage::KeyedHasher::Stream h(hasher);
  // One buffer per thread: zeroing a fresh 1 MiB per file cost more than hashing small messages.
  thread_local std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read", path);
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  return h.Final();
}

// Keyed hash of `rel` beneath `root_fd` (no symlink followed; any depth, PATH_MAX or not).
// `path` names it in errors.
Result<storage::BlobId> HashBeneath(int root_fd, const std::string& rel, const std::string& path,
                                    const storage::KeyedHasher& hasher) {
  int fd = storage::fs::OpenBeneath(root_fd, rel, O_RDONLY | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = storage::fs::OpenBeneath(root_fd, rel, O_RDONLY);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  auto h = HashFd(fd, path, hasher);
  ::close(fd);
  return h;
}

// The walk of one tree by directory file descriptors: each directory is opened relative to its
// parent (openat, O_NOFOLLOW), so no path longer than one name is ever handed to the kernel and
// trees deeper than PATH_MAX are read whole. Holds one fd per level of the current branch.
class TreeWalker {
 public:
  TreeWalker(const std::string& source, const std::string& root, ScannedTree* out)
      : source_(source), root_(root), out_(out) {}
  std::vector<FileEntry> entries;

  // Lists directory `dfd`, which is `rel` ("" for the root) below the root.
  void Dir(int dfd, const std::string& rel) {
    std::vector<std::string> names;
    if (!ListNames(dfd, &names))
      return Problem(rel, std::string("cannot list directory: ") + std::strerror(errno));
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        Problem(child, std::strerror(errno));
        continue;
      }
      if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        continue;  // symlinks and special files are not mail
      FileEntry e;
      e.path = source_ + "/" + child;
      e.type = S_ISDIR(st.st_mode) ? FileType::kDirectory : FileType::kRegular;
      e.size = static_cast<uint64_t>(st.st_size);
      entries.push_back(std::move(e));
      if (!S_ISDIR(st.st_mode)) continue;
      int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        Problem(child, std::string("cannot open directory: ") + std::strerror(errno));
        continue;
      }
      Dir(fd, child);
      ::close(fd);
    }
  }

 private:
  void Problem(const std::string& rel, const std::string& why) {
    out_->problems.push_back((rel.empty() ? root_ : root_ + "/" + rel) + ": " + why);
  }

  const std::string& source_;
  const std::string& root_;
  ScannedTree* out_;
};

}  // namespace

bool ListNames(int dfd, std::vector<std::string>* names) {
  int lfd = ::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = lfd < 0 ? nullptr : ::fdopendir(lfd);
  if (!d) {
    int err = errno;
    if (lfd >= 0) ::close(lfd);
    errno = err;
    return false;
  }
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names->emplace_back(e->d_name);
  }
  int err = errno;
  ::closedir(d);
  errno = err;
  return err == 0;
}

Result<storage::BlobId> HashAt(int dfd, const std::string& name, const std::string& path,
                               const storage::KeyedHasher& hasher) {
  const int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::openat(dfd, name.c_str(), flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dfd, name.c_str(), flags);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  auto h = HashFd(fd, path, hasher);
  ::close(fd);
  return h;
}

Result<int> OpenTreeRoot(const std::string& source, const std::string& root) {
  int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd >= 0) return root_fd;
  if (errno == ENOENT || errno == ENOTDIR)
    return Status::NotFound("not a directory: cannot read source '" + source + "' here", root);
  return Status::FromErrno(errno, "cannot open the directory of source '" + source + "'", root);
}

Result<storage::BlobId> HashFile(const std::string& path, const storage::KeyedHasher& hasher) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  auto h = HashFd(fd, path, hasher);
  ::close(fd);
  return h;
}

Result<ScannedTree> ScanTree(const std::string& source, const std::string& root,
                             const storage::KeyedHasher& hasher, const ScanOptions& opts) {
  // The root itself may be a symlink to the directory, as the backup walk accepts it.
  MV_ASSIGN_OR_RETURN(int root_fd, OpenTreeRoot(source, root));
  ScannedTree out;
  TreeWalker walker(source, root, &out);
  walker.Dir(root_fd, "");
  mailfiles::MaildirIndex idx(walker.entries);
  // A file that cannot be hashed (vanished: a live message moved from new/ to cur/ meanwhile) is
  // left out rather than counted with a wrong hash, and reported.
  std::vector<FileEntry> readable;
  for (auto& e : walker.entries) {
    if (e.type == FileType::kRegular) {
      bool message = !idx.MaildirOfMessage(e.path).empty();
      if (message || opts.hash_all_files) {
        std::string rel = e.path.substr(source.size() + 1);
        auto h = HashBeneath(root_fd, rel, root + "/" + rel, hasher);
        if (!h.ok()) {
          out.problems.push_back(h.status().ToString());
          continue;
        }
        e.content = *h;
      }
      out.files[e.path] = {e.size, e.content};
    }
    readable.push_back(std::move(e));
  }
  ::close(root_fd);
  out.inventory = InventoryOfEntries(readable);
  return out;
}

}  // namespace mv::verify
