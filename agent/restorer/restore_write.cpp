// The file-level steps of a restore (docs/FORMAT.md §10): temp file, blobs with holes, content
// check, metadata, rename into place.
//
// Where temp files go. A Maildir message (a file directly in cur/ or new/) is written in the
// Maildir's own tmp/ and renamed into cur/ or new/ from there, as a delivery agent does: tmp/ is
// on the same filesystem, dovecot never shows what is in it and deletes what is left there after
// 36 hours, and neither mailvault's census nor its backups count it (walk.cpp skips tmp/'s
// contents). A temp file left in cur/ by a killed run would be a message to anything that reads
// the Maildir. Every other file is written beside its final name. Both are named
// ".<name>.mv-tmp-<hex>" and a rerun removes those (restore_plan.cpp).
//
// Durability. A file is renamed only after all of its bytes were written and its content hash
// checked, so a kill (or a full disk) at any moment leaves each final name either absent, as it
// was, or complete. Files are not fsynced one by one (that costs a disk flush per message, 100k
// for a large mail store; restic does not either): SyncRoots flushes each restored filesystem
// once before the restore reports success. After a power cut during a restore, run it again.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "agent/restorer/restore_plan.h"
#include "hooks/sqlite_backup.h"
#include "storage/fs.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
namespace fs = storage::fs;

constexpr size_t kBlock = 4096;  // holes are kept at this granularity (the usual fs block)
constexpr const char* kTempMark = ".mv-tmp-";

std::string Base(const std::string& rel) {
  auto s = rel.find_last_of('/');
  return s == std::string::npos ? rel : rel.substr(s + 1);
}

std::string Dir(const std::string& rel) {
  auto s = rel.find_last_of('/');
  return s == std::string::npos ? "" : rel.substr(0, s);
}

bool IsZero(const char* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

Status Fail(int err, const std::string& what, const std::string& host,
            const std::string& dir = {}) {
  return Status(err == ENOSPC || err == EDQUOT ? Code::kNoSpace : Code::kIOError,
                WriteFailure(err, what, host, dir));
}

Status PwriteAll(int fd, const char* p, size_t n, uint64_t off, const std::string& host) {
  while (n > 0) {
    ssize_t k = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return Fail(errno, "write", host);
    p += k;
    n -= static_cast<size_t>(k);
    off += static_cast<uint64_t>(k);
  }
  return Status::Ok();
}

// Writes `data` at `offset` except the blocks (aligned in the file) that are all zero: the file
// was sized with ftruncate and is new, so those read as zero already and stay holes.
Status WriteNonZero(int fd, std::string_view data, uint64_t offset, const std::string& host) {
  size_t pos = 0, run = 0;  // [run, pos) is non-zero data not yet written
  while (pos < data.size()) {
    size_t end = std::min(data.size(), pos + (kBlock - (offset + pos) % kBlock));
    if (IsZero(data.data() + pos, end - pos)) {
      if (run < pos)
        MV_RETURN_IF_ERROR(PwriteAll(fd, data.data() + run, pos - run, offset + run, host));
      run = end;
    }
    pos = end;
  }
  if (run < pos)
    MV_RETURN_IF_ERROR(PwriteAll(fd, data.data() + run, pos - run, offset + run, host));
  return Status::Ok();
}

// Creates file i's temp file at its final size; returns the fd.
Result<int> CreateTemp(const RestorePlan& plan, size_t i) {
  const PlannedFile& f = plan.files[i];
  std::string host = HostPath(plan, f.root, f.write_rel());
  int fd = fs::OpenBeneath(plan.root_fds[f.root], f.write_rel(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0)
    return Fail(errno, "create a temp file for", HostPath(plan, f.root, f.rel()), Dir(host));
  if (::ftruncate(fd, static_cast<off_t>(f.entry->size)) != 0) {
    Status st = Fail(errno, "set the size of", host);
    ::close(fd);
    return st;
  }
  return fd;
}

// Hashes what `fd` holds, reading only its data (holes are hashed as the zeros they read as).
Result<storage::BlobId> HashFile(const storage::KeyedHasher& hasher, int fd, uint64_t size,
                                 const std::string& host) {
  storage::KeyedHasher::Stream h(hasher);
  std::string buf(1 << 20, '\0');
  static const std::string zeros(1 << 20, '\0');
  uint64_t off = 0;
  while (off < size) {
    off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    uint64_t data_at = data < 0 ? size : static_cast<uint64_t>(data);
    for (; off < data_at; off += std::min<uint64_t>(zeros.size(), data_at - off))
      h.Update(zeros.data(), std::min<uint64_t>(zeros.size(), data_at - off));
    if (off >= size) break;
    off_t hole = ::lseek(fd, static_cast<off_t>(off), SEEK_HOLE);
    uint64_t hole_at = hole < 0 ? size : std::min<uint64_t>(size, static_cast<uint64_t>(hole));
    while (off < hole_at) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), hole_at - off));
      MV_RETURN_IF_ERROR(fs::ReadExact(fd, buf.data(), n, off, host));
      h.Update(buf.data(), n);
      off += n;
    }
  }
  return h.Final();
}

