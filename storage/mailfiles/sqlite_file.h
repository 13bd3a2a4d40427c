// SQLite files in a mail store: which files are SQLite databases and which names are the side
// files SQLite keeps beside one. Recognition only; copying live databases is hooks/sqlite_backup.h.
#pragma once

#include <string>
#include <string_view>

namespace mv::mailfiles {

// The 16 bytes every SQLite 3 database file starts with ("SQLite format 3" and a NUL).
inline constexpr std::string_view kSqliteHeader{"SQLite format 3\0", 16};

// True when `first_bytes` (the first bytes of a file; fewer than 16 is never a database)
// starts with kSqliteHeader. Lets the archiver decide from bytes it already read.
bool HasSqliteHeader(std::string_view first_bytes);

// Reads the first 16 bytes of `path`. False for anything unreadable, short or not SQLite.
bool LooksLikeSqlite(const std::string& path);

// Byte 18 of the header is 2 when the database is in WAL mode (SQLite file format 1.3.4).
bool HeaderSaysWal(const std::string& path);

// Whether the directory holding `path` is writable by this process: a reader of a WAL database
// must be able to create its -shm there, unless the database is opened as immutable.
bool DirectoryWritable(const std::string& path);

// Whether `path`-wal holds content (uncheckpointed commits). A missing -wal holds none.
bool WalHasContent(const std::string& path);

// "file:<path>?immutable=1" ('%', '?' and '#' escaped), to open with SQLITE_OPEN_URI a database
// that SQLite could not open read-only otherwise: a WAL database on a read-only mount with no
// -shm. Only sound while the -wal is empty and the file does not change during the read: the
// caller checks both.
std::string ImmutableUri(const std::string& path);

// True for names SQLite keeps beside a database: "<db>-wal", "<db>-shm", "<db>-journal".
// They are part of the live database's state and are never stored as files: the image made
// by OnlineBackup already contains every committed transaction.
bool IsSqliteSideFile(std::string_view name);

// Stricter form for the archiver: `name` is a side file AND its database `dir/<db>` exists and
// looks like SQLite. A user file called "trip-journal" next to no database is kept.
bool IsSqliteSideFileOf(const std::string& dir, std::string_view name);

}  // namespace mv::mailfiles
