#include "verify/sqlite_diff.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "storage/mailfiles/sqlite_file.h"

namespace mv::verify {
namespace {

constexpr int kBusyTimeoutMs = 5000;

// One SQLite value. Ordering follows SQLite's ORDER BY with BINARY collation:
// NULL < numbers (integers and reals compared by value) < text (bytes) < blobs (bytes).
struct Value {
  int type = SQLITE_NULL;
  int64_t i = 0;
  double d = 0;
  std::string bytes;
};

int Class(const Value& v) {
  switch (v.type) {
    case SQLITE_NULL:
      return 0;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
      return 1;
    case SQLITE_TEXT:
      return 2;
    default:
      return 3;
  }
}

int Compare(const Value& a, const Value& b) {
  int ca = Class(a), cb = Class(b);
  if (ca != cb) return ca < cb ? -1 : 1;
  if (ca == 0) return 0;
  if (ca == 1) {
    if (a.type == SQLITE_INTEGER && b.type == SQLITE_INTEGER) return a.i < b.i ? -1 : a.i > b.i;
    long double x = a.type == SQLITE_INTEGER ? (long double)a.i : a.d;  // exact for int64
    long double y = b.type == SQLITE_INTEGER ? (long double)b.i : b.d;
    return x < y ? -1 : x > y;
  }
  int c = a.bytes.compare(b.bytes);  // memcmp then length, like BINARY
  return c < 0 ? -1 : c > 0;
}

int CompareKeys(const std::vector<Value>& a, const std::vector<Value>& b) {
  for (size_t k = 0; k < a.size(); ++k) {
    if (int c = Compare(a[k], b[k])) return c;
  }
  return 0;
}

Value ReadValue(SQLite::Statement& st, int col) {
  Value v;
  SQLite::Column c = st.getColumn(col);
  v.type = c.getType();
  if (v.type == SQLITE_INTEGER)
    v.i = c.getInt64();
  else if (v.type == SQLITE_FLOAT)
    v.d = c.getDouble();
  else if (v.type == SQLITE_TEXT || v.type == SQLITE_BLOB) {
    v.bytes.assign(static_cast<const char*>(c.getBlob()), static_cast<size_t>(c.getBytes()));
  }
  return v;
}

// FNV-1a 64: a stable short fingerprint so a secret key can be matched across reports.
std::string ShortHash(const Value& v) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const void* p, size_t n) {
    for (size_t k = 0; k < n; ++k)
      h = (h ^ static_cast<const unsigned char*>(p)[k]) * 1099511628211ULL;
  };
  mix(&v.type, sizeof v.type);
  if (v.type == SQLITE_INTEGER)
    mix(&v.i, sizeof v.i);
  else if (v.type == SQLITE_FLOAT)
    mix(&v.d, sizeof v.d);
  else
    mix(v.bytes.data(), v.bytes.size());
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%012llx", static_cast<unsigned long long>(h >> 16));
  return buf;
}

std::string Display(const Value& v, bool sensitive) {
  if (sensitive && v.type != SQLITE_NULL) return ShortHash(v);
  char buf[40];
  switch (v.type) {
    case SQLITE_NULL:
      return "NULL";
    case SQLITE_INTEGER:
      return std::to_string(v.i);
    case SQLITE_FLOAT:
      std::snprintf(buf, sizeof buf, "%.17g", v.d);
      return buf;
    case SQLITE_TEXT:
      return v.bytes.size() > 200 ? v.bytes.substr(0, 200) + "..." : v.bytes;
    default: {
      std::string out = "x'";
      for (size_t k = 0; k < std::min<size_t>(v.bytes.size(), 32); ++k) {
        std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(v.bytes[k]));
        out += buf;
      }
      return out + (v.bytes.size() > 32 ? "..'" : "'");
    }
  }
}

std::string Quote(const std::string& ident) {
  std::string q = "\"";
  for (char c : ident) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

Status FromSqlite(const SQLite::Exception& e, const std::string& what, const std::string& path) {
  int primary = e.getErrorCode() & 0xff;
  std::string msg = what + ": " + e.what();
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return Status::Busy(msg + " (another process held a lock for " +
                            std::to_string(kBusyTimeoutMs / 1000) +
                            " s; run verify again when the "
                            "writer is idle)",
                        path);
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return Status::Corruption(msg + " (the database is damaged; run PRAGMA integrity_check)", path);
  }
  if (primary == SQLITE_CANTOPEN) {
    return Status::IOError(msg +
                               " (check the file is readable; a WAL-mode database also needs "
                               "its -shm and -wal to exist or be creatable, so its directory "
                               "must be writable even for reading)",
                           path);
  }
  return Status::IOError(msg, path);
}

