#include "verify/tree_scan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "verify/maildir.h"

namespace mv::verify {
using storage::FileEntry;
using storage::FileType;

Inventory InventoryOfEntries(const std::vector<FileEntry>& files) {
  Inventory inv;
  inv.census = CensusOfEntries(files);
  MaildirIndex idx(files);
  for (const auto& f : files) {
    if (f.type != FileType::kRegular) continue;
    std::string dir = idx.MaildirOfMessage(f.path);
    if (dir.empty()) continue;
    MessageRecord m;
    MaildirPlace place = idx.Place(dir, &m.source);
    m.mailbox = place.mailbox;
    m.folder = place.folder;
    m.unique = std::string(UniqueName(f.path.substr(f.path.find_last_of('/') + 1)));
    m.path = f.path;
    m.size = f.size;
    m.content = f.content;
    inv.messages.push_back(std::move(m));
  }
  std::sort(inv.messages.begin(), inv.messages.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return inv;
}

Result<storage::BlobId> HashFile(const std::string& path, const storage::KeyedHasher& hasher) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  storage::KeyedHasher::Stream h(hasher);
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = Status::FromErrno(errno, "read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    h.Update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return h.Final();
}

Result<ScannedTree> ScanTree(const std::string& source, const std::string& root,
                             const storage::KeyedHasher& hasher, const ScanOptions& opts) {
  namespace stdfs = std::filesystem;
  struct stat rs;
  if (::lstat(root.c_str(), &rs) != 0 || !S_ISDIR(rs.st_mode))
    return Status::NotFound("not a directory: cannot read source '" + source + "' here", root);
  ScannedTree out;
  std::vector<FileEntry> entries;
  std::error_code ec;
  stdfs::recursive_directory_iterator it(root, stdfs::directory_options::none, ec), end;
  if (ec) return Status::IOError("cannot list directory: " + ec.message(), root);
  for (; it != end; it.increment(ec)) {
    if (ec) {
      out.problems.push_back(root + ": " + ec.message());
      break;
    }
    std::string full = it->path().string();
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) {
      out.problems.push_back(full + ": " + std::strerror(errno));
      continue;
    }
    FileEntry e;
    e.path = source + "/" + full.substr(root.size() + 1);
    if (S_ISDIR(st.st_mode)) e.type = FileType::kDirectory;
    else if (S_ISREG(st.st_mode)) e.type = FileType::kRegular;
    else continue;   // symlinks and special files are not mail
    e.size = static_cast<uint64_t>(st.st_size);
    entries.push_back(std::move(e));
  }
  MaildirIndex idx(entries);
  // A file that cannot be hashed (vanished: a live message moved from new/ to cur/ meanwhile) is
  // left out rather than counted with a wrong hash, and reported.
  std::vector<FileEntry> readable;
  for (auto& e : entries) {
    if (e.type == FileType::kRegular) {
      bool message = !idx.MaildirOfMessage(e.path).empty();
      if (message || opts.hash_all_files) {
        auto h = HashFile(root + e.path.substr(source.size()), hasher);
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
  out.inventory = InventoryOfEntries(readable);
  return out;
}

}  // namespace mv::verify
