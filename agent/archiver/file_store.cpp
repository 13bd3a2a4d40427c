#include "agent/archiver/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "hooks/sqlite_backup.h"
#include "storage/fs.h"
#include "storage/mailfiles/headers.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

int64_t Ns(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

void Restat(const struct stat& st, storage::FileEntry* e) {
  e->mode = st.st_mode & 07777;
  e->uid = st.st_uid;
  e->gid = st.st_gid;
  e->mtime_ns = Ns(st.st_mtim);
  e->ctime_ns = Ns(st.st_ctim);
  e->dev = st.st_dev;
  e->ino = st.st_ino;
}

// A Maildir message renamed since the walk (a flag change, or new/ -> cur/ when a client reads
// it) is still the same message: it is found by its unique name in cur/ or new/ of its folder.
// Returns its path relative to the root, or "" when `rel` is not a message or it is gone.
std::string FindRenamedMessage(int root_fd, const std::string& rel) {
  auto slash = rel.find_last_of('/');
  if (slash == std::string::npos) return "";
  std::string dir = rel.substr(0, slash), base = rel.substr(slash + 1);
  auto s2 = dir.find_last_of('/');
  std::string sub = s2 == std::string::npos ? dir : dir.substr(s2 + 1);
  if (sub != "cur" && sub != "new") return "";
  std::string folder = s2 == std::string::npos ? "" : dir.substr(0, s2 + 1);
  std::string_view want = mailfiles::UniqueName(base);
  for (const char* s : {"cur", "new"}) {
    int fd = storage::fs::OpenBeneath(root_fd, folder + s, O_RDONLY | O_DIRECTORY);
    if (fd < 0) continue;
    DIR* d = ::fdopendir(fd);
    std::string found;
    while (struct dirent* de = ::readdir(d))
      if (mailfiles::UniqueName(de->d_name) == want && base != de->d_name) {
        found = folder + s + "/" + de->d_name;
        break;
      }
    ::closedir(d);
    if (!found.empty()) return found;
  }
  return "";
}

}  // namespace

Status FileStore::Put(int worker, const storage::BlobId& id, const char* data, size_t len) {
  MV_ASSIGN_OR_RETURN(bool is_new, sink_.Put(worker, id, data, len));
  if (is_new) {
    blobs_new_++;
    bytes_new_ += len;
  }
  return Status::Ok();
}

Status FileStore::StoreStream(int worker, int fd, const std::string& path, storage::FileEntry* e,
                              std::string* read_error, uint64_t limit,
                              const std::function<void(std::string_view)>& head) {
  const auto& chunker = sink_.chunker();
  const size_t max = chunker.params().max_size;
  // Most files are small messages: a buffer sized to the file, kept per thread, grown to the
  // chunker's window (2 * max) only for a large file and then given back.
  thread_local std::string small;
  std::string large;
  size_t want = std::min<size_t>(2 * max, e->size + 4096);
  if (want > (256u << 10))
    large.resize(want);
  else if (small.size() < want)
    small.resize(std::max<size_t>(want, 64u << 10));
  std::string* bp = want > (256u << 10) ? &large : &small;
  storage::KeyedHasher::Stream whole(sink_.hasher());
  e->blobs.clear();
  size_t have = 0;
  uint64_t total = 0;
  bool eof = false;
  bool chunked = false;
  while (!eof || have > 0) {
    while (!eof) {
      if (have == bp->size()) {
        if (bp->size() >= 2 * max) break;
        if (bp == &small) {  // the file grew past its stat size: move to a large buffer
          large.assign(small, 0, have);
          bp = &large;
        }
        large.resize(std::min<size_t>(2 * max, large.size() * 2));
      }
      ssize_t n = ::read(fd, bp->data() + have, bp->size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        *read_error = std::string("read failed: ") + std::strerror(errno);
        return Status::Ok();
      }
      if (n == 0) eof = true;
      have += static_cast<size_t>(n);
      total += static_cast<uint64_t>(n);
      if (total >= limit) eof = true;  // what was read so far is stored; the caller sees the change
    }
    if (have == 0) break;
    if (head && total == have)  // the first bytes of the file are in the buffer
      head(std::string_view(bp->data(), std::min(have, mailfiles::kHeaderScanBytes)));
    // Files up to the threshold are one blob.
    if (!chunked && eof && total <= chunker.params().file_threshold) {
      storage::BlobId id = sink_.hasher().Hash(bp->data(), have);
      MV_RETURN_IF_ERROR(Put(worker, id, bp->data(), have));
      e->blobs.push_back(id);
      e->content = id;
      e->size = total;
      bytes_read_ += total;
      return Status::Ok();
    }
    chunked = true;
    size_t cut = chunker.NextCut(reinterpret_cast<const uint8_t*>(bp->data()), have, eof);
    if (cut == 0) cut = have;  // cannot happen with a 2*max buffer; keeps the loop finite
    storage::BlobId id = sink_.hasher().Hash(bp->data(), cut);
    MV_RETURN_IF_ERROR(Put(worker, id, bp->data(), cut));
    whole.Update(bp->data(), cut);
    e->blobs.push_back(id);
    std::memmove(bp->data(), bp->data() + cut, have - cut);
    have -= cut;
  }
  e->content = chunked ? whole.Final() : sink_.hasher().Hash("", 0);
  e->size = total;
  bytes_read_ += total;
  return Status::Ok();
}

