// hooks/user_rows.h, on SQLite's C API (values keep their storage class from image to live).
#include "hooks/user_rows.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>

namespace mv::hooks {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
struct ValueFree {
  void operator()(sqlite3_value* v) const { sqlite3_value_free(v); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;
using Value = std::unique_ptr<sqlite3_value, ValueFree>;

std::string Quote(const std::string& id) {
  std::string q = "\"";
  for (char c : id) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

Result<Db> Open(const std::string& path, bool write) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                           nullptr);
  Db db(raw);
  if (rc != SQLITE_OK)
    return Status::IOError("cannot open the database: " + std::string(sqlite3_errstr(rc)), path);
  sqlite3_busy_timeout(raw, 60000);
  return db;
}

Result<Stmt> Prepare(sqlite3* db, const std::string& sql, const std::string& path) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
    return Status::Invalid(std::string(sqlite3_errmsg(db)) + " (in: " + sql + ")", path);
  return Stmt(s);
}

struct Column {
  std::string name;
  int pk = 0;  // position in the primary key (1-based), 0 if not in it
};

// The table's columns; empty if it does not exist.
Result<std::vector<Column>> Columns(sqlite3* db, const std::string& table,
                                    const std::string& path) {
  MV_ASSIGN_OR_RETURN(Stmt s, Prepare(db, "PRAGMA table_info(" + Quote(table) + ")", path));
  std::vector<Column> cols;
  while (sqlite3_step(s.get()) == SQLITE_ROW)
    cols.push_back({reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 1)),
                    sqlite3_column_int(s.get(), 5)});
  return cols;
}

bool SameValue(sqlite3_value* a, sqlite3_value* b) {
  int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case SQLITE_NULL:
      return true;
    case SQLITE_INTEGER:
      return sqlite3_value_int64(a) == sqlite3_value_int64(b);
    case SQLITE_FLOAT:
      return sqlite3_value_double(a) == sqlite3_value_double(b);
    default: {
      int na = sqlite3_value_bytes(a), nb = sqlite3_value_bytes(b);
      const void* pa = ta == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(a))
                                         : sqlite3_value_blob(a);
      const void* pb = tb == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(b))
                                         : sqlite3_value_blob(b);
      return na == nb && (na == 0 || std::memcmp(pa, pb, na) == 0);
    }
  }
}

bool ListHas(const std::string& list, const std::string& user) {
  std::string item;
  std::istringstream in(list);
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos && item.substr(b, e - b + 1) == user) return true;
  }
  return false;
}

std::string ValueText(sqlite3_value* v) {
  const unsigned char* t = sqlite3_value_text(v);
  return t ? reinterpret_cast<const char*>(t) : "NULL";
}

}  // namespace

const UserTables& MailuUserTables() {
  static const UserTables t{"mailu",
                            {{"user", "email", UserTable::Match::kEquals},
                             {"alias", "destination", UserTable::Match::kList},
                             {"token", "user_email", UserTable::Match::kEquals},
                             {"fetch", "user_email", UserTable::Match::kEquals},
                             {"manager", "user_email", UserTable::Match::kEquals}}};
  return t;
}

Result<UserTables> ParseUserTables(const std::string& text, const std::string& origin) {
  UserTables out;
  out.name = origin;
  std::istringstream lines(text);
  std::string line;
  for (int n = 1; std::getline(lines, line); n++) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string table, column, match, extra;
    if (!(words >> table)) continue;
    auto bad = [&](const std::string& why) {
      return Status::Invalid(
          "line " + std::to_string(n) + ": " + why +
              "; each line is \"<table> <column> equals|list\" (docs/RESTORE.md)",
          origin);
    };
    if (!(words >> column >> match)) return bad("expected a table, a column and a match");
    if (words >> extra) return bad("unexpected '" + extra + "' after the match");
    UserTable t{table, column, UserTable::Match::kEquals};
    if (match == "list")
      t.match = UserTable::Match::kList;
    else if (match != "equals")
      return bad("match '" + match + "' is neither 'equals' nor 'list'");
    out.tables.push_back(std::move(t));
  }
  if (out.tables.empty())
    return Status::Invalid("describes no table; each line is \"<table> <column> equals|list\"",
                           origin);
  return out;
}

bool HasUserTables(const std::string& db, const UserTables& tables) {
  auto d = Open(db, false);
  if (!d.ok() || tables.tables.empty()) return false;
  auto cols = Columns(d->get(), tables.tables[0].table, db);
  if (!cols.ok()) return false;
  for (const auto& c : *cols)
    if (c.name == tables.tables[0].column) return true;
  return false;
}

