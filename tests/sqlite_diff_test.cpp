// Specification of the SQLite part of verify (verify/sqlite_diff.h), on a Mailu-like admin
// database built with real SQLite.
#include "verify/sqlite_diff.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/sqlite_test_util.h"

namespace mv::verify {
namespace {

using namespace mv::sqlite_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const char* kAlicePassword = "{BLF-CRYPT}$2b$12$aliceOLDhashvalue";
const char* kAliceNewPassword = "{BLF-CRYPT}$2b$12$aliceNEWhashvalue";
const char* kTokenPassword = "tokenhash-0123456789";
const char* kApiSecret = "s3cr3t-api-key-value";

// The tables of Mailu's main.db that matter here, plus a secret-keyed and a rowid-only table.
void CreateMailuDb(const std::string& path) {
  SQLite::Database d(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  d.exec("PRAGMA synchronous=OFF");  // test speed only; durability is not under test here
  d.exec(R"sql(
    CREATE TABLE domain(name VARCHAR(80) NOT NULL PRIMARY KEY, max_users INTEGER, comment TEXT);
    CREATE TABLE user(email VARCHAR(255) NOT NULL PRIMARY KEY, password VARCHAR(255) NOT NULL,
                      quota_bytes INTEGER, enabled BOOLEAN, domain_name VARCHAR(80),
                      displayed_name TEXT);
    CREATE TABLE alias(email VARCHAR(255) NOT NULL PRIMARY KEY, destination TEXT, wildcard BOOLEAN);
    CREATE TABLE token(id INTEGER PRIMARY KEY AUTOINCREMENT, user_email TEXT, password TEXT, ip TEXT);
    CREATE TABLE fetch(id INTEGER PRIMARY KEY, user_email TEXT, host TEXT, password TEXT);
    CREATE TABLE api_secret(secret_token TEXT PRIMARY KEY, note TEXT);
    CREATE TABLE log(msg TEXT);
    INSERT INTO domain VALUES ('example.org', 100, 'main'), ('example.net', 10, NULL);
    INSERT INTO user VALUES ('bob@example.org', '{BLF-CRYPT}bobhash', 1000, 1, 'example.org', 'Bob'),
                            ('dave@example.net', '{BLF-CRYPT}davehash', 1000, 1, 'example.net', 'Dave');
    INSERT INTO alias VALUES ('postmaster@example.org', 'alice@example.org', 0);
    INSERT INTO token(user_email, password, ip) VALUES ('alice@example.org', 'tok1', '10.0.0.1');
    INSERT INTO fetch VALUES (1, 'alice@example.org', 'imap.example.com', 'fetchpw');
    INSERT INTO log VALUES ('one'), ('two'), ('three');
  )sql");
  SQLite::Statement u(
      d, "INSERT INTO user VALUES ('alice@example.org', ?, 5000, 1, 'example.org', 'Alice')");
  u.bind(1, kAlicePassword);
  u.exec();
  SQLite::Statement t(
      d, "INSERT INTO token(user_email, password, ip) VALUES ('bob@example.org', ?, '10.0.0.2')");
  t.bind(1, kTokenPassword);
  t.exec();
  SQLite::Statement s(d, "INSERT INTO api_secret VALUES (?, 'monitoring')");
  s.bind(1, kApiSecret);
  s.exec();
}

void Exec(const std::string& db, const std::string& sql) {
  SQLite::Database d(db, SQLite::OPEN_READWRITE);
  d.exec(sql);
}

const TableDiff& Table(const SqliteDiff& diff, const std::string& name) {
  for (auto& t : diff.tables)
    if (t.table == name) return t;
  static TableDiff none;
  ADD_FAILURE() << "table " << name << " not in diff";
  return none;
}

std::vector<std::vector<std::string>> Keys(const std::vector<RowKey>& keys) {
  std::vector<std::vector<std::string>> out;
  for (auto& k : keys) out.push_back(k.values);
  return out;
}

class SqliteDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CreateMailuDb(base);
    fs::copy_file(base, other);
  }
  ScratchDir dir;
  const std::string base = dir / "recorded.db";
  const std::string other = dir / "restored.db";
};

TEST_F(SqliteDiffTest, IdenticalDatabasesDiffEmptyOverEveryUserTable) {
  auto diff = DiffSqlite(base, other);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_TRUE(diff->identical());
  std::vector<std::string> names;
  for (auto& t : diff->tables) names.push_back(t.table);
  EXPECT_EQ(names, (std::vector<std::string>{"alias", "api_secret", "domain", "fetch", "log",
                                             "token", "user"}))
      << "sqlite_sequence (internal) must not be diffed";
  EXPECT_EQ(Table(*diff, "user").rows_base, 3);
  EXPECT_EQ(Table(*diff, "user").rows_other, 3);
  EXPECT_EQ(Table(*diff, "user").key_columns, std::vector<std::string>{"email"});
  EXPECT_EQ(Table(*diff, "log").key_columns, std::vector<std::string>{"rowid"});
}

TEST_F(SqliteDiffTest, ReportsRemovedAddedAndChangedRowsByPrimaryKey) {
  Exec(other,
       "DELETE FROM user WHERE email='bob@example.org';"
       "INSERT INTO user VALUES ('carol@example.org', '{BLF-CRYPT}carolhash', 1, 1, 'example.org', "
       "'Carol');"
       "UPDATE user SET quota_bytes=9999, displayed_name='Dave D.' WHERE email='dave@example.net';"
       "DELETE FROM log WHERE msg='two';"
       "UPDATE alias SET destination='root@example.org';");
  auto diff = DiffSqlite(base, other);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_FALSE(diff->identical());
  const TableDiff& user = Table(*diff, "user");
  EXPECT_EQ(Keys(user.removed), (std::vector<std::vector<std::string>>{{"bob@example.org"}}));
  EXPECT_EQ(Keys(user.added), (std::vector<std::vector<std::string>>{{"carol@example.org"}}));
  ASSERT_EQ(user.changed.size(), 1u);
  EXPECT_EQ(user.changed[0].key.values, std::vector<std::string>{"dave@example.net"});
  EXPECT_EQ(user.changed[0].columns, (std::vector<std::string>{"quota_bytes", "displayed_name"}));
  EXPECT_EQ(user.removed_count, 1);
  EXPECT_EQ(user.added_count, 1);
  EXPECT_EQ(user.changed_count, 1);
  const TableDiff& log = Table(*diff, "log");
  EXPECT_EQ(Keys(log.removed), (std::vector<std::vector<std::string>>{{"2"}})) << "rowid key";
  EXPECT_EQ(Table(*diff, "alias").changed.at(0).columns, std::vector<std::string>{"destination"});
  EXPECT_TRUE(Table(*diff, "domain").identical());
}

TEST_F(SqliteDiffTest, PasswordChangeIsReportedByColumnNameOnlyAndNoSecretValueIsEverOutput) {
  Exec(other, std::string("UPDATE user SET password='") + kAliceNewPassword +
                  "' WHERE email='alice@example.org';"
                  "UPDATE token SET password='tokenhash-NEW' WHERE user_email='bob@example.org';"
                  "DELETE FROM api_secret;");
  auto diff = DiffSqlite(base, other);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  const TableDiff& user = Table(*diff, "user");
  ASSERT_EQ(user.changed.size(), 1u);
  EXPECT_EQ(user.changed[0].key.values, std::vector<std::string>{"alice@example.org"});
  EXPECT_EQ(user.changed[0].columns, std::vector<std::string>{"password"});
  EXPECT_EQ(Table(*diff, "token").changed.at(0).key.values, std::vector<std::string>{"2"})
      << "an integer id key of the token table is not a secret";
  // A key column that is itself a secret is shown as a short stable hash.
  const TableDiff& api = Table(*diff, "api_secret");
  ASSERT_EQ(api.removed.size(), 1u);
  const std::string hashed = api.removed[0].values.at(0);
  EXPECT_EQ(hashed.rfind("#", 0), 0u) << hashed;
  EXPECT_EQ(DiffSqlite(base, other)->tables, diff->tables) << "hash is stable across runs";

  std::string json = ToJson(*diff).dump();
  for (const char* secret : {kAlicePassword, kAliceNewPassword, kTokenPassword, "tokenhash-NEW",
                             kApiSecret, "aliceOLD", "aliceNEW", "s3cr3t"}) {
    EXPECT_EQ(json.find(secret), std::string::npos) << secret << " leaked into " << json;
  }
  EXPECT_NE(json.find("\"password\""), std::string::npos) << "the column name is reported";
}

TEST_F(SqliteDiffTest, MissingTablesAndColumnsAreReportedNotSkipped) {
  Exec(other, "DROP TABLE fetch; ALTER TABLE domain ADD COLUMN transport TEXT;");
  SqliteDiffOptions opts;
  opts.tables = {"fetch", "domain", "relay"};
  auto diff = DiffSqlite(base, other, opts);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  const TableDiff& fetch = Table(*diff, "fetch");
  EXPECT_TRUE(fetch.missing_in_other);
  EXPECT_EQ(fetch.rows_base, 1);
  EXPECT_EQ(fetch.removed_count, 1);
  EXPECT_EQ(Table(*diff, "domain").columns_only_in_other, std::vector<std::string>{"transport"});
  EXPECT_EQ(Table(*diff, "domain").changed_count, 0) << "common columns are still compared";
  const TableDiff& relay = Table(*diff, "relay");
  EXPECT_TRUE(relay.missing_in_base && relay.missing_in_other) << "a named table is not skipped";
  EXPECT_EQ(diff->tables.size(), 3u) << "only the named tables";
}

TEST_F(SqliteDiffTest, TableCountsListEveryUserTableWithItsRows) {
  Exec(other, "DELETE FROM user WHERE email='bob@example.org'");
  auto counts = SqliteTableCounts(other);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(*counts, (std::vector<TableCount>{{"alias", 1},
                                              {"api_secret", 1},
                                              {"domain", 2},
                                              {"fetch", 1},
                                              {"log", 3},
                                              {"token", 2},
                                              {"user", 2}}));
  SqliteDiffOptions only_user;
  only_user.tables = {"user"};
  EXPECT_EQ(SqliteTableCounts(other, only_user).value(), (std::vector<TableCount>{{"user", 2}}));
}

TEST_F(SqliteDiffTest, LongListsAreCappedButCountsStayComplete) {
  Exec(other,
       "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<500) "
       "INSERT INTO log SELECT 'row ' || i FROM s;");
  SqliteDiffOptions opts;
  opts.max_listed_rows = 10;
  auto diff = DiffSqlite(base, other, opts);
  ASSERT_TRUE(diff.ok());
  const TableDiff& log = Table(*diff, "log");
  EXPECT_EQ(log.added_count, 500);
  EXPECT_EQ(log.added.size(), 10u);
  EXPECT_TRUE(log.truncated);
  EXPECT_EQ(log.rows_other, 503);
}

TEST_F(SqliteDiffTest, IntegrityCheckPassesOnAGoodCopyAndFailsOnFlippedBytes) {
  Exec(base,
       "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<3000) "
       "INSERT INTO log SELECT printf('message %08d with some text to fill pages', i) FROM s;");
  auto good = CheckSqliteIntegrity(base);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->ok);
  EXPECT_TRUE(good->problems.empty());