// Renames file i's temp file to its final name: over what is there with `replace`, else only
// if nothing appeared there meanwhile.
Status RenameIntoPlace(const RestorePlan& plan, size_t i) {
  const PlannedFile& f = plan.files[i];
  std::string host = HostPath(plan, f.root, f.rel()), from_name, to_name;
  int from = fs::OpenParentBeneath(plan.root_fds[f.root], f.write_rel(), &from_name);
  if (from < 0) return Fail(errno, "open the directory of the temp file of", host);
  bool same_dir = !f.tmp_in_maildir_tmp;  // beside its final name
  int to = same_dir ? from : fs::OpenParentBeneath(plan.root_fds[f.root], f.rel(), &to_name);
  if (same_dir) to_name = Base(f.rel());
  if (to < 0) {
    Status st = Fail(errno, "open the directory of", host);
    ::close(from);
    return st;
  }
  int rc =
      ::renameat2(from, from_name.c_str(), to, to_name.c_str(), f.replace ? 0 : RENAME_NOREPLACE);
  if (rc != 0 && errno == EINVAL && !f.replace) {  // a filesystem without RENAME_NOREPLACE
    rc = ::linkat(from, from_name.c_str(), to, to_name.c_str(), 0);
    if (rc == 0) ::unlinkat(from, from_name.c_str(), 0);
  }
  int err = errno;
  ::close(from);
  if (!same_dir) ::close(to);
  if (rc == 0) return Status::Ok();
  if (err == EEXIST)
    return Status::IOError("not restored: " + host +
                           " appeared while the restore ran and was left as it is "
                           "(restore again with --overwrite to replace it)");
  return Fail(err, "rename into place", host);
}

}  // namespace

std::string PlannedFile::write_rel() const {
  std::string r = rel(), dir = Dir(r);
  std::string name = RestoreTempName(Base(r), tmp_tag);
  if (tmp_in_maildir_tmp) dir = Dir(dir).empty() ? "tmp" : Dir(dir) + "/tmp";
  return dir.empty() ? name : dir + "/" + name;
}

std::string RestoreTempName(const std::string& name, uint64_t tag) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(tag));
  return "." + name.substr(0, 200) + kTempMark + hex;  // within NAME_MAX (255)
}

