// Sources that change while `mailvault backup` runs (issue #2 "Bad input": files vanishing,
// unreadable or growing during the walk; "SQLite": a database under a concurrent writer
// process), through the real binary. Nothing committed may be lost or torn, and everything
// that could not be read is reported (exit 3) while the rest is still committed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "child_process.h"
#include "test_util.h"
#include "tests/sqlite_test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;
constexpr int kNobody = 65534;

nlohmann::json Json(const std::string& out) { return nlohmann::json::parse(out); }

// path -> message of every reported problem.
std::map<std::string, std::string> Problems(const nlohmann::json& backup) {
  std::map<std::string, std::string> m;
  for (const auto& p : backup["problems"]) m[p["path"].get<std::string>()] = p["message"];
  return m;
}

class LiveSource : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0); }
  std::string repo() const { return repo_ / "r"; }
  std::vector<std::string> BackupArgs(const std::string& source) const {
    return {"backup", "--repo", repo(), "--json", "--source", source};
  }
  std::string RestoreDiff(const std::map<std::string, std::string>& want, const std::string& source = "mail") {
    TempDir out("mvlive-out");
    RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()});
    if (r.exit_code != 0) return "restore failed: " + r.err;
    return DiffTrees(want, ListTree(out / source));
  }
  TempDir vol_{"mvlive-vol"}, repo_{"mvlive-repo"};
};

TEST_F(LiveSource, FilesDeletedDuringTheBackupAreReportedAndEverythingElseIsCommitted) {
  // The big file is read first (manifest order, one reader, slow compression so that reading
  // it lasts a while); the small ones are deleted while it is read.
  WriteRandomFile(vol_ / "mail/a-big", 64u << 20);
  for (int i = 0; i < 20; i++) WriteFile(vol_ / ("mail/z-" + std::to_string(10 + i)), MessageText(i, 2000));
  auto args = BackupArgs("mail=" + vol_ / "mail");
  args.insert(args.end(), {"--threads", "1", "--compression", "12"});
  BackgroundMailvault bg(args);
  auto reading = [&] {
    for (const auto& e : stdfs::directory_iterator(repo() + "/tmp"))
      if (e.path().filename().string().starts_with("pack-")) return true;
    return false;
  };
  ASSERT_TRUE(PollUntil([&] { return reading() || bg.exited(); }));
  for (int i = 0; i < 10; i++) stdfs::remove(vol_ / ("mail/z-" + std::to_string(10 + i)));
  ASSERT_EQ(bg.Wait(), 3) << bg.err();
  auto report = Json(bg.out());
  auto problems = Problems(report);
  EXPECT_EQ(problems.size(), 10u) << report["problems"];
  for (int i = 0; i < 10; i++)
    EXPECT_NE(problems[vol_ / ("mail/z-" + std::to_string(10 + i))].find("vanished"), std::string::npos);
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}).out);
  ASSERT_EQ(snaps.size(), 1u) << "the partial snapshot is committed";
  EXPECT_EQ(snaps[0]["problems"], 10);
  EXPECT_EQ(RestoreDiff(ListTree(vol_ / "mail")), "") << "holds exactly the files that remained";
}

TEST_F(LiveSource, FilesTheBackupCannotReadAreReportedAndEverythingElseIsCommitted) {
  // Root reads everything, so this backup runs as nobody, as a non-root agent would.
  for (const auto* d : {&vol_, &repo_}) ::chmod(d->path().c_str(), 0755);
  ASSERT_EQ(::chown(repo_.path().c_str(), kNobody, kNobody), 0);
  stdfs::remove_all(repo());
  ASSERT_EQ(BackgroundMailvault({"init", "--repo", repo()}, kNobody).Wait(), 0);
  WriteFile(vol_ / "mail/readable", "ok\n", 0644);
  WriteFile(vol_ / "mail/secret", "root only\n", 0600);
  WriteFile(vol_ / "mail/private/inside", "root only\n", 0644);
  ::chmod((vol_ / "mail").c_str(), 0755);
  ::chmod((vol_ / "mail/private").c_str(), 0700);

  BackgroundMailvault bg(BackupArgs("mail=" + vol_ / "mail"), kNobody);
  ASSERT_EQ(bg.Wait(), 3) << bg.err();
  auto problems = Problems(Json(bg.out()));
  EXPECT_EQ(problems.size(), 2u) << bg.out();
  EXPECT_NE(problems[vol_ / "mail/secret"].find("Permission denied"), std::string::npos);
  EXPECT_NE(problems[vol_ / "mail/secret"].find("check permissions"), std::string::npos);
  EXPECT_NE(problems[vol_ / "mail/private"].find("cannot open directory: Permission denied"), std::string::npos);
  auto want = ListTree(vol_ / "mail");
  want.erase("secret");
  want.erase("private/inside");
  EXPECT_EQ(RestoreDiff(want), "");
}

TEST_F(LiveSource, FileGrowingWhileReadIsStoredConsistentlyOrReported) {
  std::string log = vol_ / "mail/grow.log";
  WriteFile(log, std::string(16u << 20, 'x'));
  std::atomic<bool> stop{false};
  std::thread appender([&] {   // appends numbered lines, as a log or an mbox grows
    int fd = ::open(log.c_str(), O_WRONLY | O_APPEND);
    for (int i = 0; !stop; i++) {
      std::string line = "line " + std::to_string(i) + " " + std::string(4000, 'y') + "\n";
      if (::write(fd, line.data(), line.size()) < 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ::close(fd);
  });
  RunResult b = RunMailvault(BackupArgs("mail=" + vol_ / "mail"));
  stop = true;
  appender.join();
  ASSERT_TRUE(b.exit_code == 0 || b.exit_code == 3) << b.err << b.out;
  auto problems = Problems(Json(b.out));
  EXPECT_EQ(Json(b.out)["files_read"], 1) << "one file, however many times it was re-read";
  if (b.exit_code == 3) {   // it changed under every read: stored as last read and said so
    ASSERT_EQ(problems.size(), 1u) << b.out;
    EXPECT_NE(problems[log].find("changed while being read"), std::string::npos) << problems[log];
  } else {
    ASSERT_EQ(b.exit_code, 0) << b.err;
  }
  auto ls = Json(RunMailvault({"ls", "--repo", repo(), "--json", "mail/grow.log"}).out);
  ASSERT_EQ(ls.size(), 1u);
  uint64_t size = ls[0]["size"];
  EXPECT_GE(size, 16u << 20);
  TempDir out("mvlive-out");
  ASSERT_EQ(RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()}).exit_code, 0);
  std::string restored = ReadFile(out / "mail/grow.log");
  EXPECT_EQ(restored.size(), size) << "the manifest size is the size of the stored content";
  EXPECT_TRUE(ReadFile(log).compare(0, size, restored) == 0) << "the stored content is a prefix the file really had";
}

// --- SQLite under a concurrent writer process -------------------------------------------------

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

class LiveSqlite : public LiveSource, public ::testing::WithParamInterface<const char*> {};

TEST_P(LiveSqlite, DatabaseUnderAWriterProcessRestoresIntactWithARowCountItCommitted) {
  std::string db = vol_ / "data/main.db";
  stdfs::create_directories(vol_ / "data");
  {
    SQLite::Database d(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    d.exec(std::string("PRAGMA journal_mode=") + GetParam());
    d.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)");
    d.exec("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<" + std::to_string(kPrefill) +
           ") INSERT INTO t(pad) SELECT randomblob(500) FROM s");
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
    if (p == "data/main.db") EXPECT_EQ(e.value("sqlite", false), true);
  }
  TempDir out("mvlive-out");
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()});
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