  const std::string bad = dir / "corrupt.db";
  fs::copy_file(base, bad);
  int64_t pages = fs::file_size(bad) / 4096;
  ASSERT_GT(pages, 10);
  {
    std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp((pages / 2) * 4096 + 8);  // the cell pointer array of a b-tree page
    std::string junk(64, '\xff');
    f.write(junk.data(), junk.size());
  }
  auto r = CheckSqliteIntegrity(bad);
  ASSERT_TRUE(r.ok()) << "a damaged database is a failed check, not an error: "
                      << r.status().ToString();
  EXPECT_FALSE(r->ok);
  EXPECT_FALSE(r->problems.empty());

  std::ofstream(dir / "text.db") << "not a database at all, just text long enough to be read";
  auto notdb = CheckSqliteIntegrity(dir / "text.db");
  ASSERT_TRUE(notdb.ok());
  EXPECT_FALSE(notdb->ok);
  EXPECT_EQ(CheckSqliteIntegrity(dir / "missing.db").status().code(), Code::kNotFound);
  EXPECT_EQ(DiffSqlite(base, dir / "missing.db").status().code(), Code::kNotFound);
}

TEST_F(SqliteDiffTest, DiffLeavesTheLiveFileUntouched) {
  struct stat before, after;
  ASSERT_EQ(::stat(other.c_str(), &before), 0);
  std::string bytes = ReadFile(other);
  std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(DiffSqlite(base, other).ok());
  ASSERT_TRUE(CheckSqliteIntegrity(other).ok());
  ASSERT_EQ(::stat(other.c_str(), &after), 0);
  EXPECT_EQ(ReadFile(other), bytes);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
  EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
  EXPECT_FALSE(fs::exists(other + "-journal"));
}

