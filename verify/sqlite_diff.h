// The SQLite part of `mailvault verify`: integrity of a database file and a
// row-by-row diff of the user tables of two databases, keyed by primary key (or rowid).
//
// Read-only by contract: every database is opened with SQLITE_OPEN_READONLY and read inside ONE
// read transaction, so a live database is never written and is seen as of one commit; in WAL
// mode its writers keep committing meanwhile. Memory stays bounded: both sides are iterated in
// key order and merged, holding one row per side.
//
// Secrets: no column value ever appears in these results except key values, and a key value of a
// column whose name contains "password", "secret" or "token" is replaced by a short hash.
// Changed rows report only the NAMES of the changed columns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "storage/status.h"

namespace mv::verify {

// Mailu's user tables (admin database main.db), for callers that want to check they exist.
inline const std::vector<std::string> kMailuTables = {
    "domain", "alternative", "relay",   "user",          "alias",
    "token",  "fetch",       "manager", "domain_access", "config"};

// True when a column with this name may hold a secret (case-insensitive "password", "secret",
// "token"): its values are never reported.
bool IsSensitiveColumn(std::string_view column);

struct IntegrityResult {
  bool ok = false;
  std::vector<std::string> problems;  // lines from PRAGMA integrity_check, or the open error
};

// PRAGMA integrity_check on `path`, opened read-only. A file SQLite cannot read as a database
// (malformed, not a database) is a failed check, not an error; Status is for a missing or
// unreadable file.
Result<IntegrityResult> CheckSqliteIntegrity(const std::string& path);

struct SqliteDiffOptions {
  // Tables to compare. Empty (default): every user table (not sqlite_*, not virtual tables).
  // Named tables missing from a side are reported as missing, not skipped.
  std::vector<std::string> tables;
  // Per table and kind (added/removed/changed), at most this many keys are listed; the counts
  // are always complete. Default 200.
  size_t max_listed_rows = 200;
};

struct RowKey {
  // One display string per key column, in key order: integers and text as they are, NULL as
  // "NULL", blobs as "x'..'" (cut), values of sensitive key columns as "#" + 12 hex digits.
  std::vector<std::string> values;
  bool operator==(const RowKey&) const = default;
};

struct ChangedRow {
  RowKey key;
  std::vector<std::string> columns;  // names of the columns whose values differ
  bool operator==(const ChangedRow&) const = default;
};

struct TableDiff {
  std::string table;
  std::vector<std::string> key_columns;  // {"rowid"} when the table has no primary key
  bool missing_in_base = false;          // table exists only on the other side
  bool missing_in_other = false;         // table exists only on the base side
  int64_t rows_base = 0, rows_other = 0;
  int64_t added_count = 0, removed_count = 0, changed_count = 0;
  std::vector<RowKey> added;        // keys only in `other`
  std::vector<RowKey> removed;      // keys only in `base`
  std::vector<ChangedRow> changed;  // same key, different values
  std::vector<std::string> columns_only_in_base, columns_only_in_other;
  bool truncated = false;  // some keys were not listed (see max_listed_rows)
  bool identical() const;
  bool operator==(const TableDiff&) const = default;
};

struct SqliteDiff {
  std::vector<TableDiff> tables;     // sorted by table name
  std::vector<std::string> skipped;  // "<table>: reason" (virtual tables)
  bool identical() const;
};

// Diffs `other` against `base`: "added" rows are only in `other`, "removed" only in `base`.
// For verify, base is the image as recorded at backup time and other is the restored image or
// the live database. Errors: NotFound / Corruption / IOError naming the path; Busy if a side
// stays locked (rollback mode with a writer holding an exclusive lock for 5 s).
Result<SqliteDiff> DiffSqlite(const std::string& base, const std::string& other,
                              const SqliteDiffOptions& opts = {});

struct TableCount {
  std::string table;
  int64_t rows = 0;
  bool operator==(const TableCount&) const = default;
};

// Row count of every user table (or opts.tables that exist), sorted by name, read in one read
// transaction of a read-only connection. Small enough to record in a manifest at backup time,
// so verify can compare counts even without the recorded image.
Result<std::vector<TableCount>> SqliteTableCounts(const std::string& path,
                                                  const SqliteDiffOptions& opts = {});

// JSON form of a diff ({"tables":[...],"skipped":[...],"identical":bool}); holds no values
// beyond what the structs hold.
nlohmann::json ToJson(const SqliteDiff& diff);

}  // namespace mv::verify