// Opens `path` read-only. SQLite cannot open a WAL database whose directory this process
// cannot write (a reader must create the -shm): the sidecar's volumes are mounted read-only.
// With an empty -wal every commit is in the main file, and the database is opened as immutable
// (mailfiles::ImmutableUri). Commits still in the -wal cannot be read that way: the error says
// what to do.
std::unique_ptr<SQLite::Database> OpenReadOnly(const std::string& path) {
  try {
    auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY, kBusyTimeoutMs);
    db->execAndGet("PRAGMA schema_version");  // SQLite opens lazily: the -shm is made here
    return db;
  } catch (const SQLite::Exception& e) {
    int primary = e.getErrorCode() & 0xff;
    if ((primary != SQLITE_CANTOPEN && primary != SQLITE_READONLY) ||
        !mailfiles::HeaderSaysWal(path) || mailfiles::DirectoryWritable(path))
      throw;
    if (mailfiles::WalHasContent(path))
      throw SQLite::Exception(
          std::string(e.what()) +
              " (a WAL database with commits still in its -wal, in a directory this process "
              "cannot write: mount the volume read-write, or checkpoint it in a pre-hook with "
              "PRAGMA wal_checkpoint(TRUNCATE))",
          e.getErrorCode());
    return std::make_unique<SQLite::Database>(mailfiles::ImmutableUri(path),
                                              SQLite::OPEN_READONLY | SQLITE_OPEN_URI);
  }
}

struct TableInfo {
  std::vector<std::string> columns;
  std::vector<std::string> key;  // primary key columns in key order, or {"rowid"}
  bool is_virtual = false;
};

// One side of a diff: a read-only connection holding one read transaction for its lifetime.
class Side {
 public:
  static Result<std::unique_ptr<Side>> Open(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
      return Status::FromErrno(errno, "open SQLite database", path);
    try {
      auto side = std::unique_ptr<Side>(new Side(path));
      side->db_->exec("BEGIN");  // deferred: the read transaction starts at the first read
      side->LoadSchema();
      return side;
    } catch (const SQLite::Exception& e) {
      return FromSqlite(e, "reading the schema of the SQLite database", path);
    }
  }
  ~Side() {
    try {
      db_->exec("COMMIT");
    } catch (...) {
    }  // read-only: nothing to commit, ends the read
  }
  const std::string& path() const { return path_; }
  const std::map<std::string, TableInfo>& tables() const { return tables_; }
  SQLite::Database& db() { return *db_; }

 private:
  explicit Side(const std::string& path) : path_(path), db_(OpenReadOnly(path)) {}

  void LoadSchema() {
    SQLite::Statement q(*db_,
                        "SELECT name, coalesce(sql,'') FROM sqlite_master WHERE type='table' "
                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
    while (q.executeStep()) {
      TableInfo& t = tables_[q.getColumn(0).getString()];
      std::string sql = q.getColumn(1).getString();
      t.is_virtual = sql.size() >= 14 && strncasecmp(sql.c_str(), "CREATE VIRTUAL", 14) == 0;
    }
    for (auto& [name, t] : tables_) {
      if (t.is_virtual) continue;
      SQLite::Statement cols(*db_, "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid");
      cols.bind(1, name);
      std::vector<std::pair<int, std::string>> pk;
      while (cols.executeStep()) {
        t.columns.push_back(cols.getColumn(0).getString());
        if (int n = cols.getColumn(1).getInt()) pk.emplace_back(n, t.columns.back());
      }
      std::sort(pk.begin(), pk.end());
      for (auto& p : pk) t.key.push_back(p.second);
      if (t.key.empty()) t.key.push_back("rowid");
    }
  }

  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
  std::map<std::string, TableInfo> tables_;
};

// Iterates one table in key order: key values first, then the compared columns.
class Cursor {
 public:
  Cursor(SQLite::Database& db, const std::string& table, const std::vector<std::string>& key,
         const std::vector<std::string>& cols)
      : nkey_(key.size()), ncol_(cols.size()) {
    std::string sql = "SELECT ", order;
    for (auto& k : key) {
      sql += Quote(k) + ", ";
      order += (order.empty() ? "" : ", ") + Quote(k) + " COLLATE BINARY";
    }
    for (auto& c : cols) sql += Quote(c) + ", ";
    sql.resize(sql.size() - 2);
    sql += " FROM " + Quote(table) + " ORDER BY " + order;
    st_ = std::make_unique<SQLite::Statement>(db, sql);
  }
  // Advances; false at the end. Throws std::runtime_error if keys are not strictly increasing
  // (a duplicate or an ordering this merge cannot follow), so no bogus diff is produced.
  bool Next() {
    if (!st_->executeStep()) return has_ = false;
    std::vector<Value> key(nkey_);
    for (size_t k = 0; k < nkey_; ++k) key[k] = ReadValue(*st_, int(k));
    if (has_ && CompareKeys(key_, key) >= 0) {
      throw std::runtime_error("key is not unique or not ordered; cannot diff this table by key");
    }
    key_ = std::move(key);
    vals_.resize(ncol_);
    for (size_t c = 0; c < ncol_; ++c) vals_[c] = ReadValue(*st_, int(nkey_ + c));
    ++count_;
    return has_ = true;
  }
  const std::vector<Value>& key() const { return key_; }
  const std::vector<Value>& vals() const { return vals_; }
  int64_t count() const { return count_; }

