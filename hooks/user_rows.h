// One user's rows of a mail stack's SQLite database, brought back from a snapshot's image of it
// into the live database (`restore --user`): only rows the live database lacks are inserted, in
// one transaction; a row the live database has with other values is left alone and reported by
// column name; other users' rows are never touched. Which rows belong to a user is data, not
// code: a user-tables description (Mailu's is built in; docs/RESTORE.md "--user-tables").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/status.h"

namespace mv::hooks {

struct UserTable {
  enum class Match {
    kEquals,  // the column holds the user's address
    kList,    // the column holds a list of addresses separated by ',' (and blanks) with it
  };
  std::string table, column;
  Match match = Match::kEquals;
};

// The tables in the order rows are inserted (a user before the rows that refer to it).
struct UserTables {
  std::string name;  // "mailu", or the file it was read from
  std::vector<UserTable> tables;
};

// Mailu's: user(email), alias(destination, a list), token(user_email), fetch(user_email),
// manager(user_email).
const UserTables& MailuUserTables();

// Parses a user-tables description: one line per table, "<table> <column> equals|list", '#'
// starts a comment. Errors name the line and say what is expected. `origin` names the file.
Result<UserTables> ParseUserTables(const std::string& text, const std::string& origin);

// Whether database `db` (opened read-only) has the first table of `tables` with its column: how
// the database that holds the users is told from the others of a snapshot.
bool HasUserTables(const std::string& db, const UserTables& tables);

struct UserRow {
  enum class Outcome { kInserted, kPresent, kDiffers };
  std::string table;
  std::string key;  // the row's primary key as "column=value, ..." (its whole row when none)
  Outcome outcome = Outcome::kInserted;
  std::vector<std::string> columns;  // kDiffers: the columns whose live values differ (names only)
};

struct UserRowsResult {
  std::vector<UserRow> rows;  // every row of the user in the image, in table order
  uint64_t inserted = 0, present = 0, differs = 0;
  std::vector<std::string> missing_tables;  // described, but absent from the image: skipped
};

// Reads `user`'s rows from `image` and inserts into `live` (which must exist) those it lacks, in
// one transaction (BEGIN IMMEDIATE, waiting up to a minute for writers), or with dry_run only
// reports what it would do. A row is "present" when the live table has its primary key (or, in a
// table without one, an equal row). Columns the live table lacks are left out; an insert that
// the live schema refuses fails the whole call, naming the table and SQLite's reason, and
// nothing is inserted. Values are never put in messages (a column may hold a secret).
Result<UserRowsResult> RestoreUserRows(const std::string& image, const std::string& live,
                                       const UserTables& tables, const std::string& user,
                                       bool dry_run);

}  // namespace mv::hooks
