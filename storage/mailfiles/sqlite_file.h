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

// True for names SQLite keeps beside a database: "<db>-wal", "<db>-shm", "<db>-journal".
// They are part of the live database's state and are never stored as files: the image made
// by OnlineBackup already contains every committed transaction.
bool IsSqliteSideFile(std::string_view name);

// Stricter form for the archiver: `name` is a side file AND its database `dir/<db>` exists and
// looks like SQLite. A user file called "trip-journal" next to no database is kept.
bool IsSqliteSideFileOf(const std::string& dir, std::string_view name);

}  // namespace mv::mailfiles