 private:
  size_t nkey_, ncol_;
  std::unique_ptr<SQLite::Statement> st_;
  bool has_ = false;
  std::vector<Value> key_, vals_;
  int64_t count_ = 0;
};

RowKey MakeKey(const std::vector<Value>& key, const std::vector<std::string>& names) {
  RowKey k;
  for (size_t i = 0; i < key.size(); ++i)
    k.values.push_back(Display(key[i], IsSensitiveColumn(names[i])));
  return k;
}

std::vector<std::string> Minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (auto& x : a)
    if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
  return out;
}

// Merges both sides of one table in key order. `b`/`o` may be null for a side missing the table.
void MergeTable(TableDiff& d, Cursor* b, Cursor* o, const std::vector<std::string>& cols,
                size_t cap) {
  bool hb = b && b->Next(), ho = o && o->Next();
  while (hb || ho) {
    int c = !hb ? 1 : !ho ? -1 : CompareKeys(b->key(), o->key());
    if (c < 0) {
      if (d.removed.size() < cap)
        d.removed.push_back(MakeKey(b->key(), d.key_columns));
      else
        d.truncated = true;
      ++d.removed_count;
      hb = b->Next();
    } else if (c > 0) {
      if (d.added.size() < cap)
        d.added.push_back(MakeKey(o->key(), d.key_columns));
      else
        d.truncated = true;
      ++d.added_count;
      ho = o->Next();
    } else {
      ChangedRow row;
      for (size_t k = 0; k < cols.size(); ++k) {
        const Value &x = b->vals()[k], &y = o->vals()[k];
        if (Compare(x, y) != 0 || Class(x) != Class(y)) row.columns.push_back(cols[k]);
      }
      if (!row.columns.empty()) {
        ++d.changed_count;
        row.key = MakeKey(b->key(), d.key_columns);
        if (d.changed.size() < cap)
          d.changed.push_back(std::move(row));
        else
          d.truncated = true;
      }
      hb = b->Next();
      ho = o->Next();
    }
  }
  d.rows_base = b ? b->count() : 0;
  d.rows_other = o ? o->count() : 0;
}

// Diffs one table; a table that cannot be diffed by key goes to `skipped` with the reason.
Status DiffTable(const std::string& name, Side& base, Side& other, const SqliteDiffOptions& opts,
                 SqliteDiff& out) {
  auto ib = base.tables().find(name), io = other.tables().find(name);
  const TableInfo* tb = ib == base.tables().end() ? nullptr : &ib->second;
  const TableInfo* to = io == other.tables().end() ? nullptr : &io->second;
  if ((tb && tb->is_virtual) || (to && to->is_virtual)) {
    out.skipped.push_back(name + ": virtual table, not compared");
    return Status::Ok();
  }
  TableDiff d;
  d.table = name;
  d.missing_in_base = !tb;
  d.missing_in_other = !to;
  if (!tb && !to) {
    out.tables.push_back(std::move(d));
    return Status::Ok();
  }
  const TableInfo& ref = tb ? *tb : *to;
  d.key_columns = ref.key;
  std::vector<std::string> cols = ref.columns;
  if (tb && to) {
    if (tb->key != to->key) {
      out.skipped.push_back(name + ": primary key differs between the two databases");
      return Status::Ok();
    }
    d.columns_only_in_base = Minus(tb->columns, to->columns);
    d.columns_only_in_other = Minus(to->columns, tb->columns);
    cols = Minus(tb->columns, d.columns_only_in_base);
  }
  try {
    std::optional<Cursor> cb, co;
    if (tb) cb.emplace(base.db(), name, d.key_columns, cols);
    if (to) co.emplace(other.db(), name, d.key_columns, cols);
    MergeTable(d, cb ? &*cb : nullptr, co ? &*co : nullptr, cols, opts.max_listed_rows);
  } catch (const SQLite::Exception& e) {
    return FromSqlite(e, "reading table '" + name + "' of " + base.path() + " and " + other.path(),
                      other.path());
  } catch (const std::runtime_error& e) {
    out.skipped.push_back(name + ": " + e.what());
    return Status::Ok();
  }
  out.tables.push_back(std::move(d));
  return Status::Ok();
}