bool IsRestoreTemp(std::string_view name) {
  if (name.size() < 1 + std::strlen(kTempMark) + 16 || name[0] != '.') return false;
  std::string_view tail = name.substr(name.size() - 16 - std::strlen(kTempMark));
  if (tail.substr(0, std::strlen(kTempMark)) != kTempMark) return false;
  for (char c : tail.substr(std::strlen(kTempMark)))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string WriteFailure(int err, const std::string& what, const std::string& host,
                         const std::string& dir) {
  std::string sys = std::string(std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return "not restored: no space left on the device (" + what + " " + host + ": " + sys +
             "); nothing was left under its name; free space on that filesystem and run the "
             "restore again "
             "(it writes only what is missing)";
    case EACCES:
    case EPERM:
      return "not restored: write access to " + (dir.empty() ? Dir(host) : dir) + " is missing (" +
             what + " " + host + ": " + sys +
             "); run the restore as a user who may write there (as root to keep ownership), or "
             "choose "
             "another --target";
    case ELOOP:
    case EXDEV:
    case ENOTDIR:
      return "refused: the path " + host +
             " goes through a symlink (or something else that is not a directory), "
             "and restore never follows a symlink inside the target because it could lead outside "
             "it; nothing "
             "written for it";
    case EROFS:
      return "not restored: " + host + " is on a read-only filesystem; choose another --target";
    default:
      return "not restored: " + what + " " + host + ": " + sys;
  }
}

Status CreateFile(const RestorePlan& plan, size_t i) {
  if (plan.files[i].entry->blobs.size() == 1) return Status::Ok();  // created when its blob arrives
  MV_ASSIGN_OR_RETURN(int fd, CreateTemp(plan, i));
  ::close(fd);
  return Status::Ok();
}

Status WriteBlob(const RestorePlan& plan, size_t i, uint64_t offset, std::string_view data) {
  const PlannedFile& f = plan.files[i];
  bool single = f.entry->blobs.size() == 1;
  std::string host = HostPath(plan, f.root, f.rel());
  int fd;
  if (single) {
    MV_ASSIGN_OR_RETURN(fd, CreateTemp(plan, i));
  } else {
    fd = fs::OpenBeneath(plan.root_fds[f.root], f.write_rel(), O_WRONLY);
    if (fd < 0) return Fail(errno, "open the temp file of", host);
  }
  Status st = WriteNonZero(fd, data, offset, host);
  // A single blob was checked against its ID, which is the file's content ID: set the metadata
  // now, while the file is open (FinishFile then only renames it).
  if (st.ok() && single && !f.sqlite_live && f.entry->content == f.entry->blobs[0])
    st = ApplyMeta(fd, *f.entry, plan, host);
  ::close(fd);
  return st;
}

Status FinishFile(const storage::KeyedHasher& hasher, const RestorePlan& plan, size_t i) {
  const PlannedFile& f = plan.files[i];
  std::string host = HostPath(plan, f.root, f.rel()),
              tmp_host = HostPath(plan, f.root, f.write_rel());
  bool checked = f.entry->blobs.empty() ||
                 (f.entry->blobs.size() == 1 && f.entry->content == f.entry->blobs[0]);
  if (!checked || !f.sqlite_live) {
    if (checked && f.entry->blobs.size() == 1)
      return RenameIntoPlace(plan, i);  // metadata set by WriteBlob
    int fd = fs::OpenBeneath(plan.root_fds[f.root], f.write_rel(), O_RDONLY);
    if (fd < 0) return Fail(errno, "open the temp file of", host);
    Status st;
    if (!checked) {
      auto h = HashFile(hasher, fd, f.entry->size, tmp_host);
      if (!h.ok())
        st = Status::IOError("not restored: cannot read back " + tmp_host + ": " +
                             h.status().message());
      else if (*h != f.entry->content)
        st = Status::Corruption(
            "not restored: the written content of " + host +
            " does not match the snapshot's "
            "content hash (a damaged blob, or the disk lost a write); run `mailvault check "
            "--read-data`");
    }
    if (st.ok() && !f.sqlite_live) st = ApplyMeta(fd, *f.entry, plan, host);
    ::close(fd);
    MV_RETURN_IF_ERROR(st);
  }
  if (!f.sqlite_live) return RenameIntoPlace(plan, i);
  Status st = hooks::RestoreIntoLive(tmp_host, host);
  ::unlink(tmp_host.c_str());
  if (!st.ok()) return Status(st.code(), "not restored into the live database: " + st.ToString());
  return Status::Ok();
}

void DiscardTemp(const RestorePlan& plan, size_t i) {
  const PlannedFile& f = plan.files[i];
  std::string name;
  int pfd = fs::OpenParentBeneath(plan.root_fds[f.root], f.write_rel(), &name);
  if (pfd < 0) return;
  ::unlinkat(pfd, name.c_str(), 0);
  ::close(pfd);
}

void SyncRoots(const RestorePlan& plan) {
  std::set<dev_t> done;
  for (int fd : plan.root_fds) {
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 || !done.insert(st.st_dev).second) continue;
    ::syncfs(fd);
  }
}

}  // namespace mv::agent
