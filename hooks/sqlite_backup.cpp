#include "hooks/sqlite_backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <thread>

namespace mv::hooks {
namespace {

using Clock = std::chrono::steady_clock;

// Within one attempt SQLite's own busy handler polls for this long (sleeping 1, 2, 5, 10... ms):
// against a writer that commits constantly in rollback mode the free window between commits is
// short, and many quick polls find it where one try per backoff step would not.
constexpr int kAttemptBusyMs = 50;

bool IsBusyCode(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// Exponential backoff within a total budget. The one place that decides how long we wait.
class BusyWaiter {
 public:
  explicit BusyWaiter(const SqliteBackupOptions& o)
      : opts_(o),
        start_(Clock::now()),
        backoff_(
            std::max<std::chrono::milliseconds>(o.initial_backoff, std::chrono::milliseconds(1))) {}
  // Sleeps before the next attempt; false once the budget is spent.
  bool Wait() {
    ++attempts_;
    auto left = opts_.busy_budget -
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_);
    if (left <= std::chrono::milliseconds(0)) return false;
    std::this_thread::sleep_for(std::min(backoff_, left));
    backoff_ = std::min(backoff_ * 2, std::max(opts_.max_backoff, opts_.initial_backoff));
    return true;
  }
  Status BusyStatus(const std::string& path, const char* role) const {
    double waited = std::chrono::duration<double>(Clock::now() - start_).count();
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", waited);
    return Status::Busy(std::string("SQLite ") + role + " database " + path +
                            " stayed locked for " + secs + " s (" + std::to_string(attempts_) +
                            " attempts): another process holds a lock on it (a long write "
                            "transaction in rollback-journal mode, an open read transaction "
                            "blocking a write, or locking_mode=EXCLUSIVE). Retry when it is idle, "
                            "stop the writer, or raise the SQLite busy budget",
                        path);
  }

 private:
  const SqliteBackupOptions& opts_;
  Clock::time_point start_;
  std::chrono::milliseconds backoff_;
  int attempts_ = 0;
};

// Maps a SQLite error to a Status naming the path and what to do.
Status FromSqlite(int rc, const std::string& what, const std::string& path,
                  const std::string& msg) {
  int primary = rc & 0xff;
  std::string text = what + ": " + msg;
  switch (primary) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return Status::Corruption(
          text +
              " (SQLite says the file is not a valid database; restore "
              "it from an earlier snapshot or repair it with sqlite3 .recover)",
          path);
    case SQLITE_FULL:
      return Status(Code::kNoSpace, text + " (free space on that filesystem and run again)", path);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
      if (mailfiles::HeaderSaysWal(path)) {
        return Status::IOError(
            text + " (the database is in WAL mode: even a read-only reader needs " + path +
                "-shm and " + path +
                "-wal to exist or be creatable, so the directory must be "
                "writable for the agent. Mount the volume read-write (the database file itself is "
                "never written), or have the application checkpoint and switch to "
                "journal_mode=DELETE)",
            path);
      }
      return Status::IOError(text +
                                 " (check that the file and its directory are readable and, "
                                 "for a restore, writable)",
                             path);
    default:
      return Status::IOError(text, path);
  }
}

// The most precise code of an exception: SQLite::Backup throws with the step's result code only
// (getExtendedErrorCode() is then -1), other calls carry the connection's extended code.
int CodeOf(const SQLite::Exception& e) {
  return e.getExtendedErrorCode() >= 0 ? e.getExtendedErrorCode() : e.getErrorCode();
}

Status FromException(const SQLite::Exception& e, const std::string& what, const std::string& path) {
  return FromSqlite(CodeOf(e), what, path, e.what());
}

// Runs backup steps until done, waiting out BUSY/LOCKED; other errors propagate as exceptions.
// `busy_path` names the database whose lock we wait for in the final message.
Status RunSteps(SQLite::Backup& backup, const SqliteBackupOptions& opts,
                const std::string& busy_path, const char* role) {
  BusyWaiter waiter(opts);
  const auto start = Clock::now();
  int pages = opts.pages_per_step;
  for (;;) {
    // Chunked copies restart on every foreign commit; past the budget, finish in one step.
    if (pages > 0 && Clock::now() - start > opts.busy_budget) pages = -1;
    int rc;
    try {
      rc = backup.executeStep(pages);
    } catch (const SQLite::Exception& e) {
      if (!IsBusyCode(CodeOf(e))) throw;
      rc = SQLITE_BUSY;
    }
    if (rc == SQLITE_DONE) return Status::Ok();
    if (rc == SQLITE_OK) continue;  // more pages to copy (pages_per_step > 0)
    if (!waiter.Wait()) return waiter.BusyStatus(busy_path, role);
  }
}

bool RegularFileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void RemoveImage(const std::string& dst) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) ::unlink((dst + suffix).c_str());
}