nlohmann::json KeysJson(const std::vector<RowKey>& keys) {
  auto a = nlohmann::json::array();
  for (auto& k : keys) a.push_back(k.values);
  return a;
}

}  // namespace

bool IsSensitiveColumn(std::string_view column) {
  std::string lower(column);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"password", "secret", "token"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

bool TableDiff::identical() const {
  return !missing_in_base && !missing_in_other && added_count == 0 && removed_count == 0 &&
         changed_count == 0 && columns_only_in_base.empty() && columns_only_in_other.empty();
}

bool SqliteDiff::identical() const {
  return std::all_of(tables.begin(), tables.end(),
                     [](const TableDiff& t) { return t.identical(); });
}

Result<IntegrityResult> CheckSqliteIntegrity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "open SQLite database", path);
  if (!S_ISREG(st.st_mode))
    return Status::Invalid("not a regular file; cannot check it as SQLite", path);
  IntegrityResult r;
  // Read as immutable (OpenReadOnly), a database that a writer changes meanwhile can look
  // damaged: a check that saw the file change is made again.
  for (int attempt = 0;; attempt++) {
    r.problems.clear();
    struct stat before;
    if (::stat(path.c_str(), &before) != 0)
      return Status::FromErrno(errno, "open SQLite database", path);
    try {
      auto db = OpenReadOnly(path);
      SQLite::Statement q(*db, "PRAGMA integrity_check(100)");
      while (q.executeStep()) r.problems.push_back(q.getColumn(0).getString());
    } catch (const SQLite::Exception& e) {
      int primary = e.getErrorCode() & 0xff;
      if (primary != SQLITE_CORRUPT && primary != SQLITE_NOTADB) {
        return FromSqlite(e, "PRAGMA integrity_check", path);
      }
      r.problems.push_back(e.what());
    }
    struct stat after;
    bool same = ::stat(path.c_str(), &after) == 0 && after.st_ino == before.st_ino &&
                after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
                after.st_mtim.tv_nsec == before.st_mtim.tv_nsec;
    if (same || attempt == 4) break;
  }
  r.ok = r.problems.size() == 1 && r.problems[0] == "ok";
  if (r.ok) r.problems.clear();
  return r;
}

Result<SqliteDiff> DiffSqlite(const std::string& base_path, const std::string& other_path,
                              const SqliteDiffOptions& opts) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Side> base, Side::Open(base_path));
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Side> other, Side::Open(other_path));
  std::set<std::string> names(opts.tables.begin(), opts.tables.end());
  if (names.empty()) {
    for (auto& [n, t] : base->tables()) names.insert(n);
    for (auto& [n, t] : other->tables()) names.insert(n);
  }
  SqliteDiff out;
  for (const std::string& name : names) {
    MV_RETURN_IF_ERROR(DiffTable(name, *base, *other, opts, out));
  }
  return out;
}

Result<std::vector<TableCount>> SqliteTableCounts(const std::string& path,
                                                  const SqliteDiffOptions& opts) {
  MV_ASSIGN_OR_RETURN(std::unique_ptr<Side> side, Side::Open(path));
  std::vector<TableCount> out;
  try {
    for (auto& [name, info] : side->tables()) {
      bool wanted = opts.tables.empty() ||
                    std::find(opts.tables.begin(), opts.tables.end(), name) != opts.tables.end();
      if (!wanted || info.is_virtual) continue;
      int64_t n = side->db().execAndGet("SELECT count(*) FROM " + Quote(name)).getInt64();
      out.push_back({name, n});
    }
  } catch (const SQLite::Exception& e) {
    return FromSqlite(e, "counting rows", path);
  }
  return out;
}

nlohmann::json ToJson(const SqliteDiff& diff) {
  nlohmann::json j;
  j["identical"] = diff.identical();
  j["skipped"] = diff.skipped;
  j["tables"] = nlohmann::json::array();
  for (const TableDiff& t : diff.tables) {
    nlohmann::json changed = nlohmann::json::array();
    for (auto& c : t.changed) changed.push_back({{"key", c.key.values}, {"columns", c.columns}});
    j["tables"].push_back({{"table", t.table},
                           {"key_columns", t.key_columns},
                           {"identical", t.identical()},
                           {"missing_in_base", t.missing_in_base},
                           {"missing_in_other", t.missing_in_other},
                           {"rows_base", t.rows_base},
                           {"rows_other", t.rows_other},
                           {"added_count", t.added_count},
                           {"removed_count", t.removed_count},
                           {"changed_count", t.changed_count},
                           {"added", KeysJson(t.added)},
                           {"removed", KeysJson(t.removed)},
                           {"changed", changed},
                           {"columns_only_in_base", t.columns_only_in_base},
                           {"columns_only_in_other", t.columns_only_in_other},
                           {"truncated", t.truncated}});
  }
  return j;
}

}  // namespace mv::verify
