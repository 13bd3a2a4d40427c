// The sidecar mounts volumes read-only; a WAL database there has no -shm and SQLite cannot open
// it normally. mailvault still takes a consistent copy (docs/FORMAT.md §7.4).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "test_util.h"

namespace mv::testing {
namespace {

int Sql(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  sqlite3_open(db.c_str(), &h);
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(h);
  return rc;
}

class ReadOnlyMount : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Sql(src_ / "main.db",
                  "PRAGMA journal_mode=WAL; CREATE TABLE user(email TEXT PRIMARY KEY);"
                  "INSERT INTO user VALUES('a@example.org'),('b@example.org');"),
              SQLITE_OK);
    if (Shell("mount --bind '" + src_.path() + "' '" + ro_.path() +
              "' 2>&1 && mount -o remount,ro,bind '" + ro_.path() + "' 2>&1")
            .exit_code != 0)
      GTEST_SKIP() << "bind mounts are not permitted here (needs root); the sidecar case cannot be "
                      "reproduced";
    mounted_ = true;
    ASSERT_EQ(RunMailvault({"init", "--repo", repo_ / "r"}).exit_code, 0);
  }
  void TearDown() override {
    if (mounted_) Shell("umount '" + ro_.path() + "'");
  }
  TempDir src_{"mvrosrc"}, ro_{"mvro"}, repo_{"mvrorepo"}, out_{"mvroout"};
  bool mounted_ = false;
};

TEST_F(ReadOnlyMount, CheckpointedWalDatabaseIsCopiedConsistently) {
  RunResult b =
      RunMailvault({"backup", "--repo", repo_ / "r", "--source", "data=" + ro_.path(), "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  ASSERT_EQ(RunMailvault(
                {"restore", "--repo", repo_ / "r", "--snapshot", "latest", "--target", out_.path()})
                .exit_code,
            0);
  EXPECT_EQ(Shell("sqlite3 '" + out_ / "data/main.db" +
                  "' 'pragma integrity_check; select count(*) from user'")
                .out,
            "ok\n2\n");
}

// The nightly report verifies against the live database through the same read-only mount: it
// must be read (as immutable: every commit is in the main file), not reported unreadable, and a
// user deleted live since the backup must be named.
TEST_F(ReadOnlyMount, VerifyComparesWithTheLiveWalDatabaseThroughTheReadOnlyMount) {
  RunResult b =
      RunMailvault({"backup", "--repo", repo_ / "r", "--source", "data=" + ro_.path(), "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  RunResult v = RunMailvault({"verify", "--repo", repo_ / "r", "--json"});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  auto j = nlohmann::json::parse(v.out);
  ASSERT_EQ(j["databases"].size(), 1u) << j.dump();
  EXPECT_EQ(j["databases"][0]["live"], "ok") << j["databases"][0].dump();
  // A user deleted live: the same comparison names the difference.
  ASSERT_EQ(Sql(src_ / "main.db", "DELETE FROM user WHERE email='b@example.org'"), SQLITE_OK);
  ASSERT_FALSE(std::filesystem::exists(src_ / "main.db-shm")) << "the writer checkpointed";
  v = RunMailvault({"verify", "--repo", repo_ / "r", "--json"});
  j = nlohmann::json::parse(v.out);
  ASSERT_EQ(j["databases"].size(), 1u) << j.dump();
  EXPECT_EQ(j["databases"][0]["live"], "ok") << j["databases"][0].dump();
  EXPECT_NE(j["databases"][0].dump().find("b@example.org"), std::string::npos)
      << "the deleted row is named: " << j["databases"][0].dump();
}

TEST_F(ReadOnlyMount, UncheckpointedWalIsReportedNotCopiedRaw) {
  // A writer holding the database open keeps its commits in -wal (no checkpoint yet).
  sqlite3* w = nullptr;
  ASSERT_EQ(sqlite3_open((src_ / "main.db").c_str(), &w), SQLITE_OK);
  sqlite3_exec(w, "PRAGMA wal_autocheckpoint=0; INSERT INTO user VALUES('c@example.org');", nullptr,
               nullptr, nullptr);
  std::string wal = ReadFile(src_ / "main.db-wal");
  ASSERT_GT(wal.size(), 0u);
  sqlite3_close(w);  // checkpoints and removes -wal/-shm; put the uncheckpointed state back
  WriteFile(src_ / "main.db-wal", wal);
  Shell("rm -f '" + src_ / "main.db-shm" + "'");
  RunResult b =
      RunMailvault({"backup", "--repo", repo_ / "r", "--source", "data=" + ro_.path(), "--json"});
  EXPECT_EQ(b.exit_code, 3) << b.err;
  auto j = nlohmann::json::parse(b.out);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_NE(j["problems"][0]["message"].get<std::string>().find("read-write"), std::string::npos)
      << j.dump();
}

// A repository on a read-only mount (a restore host mounting the backup disk read-only): a
// command that writes says the repository is read-only, naming it and what to do, instead of the
// lock's temp file; commands that only read still work.
TEST_F(ReadOnlyMount, ARepositoryOnAReadOnlyMountSaysSoAndStillReads) {
  TempDir rw("mvrorw"), rorepo("mvrorepo-ro");
  ASSERT_EQ(RunMailvault({"init", "--repo", rw / "r"}).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"backup", "--repo", rw / "r", "--source", "data=" + src_.path()}).exit_code, 0);
  ASSERT_EQ(Shell("mount --bind '" + rw.path() + "' '" + rorepo.path() +
                  "' && mount -o remount,ro,bind '" + rorepo.path() + "'")
                .exit_code,
            0);
  RunResult b = RunMailvault({"backup", "--repo", rorepo / "r", "--source", "data=" + src_.path()});
  RunResult s = RunMailvault({"snapshots", "--repo", rorepo / "r"});
  Shell("umount '" + rorepo.path() + "'");
  EXPECT_EQ(b.exit_code, 1) << b.err;
  EXPECT_NE(b.err.find(rorepo / "r: repository is read-only"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("remount it read-write"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find(".tmp-"), std::string::npos) << "no temp file name: " << b.err;
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("1 snapshot(s)"), std::string::npos) << s.out;
}

}  // namespace
}  // namespace mv::testing