Status FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open for fsync", path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(err, "fsync", path);
  return Status::Ok();
}

// The copied page 1 still says "WAL" when the source was in WAL mode. Reopening the image and
// switching it to DELETE rewrites the header and removes the image's own -wal/-shm.
Status MakeSelfContained(const std::string& dst) {
  try {
    SQLite::Database db(dst, SQLite::OPEN_READWRITE);
    std::string mode = db.execAndGet("PRAGMA journal_mode=DELETE").getString();
    if (mode != "delete") {
      return Status::IOError("could not switch the image to journal_mode=DELETE (got '" + mode +
                                 "'); check that its directory is writable",
                             dst);
    }
  } catch (const SQLite::Exception& e) {
    return FromException(e, "finishing SQLite image", dst);
  }
  return Status::Ok();
}

// Opens the source read-only. A hot journal left by a crashed writer must be rolled back before
// anyone can read, which a read-only connection cannot do; only then do we open read-write
// (exactly what the application's next access would do).
// What must not change while a read-only volume's database is copied without SQLite's locks.
struct QuietKey {
  struct stat db {};
  bool wal_has_content = false;
  bool Same(const QuietKey& o) const {
    return db.st_ino == o.db.st_ino && db.st_size == o.db.st_size &&
           db.st_mtim.tv_sec == o.db.st_mtim.tv_sec && db.st_mtim.tv_nsec == o.db.st_mtim.tv_nsec &&
           wal_has_content == o.wal_has_content;
  }
};

bool ReadQuietKey(const std::string& src, QuietKey* k) {
  if (::stat(src.c_str(), &k->db) != 0) return false;
  k->wal_has_content = mailfiles::WalHasContent(src);
  return true;
}