Result<UserRowsResult> RestoreUserRows(const std::string& image, const std::string& live,
                                       const UserTables& tables, const std::string& user,
                                       bool dry_run) {
  MV_ASSIGN_OR_RETURN(Db img, Open(image, false));
  MV_ASSIGN_OR_RETURN(Db dst, Open(live, !dry_run));
  UserRowsResult res;
  if (!dry_run) {
    char* err = nullptr;
    if (sqlite3_exec(dst.get(), "BEGIN IMMEDIATE", nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      return Status::Busy("cannot start a write transaction (" + m +
                              "): another writer held the database for a minute; run again",
                          live);
    }
  }
  auto fail = [&](Status st) -> Status {
    if (!dry_run) sqlite3_exec(dst.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    return st;
  };
  for (const auto& t : tables.tables) {
    MV_ASSIGN_OR_RETURN(auto icols, Columns(img.get(), t.table, image));
    if (icols.empty()) {
      res.missing_tables.push_back(t.table);
      continue;
    }
    if (std::none_of(icols.begin(), icols.end(),
                     [&](const Column& c) { return c.name == t.column; }))
      return fail(Status::Invalid("table " + t.table +
                                      " of the snapshot's database has no column " + t.column +
                                      " (user tables '" + tables.name + "')",
                                  image));
    auto lcols = Columns(dst.get(), t.table, live);
    if (!lcols.ok()) return fail(lcols.status());
    if (lcols->empty())
      return fail(Status::Invalid("the live database has no table " + t.table +
                                      " (the snapshot's has): its schema differs; restore the "
                                      "whole database, or give --user-tables without it",
                                  live));
    // The columns both have, and the live table's primary key among them.
    std::vector<std::string> shared, key;
    std::vector<std::pair<int, std::string>> pk;
    for (const auto& lc : *lcols) {
      bool in_img = std::any_of(icols.begin(), icols.end(),
                                [&](const Column& c) { return c.name == lc.name; });
      if (!in_img) continue;
      shared.push_back(lc.name);
      if (lc.pk > 0) pk.emplace_back(lc.pk, lc.name);
    }
    std::sort(pk.begin(), pk.end());
    for (const auto& [_, n] : pk) key.push_back(n);
    if (key.empty()) key = shared;  // no primary key: a row is present when an equal one is

    std::string list;
    for (const auto& c : shared) list += (list.empty() ? "" : ", ") + Quote(c);
    std::string where = t.match == UserTable::Match::kEquals
                            ? Quote(t.column) + " = ?1"
                            : "instr(" + Quote(t.column) + ", ?1) > 0";
    MV_ASSIGN_OR_RETURN(
        Stmt sel, Prepare(img.get(),
                          "SELECT " + list + " FROM " + Quote(t.table) + " WHERE " + where, image));
    sqlite3_bind_text(sel.get(), 1, user.c_str(), -1, SQLITE_TRANSIENT);
    std::string kwhere;
    for (size_t i = 0; i < key.size(); i++)
      kwhere += (i ? " AND " : "") + Quote(key[i]) + " IS ?" + std::to_string(i + 1);
    auto probe =
        Prepare(dst.get(), "SELECT " + list + " FROM " + Quote(t.table) + " WHERE " + kwhere, live);
    if (!probe.ok()) return fail(probe.status());
    std::string marks;
    for (size_t i = 0; i < shared.size(); i++) marks += i ? ", ?" : "?";
    auto ins =
        Prepare(dst.get(),
                "INSERT INTO " + Quote(t.table) + " (" + list + ") VALUES (" + marks + ")", live);
    if (!ins.ok()) return fail(ins.status());
    int rc;
    while ((rc = sqlite3_step(sel.get())) == SQLITE_ROW) {
      std::vector<Value> row;
      for (size_t i = 0; i < shared.size(); i++)
        row.emplace_back(sqlite3_value_dup(sqlite3_column_value(sel.get(), static_cast<int>(i))));
      auto col = std::find(shared.begin(), shared.end(), t.column) - shared.begin();
      if (t.match == UserTable::Match::kList && !ListHas(ValueText(row[col].get()), user)) continue;
      UserRow out;
      out.table = t.table;
      bool whole_row = key.size() == shared.size() && pk.empty();
      for (size_t i = 0; i < key.size(); i++) {
        size_t at = std::find(shared.begin(), shared.end(), key[i]) - shared.begin();
        if (!whole_row) out.key += (i ? ", " : "") + key[i] + "=" + ValueText(row[at].get());
      }
      if (whole_row) out.key = t.column + "=" + user + " (a row of a table without primary key)";
      sqlite3_reset(probe->get());
      for (size_t i = 0; i < key.size(); i++) {
        size_t at = std::find(shared.begin(), shared.end(), key[i]) - shared.begin();
        sqlite3_bind_value(probe->get(), static_cast<int>(i + 1), row[at].get());
      }
      int prc = sqlite3_step(probe->get());
      if (prc == SQLITE_ROW) {
        for (size_t i = 0; i < shared.size(); i++)
          if (!SameValue(row[i].get(), sqlite3_column_value(probe->get(), static_cast<int>(i))))
            out.columns.push_back(shared[i]);
        out.outcome = out.columns.empty() ? UserRow::Outcome::kPresent : UserRow::Outcome::kDiffers;
        (out.columns.empty() ? res.present : res.differs)++;
      } else if (prc != SQLITE_DONE) {
        return fail(
            Status::IOError("reading table " + t.table + ": " + sqlite3_errmsg(dst.get()), live));
      } else {
        if (!dry_run) {
          sqlite3_reset(ins->get());
          for (size_t i = 0; i < shared.size(); i++)
            sqlite3_bind_value(ins->get(), static_cast<int>(i + 1), row[i].get());
          if (sqlite3_step(ins->get()) != SQLITE_DONE)
            return fail(Status::Invalid("the live database refused a row of table " + t.table +
                                            " (" + out.key + "): " + sqlite3_errmsg(dst.get()) +
                                            "; nothing was inserted",
                                        live));
        }
        res.inserted++;
      }
      res.rows.push_back(std::move(out));
    }
    if (rc != SQLITE_DONE)
      return fail(
          Status::IOError("reading table " + t.table + ": " + sqlite3_errmsg(img.get()), image));
  }
  if (!dry_run) {
    char* err = nullptr;
    if (sqlite3_exec(dst.get(), "COMMIT", nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      return fail(Status::IOError("commit failed (" + m + "): nothing was inserted", live));
    }
  }
  return res;
}

}  // namespace mv::hooks