FileOutcome FileStore::StoreSqlite(int worker, int src_fd, const std::string& host_path,
                                   storage::FileEntry* e) {
  FileOutcome out;
  std::string image =
      storage::fs::Join(sink_.ScratchDir(), "sqlite-" + storage::fs::RandomHex(8) + ".db");
  hooks::SqliteBackupOptions so;
  so.busy_budget = std::chrono::milliseconds(opts_.sqlite_busy_timeout_ms);
  Status st = hooks::OnlineBackup(host_path, image, so);
  if (!st.ok()) {
    ::unlink(image.c_str());
    // SQLite says the bytes are no (valid) database: a damaged one, or a file that only starts
    // like one (or no longer does). Its bytes are all there is, and what sqlite3 .recover
    // needs: stored as read, flagged (FORMAT.md §7.4). Anything else (locked, a WAL database on
    // a read-only mount, no space for the image, deleted) is a database SQLite could read once
    // that is fixed, and a raw copy could miss commits: reported, not stored, as before.
    if (st.code() != Code::kCorruption && st.code() != Code::kInvalidArgument) {
      out.problem = "SQLite database not backed up: " + st.message();
      out.drop = true;
      return out;
    }
    std::string read_error;
    out.fatal = StoreStream(worker, src_fd, host_path, e, &read_error);
    if (out.fatal.ok() && !read_error.empty()) {
      out.problem = "looks like SQLite but SQLite cannot open it (" + st.message() +
                    "), and the raw copy failed: " + read_error;
      out.drop = true;
      return out;
    }
    e->flags |= storage::kFlagSqliteRaw;
    out.warning =
        "stored as a raw copy, not a database image: it starts with the SQLite header but the "
        "online backup API cannot open it: " +
        st.message();
    return out;
  }
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  std::string read_error;
  if (fd < 0) {
    out.fatal = Status::FromErrno(errno, "open SQLite image", image);
  } else {
    out.fatal = StoreStream(worker, fd, image, e, &read_error);
    ::close(fd);
  }
  ::unlink(image.c_str());
  if (!read_error.empty()) {
    out.problem = "SQLite image: " + read_error;
    out.drop = true;
  }
  e->flags |= storage::kFlagSqlite;
  sqlite_++;
  return out;
}

