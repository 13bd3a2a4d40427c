// SQLite under a concurrent writer PROCESS through a real `mailvault backup`
// "SQLite"): the restored database passes PRAGMA integrity_check and holds a row count the
// writer committed (between what was committed before and attempted after the backup), in WAL
// and rollback-journal modes; -wal/-shm/-journal files are never stored.
#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_util.h"
#include "tests/sqlite_test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

nlohmann::json Json(const std::string& out) { return nlohmann::json::parse(out); }

constexpr int64_t kPrefill = 20000, kPerTxn = 10;

// Commits kPerTxn rows per transaction until told to stop; a busy application's pace.
int Writer(const std::string& db, sqlite_test::Shared& s) {
  SQLite::Database d(db, SQLite::OPEN_READWRITE, 30000);
  while (!s.stop.load()) {
    s.started = s.committed + kPerTxn;
    d.exec("BEGIN IMMEDIATE");
    for (int i = 0; i < kPerTxn; i++) d.exec("INSERT INTO t(pad) VALUES(randomblob(500))");
    d.exec("COMMIT");
    s.committed += kPerTxn;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return 0;
}

class LiveSqlite : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0); }
  std::string repo() const { return repo_ / "r"; }
  std::vector<std::string> BackupArgs(const std::string& source) const {
    return {"backup", "--repo", repo(), "--json", "--source", source};
  }
  TempDir vol_{"mvsqlite-vol"}, repo_{"mvsqlite-repo"};
};

TEST_P(LiveSqlite, DatabaseUnderAWriterProcessRestoresIntactWithARowCountItCommitted) {
  std::string db = vol_ / "data/main.db";
  stdfs::create_directories(vol_ / "data");
  {
    SQLite::Database d(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    d.exec(std::string("PRAGMA journal_mode=") + GetParam());
    d.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)");
    d.exec("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<" +
           std::to_string(kPrefill) + ") INSERT INTO t(pad) SELECT randomblob(500) FROM s");
  }
  sqlite_test::SharedBlock shared;
  shared->committed = shared->started = kPrefill;
  sqlite_test::Child writer([&] { return Writer(db, *shared); });
  ASSERT_TRUE(sqlite_test::WaitFor([&] { return shared->committed >= kPrefill + 200; }));
  int64_t before = shared->committed;
  RunResult b = RunMailvault(BackupArgs("data=" + vol_ / "data"));
  int64_t after = shared->started;
  shared->stop = 1;
  EXPECT_EQ(writer.Wait(), 0) << "the writer failed while mailvault copied";
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Json(b.out)["sqlite_databases"], 1);
  EXPECT_GT(after, before) << "the writer kept committing during the backup";

  auto ls = Json(RunMailvault({"ls", "--repo", repo(), "--json"}).out);
  for (const auto& e : ls) {
    std::string p = e["path"];
    EXPECT_FALSE(p.ends_with("-wal") || p.ends_with("-shm") || p.ends_with("-journal")) << p;
    if (p == "data/main.db") {
      EXPECT_EQ(e.value("sqlite", false), true);
    }
  }
  TempDir out("mvlive-out");
  RunResult r =
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string restored = out / "data/main.db";
  EXPECT_EQ(sqlite_test::IntegrityCheck(restored), "ok");
  int64_t rows = sqlite_test::CountRows(restored, "t");
  EXPECT_GE(rows, before) << "rows committed before the backup are missing";
  EXPECT_LE(rows, after) << "rows the writer never committed";
  EXPECT_EQ(rows % kPerTxn, 0) << "a transaction is torn";
}

// DELETE is SQLite's default rollback journal; PERSIST keeps a -journal file beside the
// database at all times, so its absence from the snapshot is not luck.
INSTANTIATE_TEST_SUITE_P(JournalModes, LiveSqlite, ::testing::Values("WAL", "DELETE", "PERSIST"));

}  // namespace
}  // namespace mv::testing