// A WAL database on a read-only mount whose -shm does not exist cannot be opened by SQLite at
// all (a reader must create -shm). When its -wal holds nothing, every commit is in the main
// file, so a copy that sees the file unchanged before and after (inode, size, mtime; still no
// WAL content) is one consistent state. Any change: try again, within the busy budget.
Status CopyQuiescedReadOnly(SQLite::Database& image, const std::string& src, const std::string& dst,
                            const SqliteBackupOptions& opts) {
  auto deadline = std::chrono::steady_clock::now() + opts.busy_budget;
  for (;;) {
    QuietKey before, after;
    if (!ReadQuietKey(src, &before)) return Status::FromErrno(errno, "stat", src);
    if (before.wal_has_content)
      return Status::IOError("the database is in WAL mode with uncheckpointed commits in " + src +
                                 "-wal and its directory is read-only, so SQLite cannot read it "
                                 "consistently. Mount the volume read-write for the agent (the "
                                 "database is never written), or checkpoint it in a pre-hook "
                                 "(PRAGMA wal_checkpoint(TRUNCATE))",
                             src);
    try {
      SQLite::Database source(mailfiles::ImmutableUri(src),
                              SQLite::OPEN_READONLY | SQLITE_OPEN_URI);
      SQLite::Backup backup(image, source);
      Status st = RunSteps(backup, opts, src, "source");
      if (!st.ok()) return st;
    } catch (const SQLite::Exception& e) {
      return FromException(e, "SQLite copy of read-only " + src + " -> " + dst, src);
    }
    if (ReadQuietKey(src, &after) && before.Same(after)) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Busy(
          "the database kept changing while it was copied from a read-only "
          "mount; mount it read-write for the agent so SQLite's locks can be used",
          src);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status CopyInto(SQLite::Database& image, const std::string& src, const std::string& dst,
                const SqliteBackupOptions& opts) {
  for (int flags : {SQLite::OPEN_READONLY, SQLite::OPEN_READWRITE}) {
    try {
      SQLite::Database source(src, flags, kAttemptBusyMs);
      SQLite::Backup backup(image, source);
      return RunSteps(backup, opts, src, "source");
    } catch (const SQLite::Exception& e) {
      if (CodeOf(e) == SQLITE_READONLY_ROLLBACK && flags == SQLite::OPEN_READONLY) continue;
      int primary = CodeOf(e) & 0xff;
      if ((primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY) &&
          mailfiles::HeaderSaysWal(src) && !mailfiles::DirectoryWritable(src))
        return CopyQuiescedReadOnly(image, src, dst, opts);
      return FromException(e, "SQLite online backup " + src + " -> " + dst, src);
    }
  }
  return Status::Ok();  // unreachable
}

}  // namespace

Status OnlineBackup(const std::string& src, const std::string& dst,
                    const SqliteBackupOptions& opts) {
  if (!RegularFileExists(src)) {
    return Status::NotFound("SQLite database to back up is missing or not a regular file", src);
  }
  if (!mailfiles::LooksLikeSqlite(src)) {
    return Status::Invalid(
        "not a SQLite database (no 'SQLite format 3' header); back it up as a "
        "plain file",
        src);
  }
  RemoveImage(dst);
  Status st;
  try {
    SQLite::Database image(dst, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    image.exec("PRAGMA synchronous=OFF");  // a scratch file: fsync'ed once at the end
    st = CopyInto(image, src, dst, opts);
  } catch (const SQLite::Exception& e) {
    st = FromException(e, "creating SQLite image", dst);
  }
  if (st.ok()) st = MakeSelfContained(dst);
  if (st.ok()) st = FsyncFile(dst);
  if (!st.ok()) RemoveImage(dst);
  return st;
}

Status RestoreIntoLive(const std::string& image, const std::string& live,
                       const SqliteBackupOptions& opts) {
  if (!mailfiles::LooksLikeSqlite(image)) {
    return Status::Corruption(
        "restored SQLite image is missing or not a database; it cannot be "
        "copied into the live database",
        image);
  }
  struct stat st_live;
  if (::stat(live.c_str(), &st_live) == 0 && st_live.st_size > 0 &&
      !mailfiles::LooksLikeSqlite(live)) {
    return Status::Invalid(
        "live file exists but is not a SQLite database; refusing to overwrite "
        "it through SQLite (move it away first)",
        live);
  }
  try {
    SQLite::Database source(image, SQLite::OPEN_READONLY);
    SQLite::Database dest(live, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, kAttemptBusyMs);
    SQLite::Backup backup(dest, source);
    return RunSteps(backup, opts, live, "live");
  } catch (const SQLite::Exception& e) {
    return FromException(e, "SQLite restore " + image + " -> " + live, live);
  }
}

Result<SqliteStatKey> StatSqlite(const std::string& db) {
  struct stat st;
  if (::stat(db.c_str(), &st) != 0) return Status::FromErrno(errno, "stat", db);
  SqliteStatKey key;
  key.db_ino = st.st_ino;
  key.db_size = st.st_size;
  key.db_mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  std::string wal = db + "-wal";
  if (::stat(wal.c_str(), &st) == 0) {
    key.wal_exists = true;
    key.wal_size = st.st_size;
    key.wal_mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  } else if (errno != ENOENT) {
    return Status::FromErrno(errno, "stat", wal);
  }
  return key;
}

}  // namespace mv::hooks