FileOutcome FileStore::Store(int worker, int root_fd, const std::string& host_path,
                             const std::string& rel, storage::FileEntry* e) {
  FileOutcome out;
  // A file is read up to twice its size at the walk plus 64 MiB: one that grows faster than
  // that is stored as last read (below), never followed for ever.
  const uint64_t read_limit = e->size + std::max<uint64_t>(e->size, 64u << 20);
  for (int attempt = 0;; attempt++) {
    // O_NONBLOCK: a file replaced by a fifo since the walk must not hang the backup.
    int fd = storage::fs::OpenBeneath(root_fd, rel, O_RDONLY | O_NOATIME | O_NONBLOCK);
    if (fd < 0 && errno == EPERM)
      fd = storage::fs::OpenBeneath(root_fd, rel, O_RDONLY | O_NONBLOCK);
    // Renamed since the walk: its content is stored under the name the walk saw.
    for (int hop = 0; fd < 0 && errno == ENOENT && hop < 3; hop++) {
      std::string moved = FindRenamedMessage(root_fd, rel);
      if (moved.empty()) break;
      fd = storage::fs::OpenBeneath(root_fd, moved, O_RDONLY | O_NONBLOCK);
    }
    if (fd < 0) {
      out.drop = true;
      out.problem = errno == ENOENT ? "vanished before it could be read (deleted during the backup)"
                    : errno == ELOOP
                        ? "replaced by a symlink during the backup; not followed"
                        : std::string("cannot open: ") + std::strerror(errno) +
                              " (check permissions; run as root to back up every mailbox)";
      return out;
    }
    struct stat pre, post;
    if (::fstat(fd, &pre) != 0 || !S_ISREG(pre.st_mode)) {
      ::close(fd);
      out.drop = true;
      out.problem =
          "not a regular file any more (replaced by a fifo, socket or device during the backup); "
          "skipped";
      return out;
    }
    char head[16];
    ssize_t hn = ::pread(fd, head, sizeof head, 0);
    if (hn == 16 && pre.st_size >= 512 && mailfiles::HasSqliteHeader(std::string_view(head, 16))) {
      Restat(pre, e);
      files_read_++;
      out = StoreSqlite(worker, fd, host_path, e);
      ::close(fd);
      return out;
    }
    std::string read_error;
    mailfiles::HeaderFields fields;
    bool parsed = false;
    std::function<void(std::string_view)> on_head;
    if (headers_ && IsMessagePath(rel))
      on_head = [&](std::string_view data) {
        fields = mailfiles::ParseHeaders(data);
        parsed = true;
      };
    out.fatal = StoreStream(worker, fd, host_path, e, &read_error, read_limit, on_head);
    ::fstat(fd, &post);
    ::close(fd);
    if (!out.fatal.ok()) return out;
    if (!read_error.empty()) {
      out.drop = true;
      out.problem = read_error;
      return out;
    }
    Restat(pre, e);
    // Content changes move size or mtime; ctime alone (a rename, a new link) leaves the bytes.
    bool changed = pre.st_size != post.st_size || Ns(pre.st_mtim) != Ns(post.st_mtim) ||
                   static_cast<int64_t>(e->size) != pre.st_size;
    if (!changed || attempt == 2) files_read_++;  // one file, however many tries
    if (parsed && (!changed || attempt == 2)) {
      storage::MessageHeaders h;
      h.content = e->content;
      h.size = e->size;
      h.date = std::move(fields.date);
      h.from = std::move(fields.from);
      h.to = std::move(fields.to);
      h.subject = std::move(fields.subject);
      h.message_id = std::move(fields.message_id);
      h.date_unix = fields.date_unix;
      headers_->Add(std::move(h));
    }
    if (!changed) return out;
    if (attempt == 2) {
      // What was read is stored, with the stat taken after the read (its real mtime). The
      // flag makes the next backup read it again even if it no longer changes (§7.2).
      Restat(post, e);
      e->flags |= storage::kFlagChangedWhileRead;
      out.warning = "changed while being read (3 tries); stored as last read (" +
                    std::to_string(e->size) + " bytes), will be read again next time";
      return out;
    }
  }
}

}  // namespace mv::agent
