// SQLite quiescing: live databases are never read raw (the archiver stores raw bytes only of a
// file SQLite cannot open at all, agent/archiver/file_store.cpp). A file that starts with the
// SQLite header is copied through SQLite's online backup API into a consistent, self-contained
// image while writers keep writing (WAL and rollback-journal modes), and a restored image is copied
// back INTO a live database the same way, so no reader ever sees a half-written file.
//
// Locking policy: only SQLITE_BUSY and SQLITE_LOCKED are retried, with exponential backoff, until
// a total budget is spent; then the call returns Status::Busy naming the path and the wait.
// Thread safety: every call opens its own connections; calls may run concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/mailfiles/sqlite_file.h"
#include "storage/status.h"

namespace mv::hooks {

struct SqliteBackupOptions {
  // Total time spent waiting for SQLITE_BUSY/SQLITE_LOCKED before giving up. Default 60 s.
  std::chrono::milliseconds busy_budget{60000};
  // First wait after a busy result; doubled after each further busy result, up to max_backoff.
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{1000};
  // Pages copied per backup step. -1 (default) copies the whole database in one step inside
  // one read transaction: the image is the state of one commit, and a busy writer cannot make
  // the copy restart forever. (With N > 0, SQLite restarts the copy whenever another process
  // commits between steps; in rollback mode a step also blocks writers only for N pages.)
  int pages_per_step = -1;
};

// Copies the live database `src` into a new self-contained image at `dst` (replaced if it
// exists; its directory must be writable). The source is opened read-only: the live file is
// never written, with one exception: a hot journal left by a crashed writer (rollback mode)
// cannot be rolled back read-only, so then the source is reopened read-write and SQLite rolls
// it back, as the application's next access would. In WAL mode SQLite still needs
// `<src>-shm` to exist or be creatable; if the directory is read-only the error says so. The image
// has journal_mode DELETE (no -wal needed to read it) and is fsync'ed before return. On failure
// `dst` is removed. Errors: Busy (locked longer than busy_budget), Corruption (not a database /
// malformed), NotFound, IOError; all name the path and what to do.
Status OnlineBackup(const std::string& src, const std::string& dst,
                    const SqliteBackupOptions& opts = {});

// Live restore: copies `image` INTO the live database file `live` (created if missing) through
// the backup API, in one write transaction of the live database, so concurrent readers see
// either the old or the new database, never a mix. The live database keeps its journal mode.
// In rollback mode a reader's open read transaction delays the commit (retried as above); in
// WAL mode readers keep their old snapshot until they end their transaction.
Status RestoreIntoLive(const std::string& image, const std::string& live,
                       const SqliteBackupOptions& opts = {});

// "Unchanged since last time" key for a database, compared by the archiver before paying for
// an OnlineBackup. It covers the main file AND its -wal: in WAL mode a commit appends to the
// -wal and leaves the main file (size, mtime) untouched until a checkpoint, so a key of the main
// file alone would call a database with new commits unchanged. The -journal is not included:
// in rollback mode every commit writes the main file. Equal keys mean "no commit seen by stat";
// like any stat shortcut it trusts mtimes (a writer that resets mtimes defeats it).
struct SqliteStatKey {
  uint64_t db_ino = 0;
  int64_t db_size = 0;
  int64_t db_mtime_ns = 0;
  bool wal_exists = false;
  int64_t wal_size = 0;
  int64_t wal_mtime_ns = 0;
  bool operator==(const SqliteStatKey&) const = default;
};

// Stats `db` and `<db>-wal` (a missing -wal is fine; a missing db is NotFound).
Result<SqliteStatKey> StatSqlite(const std::string& db);

}  // namespace mv::hooks