// The live database is read in ONE read transaction: a writer in another process keeps
// committing during the diff (WAL), and both tables are seen as of the same commit.
TEST(SqliteDiffLive, LiveWalDatabaseIsReadInOneTransactionWhileAWriterCommits) {
  ScratchDir dir;
  const std::string live = dir / "live.db", snap = dir / "snapshot.db";
  {
    SQLite::Database d(live, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    d.exec("PRAGMA journal_mode=WAL");
    d.exec(
        "CREATE TABLE a(n INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b(n INTEGER PRIMARY KEY, v "
        "TEXT);");
    d.exec(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<150000) "
        "INSERT INTO a SELECT i, hex(randomblob(16)) FROM s;"
        "INSERT INTO b SELECT * FROM a;");
    d.exec("VACUUM INTO '" + snap + "'");
  }
  SharedBlock shared;
  Child writer([&] {
    SQLite::Database d(live, SQLite::OPEN_READWRITE, 30000);
    for (int64_t n = 150001; !shared->stop.load(); ++n) {
      d.exec("BEGIN IMMEDIATE; INSERT INTO a VALUES(" + std::to_string(n) +
             ", 'x');"
             "INSERT INTO b VALUES(" +
             std::to_string(n) + ", 'x'); COMMIT;");
      shared->committed = n;
    }
    return 0;
  });
  ASSERT_TRUE(WaitFor([&] { return shared->committed.load() > 150010; }));

  int64_t committed_before = shared->committed.load();
  auto diff = DiffSqlite(snap, live);
  int64_t committed_after = shared->committed.load();
  shared->stop = 1;
  EXPECT_EQ(writer.Wait(), 0);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_GT(committed_after, committed_before) << "the writer was blocked during the diff";
  const TableDiff &a = Table(*diff, "a"), &b = Table(*diff, "b");
  EXPECT_EQ(a.rows_other, b.rows_other) << "tables were read at different commits";
  EXPECT_EQ(a.added_count, a.rows_other - 150000);
  EXPECT_GE(a.rows_other, committed_before);
  EXPECT_EQ(a.removed_count + a.changed_count, 0);
}

}  // namespace
}  // namespace mv::verify
