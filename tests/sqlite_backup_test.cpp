// Specification of SQLite quiescing (hooks/sqlite_backup.h), against real SQLite databases and
// real second processes (fork) that write, read or hold locks while we copy.
#include "hooks/sqlite_backup.h"

#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>
#include <fstream>

#include "tests/sqlite_test_util.h"

namespace mv::hooks {
namespace {

using namespace mv::sqlite_test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int64_t kPrefill = 20000;

// events holds one row per committed transaction; counter.n is updated in the same transaction,
// so a consistent image has count(events) == counter.n.
void CreateEventsDb(const std::string& path, bool wal) {
  SQLite::Database d(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  if (wal) d.exec("PRAGMA journal_mode=WAL");
  d.exec("CREATE TABLE events(n INTEGER PRIMARY KEY, pad BLOB NOT NULL)");
  d.exec("CREATE TABLE counter(n INTEGER NOT NULL)");
  d.exec("BEGIN");
  d.exec("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<" +
         std::to_string(kPrefill) + ") INSERT INTO events SELECT i, randomblob(300) FROM s");
  d.exec("INSERT INTO counter VALUES(" + std::to_string(kPrefill) + ")");
  d.exec("COMMIT");
}

// The concurrent writer: commits one event per transaction until told to stop, pausing 1 ms
// between transactions like a busy application (a loop with no pause at all starves every
// rollback-mode reader, not only backups: SQLite readers poll for a free moment).
int WriterLoop(const std::string& db, Shared& s) {
  SQLite::Database d(db, SQLite::OPEN_READWRITE, 30000);
  int64_t n = s.committed.load();
  while (!s.stop.load()) {
    s.started = n + 1;
    d.exec("BEGIN IMMEDIATE");
    d.exec("INSERT INTO events VALUES(" + std::to_string(n + 1) + ", randomblob(300))");
    d.exec("UPDATE counter SET n = n + 1");
    d.exec("COMMIT");
    s.committed = ++n;
    std::this_thread::sleep_for(1ms);
  }
  return 0;
}

// Holds `sql` (a lock or a read transaction) until told to stop.
int HoldLoop(const std::string& db, const std::vector<std::string>& sql, Shared& s) {
  SQLite::Database d(db, SQLite::OPEN_READWRITE);
  for (auto& q : sql) d.exec(q);
  s.ready = 1;
  while (!s.stop.load()) std::this_thread::sleep_for(1ms);
  d.exec("COMMIT");
  return 0;
}

void ExpectSelfContainedImage(const std::string& img) {
  std::string bytes = ReadFile(img);
  ASSERT_GE(bytes.size(), 100u);
  EXPECT_TRUE(mailfiles::HasSqliteHeader(bytes));
  // Header bytes 18/19 are 1 for rollback journal, 2 for WAL (SQLite file format 1.3.4).
  EXPECT_EQ(bytes[18], 1) << "image still says WAL: it would need a -wal beside it";
  EXPECT_EQ(bytes[19], 1);
  EXPECT_FALSE(std::filesystem::exists(img + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(img + "-journal"));
}

void BackupUnderConcurrentWriter(bool wal, const SqliteBackupOptions& opts = {}) {
  ScratchDir dir;
  const std::string db = dir / "main.db";
  CreateEventsDb(db, wal);
  SharedBlock shared;
  shared->committed = shared->started = kPrefill;
  Child writer([&] { return WriterLoop(db, *shared); });
  ASSERT_TRUE(WaitFor([&] { return shared->committed.load() >= kPrefill + 200; }));

  std::vector<int64_t> image_counts;
  for (int round = 0; round < 5; ++round) {
    const std::string img = dir / ("image" + std::to_string(round) + ".db");
    int64_t committed_before = shared->committed.load();
    Status st = OnlineBackup(db, img, opts);
    int64_t started_after = shared->started.load();
    ASSERT_TRUE(st.ok()) << st.ToString();

    EXPECT_EQ(IntegrityCheck(img), "ok");
    int64_t rows = CountRows(img, "events");
    SQLite::Database image(img, SQLite::OPEN_READONLY);
    EXPECT_EQ(image.execAndGet("SELECT n FROM counter").getInt64(), rows)
        << "the image mixes two transactions";
    EXPECT_EQ(image.execAndGet("SELECT max(n) FROM events").getInt64(), rows);
    EXPECT_GE(rows, committed_before) << "image lost transactions committed before the backup";
    EXPECT_LE(rows, started_after) << "image holds rows the writer never committed";
    ExpectSelfContainedImage(img);
    image_counts.push_back(rows);
    std::this_thread::sleep_for(20ms);
  }
  shared->stop = 1;
  EXPECT_EQ(writer.Wait(), 0) << "the writer failed while we were copying";
  // The writer kept committing between and during backups: every image saw a newer state.
  for (size_t k = 1; k < image_counts.size(); ++k) EXPECT_GT(image_counts[k], image_counts[k - 1]);
  EXPECT_EQ(IntegrityCheck(db), "ok");
}

TEST(SqliteBackup, WalDatabaseUnderConcurrentWriterGivesConsistentCommittedImages) {
  BackupUnderConcurrentWriter(/*wal=*/true);
}

TEST(SqliteBackup, RollbackJournalDatabaseUnderConcurrentWriterGivesConsistentCommittedImages) {
  BackupUnderConcurrentWriter(/*wal=*/false);
}

// Copying a few pages per step restarts on every foreign commit; a busy writer must not make
// the backup run forever: past the budget it finishes in one step.
TEST(SqliteBackup, ChunkedBackupUnderConstantCommitsStillFinishesConsistent) {
  SqliteBackupOptions opts;
  opts.pages_per_step = 8;
  opts.busy_budget = 300ms;
  BackupUnderConcurrentWriter(/*wal=*/true, opts);
}

void LockedLongerThanBudgetIsBusy(bool wal, const std::vector<std::string>& hold_sql) {
  ScratchDir dir;
  const std::string db = dir / "locked.db";
  CreateEventsDb(db, wal);
  SharedBlock shared;
  Child holder([&] { return HoldLoop(db, hold_sql, *shared); });
  ASSERT_TRUE(WaitFor([&] { return shared->ready.load() == 1; }));

  SqliteBackupOptions opts;
  opts.busy_budget = 700ms;
  auto t0 = Clock::now();
  Status st = OnlineBackup(db, dir / "image.db", opts);
  auto waited = Clock::now() - t0;
  EXPECT_EQ(st.code(), Code::kBusy) << st.ToString();
  EXPECT_NE(st.ToString().find(db), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("locked"), std::string::npos) << st.message();
  EXPECT_GE(waited, 700ms);
  EXPECT_LT(waited, 5s);
  EXPECT_FALSE(std::filesystem::exists(dir / "image.db")) << "a failed backup leaves no image";

  shared->stop = 1;
  EXPECT_EQ(holder.Wait(), 0);
  Status again = OnlineBackup(db, dir / "image.db", opts);
  EXPECT_TRUE(again.ok()) << again.ToString();
}

TEST(SqliteBackup, DatabaseHeldUnderExclusiveLockLongerThanBudgetIsReportedBusyWithPath) {
  LockedLongerThanBudgetIsBusy(/*wal=*/false, {"BEGIN EXCLUSIVE"});
}

TEST(SqliteBackup, WalDatabaseInExclusiveLockingModeIsReportedBusyWithPath) {
  LockedLongerThanBudgetIsBusy(
      /*wal=*/true, {"PRAGMA locking_mode=EXCLUSIVE", "BEGIN", "UPDATE counter SET n = n"});
}

// A writer killed mid-transaction in rollback mode leaves a hot journal and a main file holding
// half-written pages. A read-only connection cannot roll it back; the backup then opens the
// database read-write so SQLite rolls back (as the application's next access would), and the
// image is the last committed state.
TEST(SqliteBackup, HotJournalOfACrashedWriterIsRolledBackAndTheImageIsTheLastCommit) {
  ScratchDir dir;
  const std::string db = dir / "main.db";
  CreateEventsDb(db, false);
  SharedBlock shared;
  Child crasher([&] {
    SQLite::Database d(db, SQLite::OPEN_READWRITE);
    d.exec("PRAGMA cache_size=2");  // spill modified pages into the main file before commit
    d.exec("PRAGMA synchronous=OFF");
    d.exec("BEGIN");
    d.exec("UPDATE events SET pad = zeroblob(300) WHERE n <= 4000");
    d.exec("UPDATE counter SET n = -1");
    shared->ready = 1;
    for (;;) std::this_thread::sleep_for(1s);
    return 0;
  });
  ASSERT_TRUE(WaitFor([&] { return shared->ready.load() == 1; }));
  crasher.Kill();
  ASSERT_TRUE(std::filesystem::exists(db + "-journal")) << "no hot journal: test set-up failed";
  {
    SQLite::Database raw(db, SQLite::OPEN_READONLY);
    EXPECT_THROW(raw.execAndGet("SELECT n FROM counter"), SQLite::Exception)
        << "a read-only reader could read past the hot journal: the fallback is not exercised";
  }

  Status st = OnlineBackup(db, dir / "image.db");
  ASSERT_TRUE(st.ok()) << st.ToString();
  const std::string img = dir / "image.db";
  EXPECT_EQ(IntegrityCheck(img), "ok");
  SQLite::Database image(img, SQLite::OPEN_READONLY);
  EXPECT_EQ(image.execAndGet("SELECT n FROM counter").getInt64(), kPrefill);
  EXPECT_EQ(image.execAndGet("SELECT count(*) FROM events WHERE pad = zeroblob(300)").getInt64(), 0)
      << "the image holds pages of the transaction that never committed";
}

TEST(SqliteBackup, NonDatabaseFilesAreNotDetectedAsSqlite) {
  ScratchDir dir;
  std::ofstream(dir / "notes.txt") << "hello, this is mail\n";
  std::ofstream(dir / "almost.db") << "SQLite format 3 but not a database, no NUL here";
  std::ofstream(dir / "short") << "SQLite";
  EXPECT_FALSE(mailfiles::LooksLikeSqlite(dir / "notes.txt"));
  EXPECT_FALSE(mailfiles::LooksLikeSqlite(dir / "almost.db"));
  EXPECT_FALSE(mailfiles::LooksLikeSqlite(dir / "short"));
  EXPECT_FALSE(mailfiles::LooksLikeSqlite(dir / "missing"));
  EXPECT_FALSE(mailfiles::LooksLikeSqlite(dir.path()));
  Status st = OnlineBackup(dir / "almost.db", dir / "image.db");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.ToString().find("almost.db"), std::string::npos);

  CreateEventsDb(dir / "real.db", false);
  EXPECT_TRUE(mailfiles::LooksLikeSqlite(dir / "real.db"));
  EXPECT_TRUE(mailfiles::HasSqliteHeader(ReadFile(dir / "real.db").substr(0, 16)));
  EXPECT_FALSE(mailfiles::HasSqliteHeader(std::string("SQLite format 3", 15)));
}

TEST(SqliteBackup, SideFilesAreRecognizedOnlyBesideADatabase) {
  EXPECT_TRUE(mailfiles::IsSqliteSideFile("main.db-wal"));
  EXPECT_TRUE(mailfiles::IsSqliteSideFile("main.db-shm"));
  EXPECT_TRUE(mailfiles::IsSqliteSideFile("main.db-journal"));
  EXPECT_FALSE(mailfiles::IsSqliteSideFile("main.db"));
  EXPECT_FALSE(mailfiles::IsSqliteSideFile("-wal"));
  EXPECT_FALSE(mailfiles::IsSqliteSideFile("wal"));

  ScratchDir dir;
  CreateEventsDb(dir / "main.db", false);
  std::ofstream(dir / "trip-journal") << "my diary";
  EXPECT_TRUE(mailfiles::IsSqliteSideFileOf(dir.path(), "main.db-wal"));
  EXPECT_TRUE(mailfiles::IsSqliteSideFileOf(dir.path(), "main.db-journal"));
  EXPECT_FALSE(mailfiles::IsSqliteSideFileOf(dir.path(), "trip-journal"))
      << "a user's file must be kept";
  EXPECT_FALSE(mailfiles::IsSqliteSideFileOf(dir.path(), "main.db"));
}

TEST(SqliteBackup, StatKeyChangesWithWalCommitsThatLeaveTheMainFileUntouched) {
  ScratchDir dir;
  const std::string db = dir / "main.db";
  CreateEventsDb(db, true);
  SQLite::Database conn(db, SQLite::OPEN_READWRITE);  // kept open: no checkpoint on close
  conn.exec("INSERT INTO events VALUES(-1, x'00')");
  auto k1 = StatSqlite(db);
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  std::this_thread::sleep_for(20ms);
  conn.exec("INSERT INTO events VALUES(-2, x'00')");
  auto k2 = StatSqlite(db);
  ASSERT_TRUE(k2.ok());
  EXPECT_TRUE(k2->wal_exists);
  EXPECT_EQ(k1->db_mtime_ns, k2->db_mtime_ns) << "WAL commit touched the main file after all";
  EXPECT_EQ(k1->db_size, k2->db_size);
  EXPECT_NE(*k1, *k2) << "a commit in WAL mode must change the key";
  auto k3 = StatSqlite(db);
  EXPECT_EQ(*k2, *k3) << "no commit, same key";
  EXPECT_EQ(StatSqlite(dir / "missing.db").status().code(), Code::kNotFound);
}

void CreateNumbersDb(const std::string& path, bool wal, int rows, int start) {
  SQLite::Database d(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  if (wal) d.exec("PRAGMA journal_mode=WAL");
  d.exec("CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY KEY)");
  d.exec("DELETE FROM t");
  for (int k = 0; k < rows; ++k) d.exec("INSERT INTO t VALUES(" + std::to_string(start + k) + ")");
}

// A reader process opens a read transaction, records what it sees before and after the
// restore inside that transaction, then what it sees after ending it.
int ReaderLoop(const std::string& db, Shared& s) {
  SQLite::Database d(db, SQLite::OPEN_READONLY, 30000);
  d.exec("BEGIN");
  s.seen[0] = d.execAndGet("SELECT count(*) FROM t").getInt64();
  s.ready = 1;
  while (!s.stop.load()) std::this_thread::sleep_for(1ms);
  s.seen[1] = d.execAndGet("SELECT count(*) FROM t").getInt64();
  d.exec("COMMIT");
  s.seen[2] = d.execAndGet("SELECT count(*) FROM t").getInt64();
  return 0;
}

TEST(SqliteBackup, RestoreIntoLiveWalDatabaseWhileAReaderHoldsAReadTransaction) {
  ScratchDir dir;
  const std::string live = dir / "live.db", image = dir / "image.db";
  CreateNumbersDb(live, true, 10, 0);
  CreateNumbersDb(image, false, 250, 1000);
  SharedBlock shared;
  Child reader([&] { return ReaderLoop(live, *shared); });
  ASSERT_TRUE(WaitFor([&] { return shared->ready.load() == 1; }));

  Status st = RestoreIntoLive(image, live);
  ASSERT_TRUE(st.ok()) << st.ToString();
  shared->stop = 1;
  EXPECT_EQ(reader.Wait(), 0);
  EXPECT_EQ(shared->seen[0].load(), 10);
  EXPECT_EQ(shared->seen[1].load(), 10) << "the reader's snapshot changed under it";
  EXPECT_EQ(shared->seen[2].load(), 250) << "after its transaction the reader sees the restore";
  EXPECT_EQ(CountRows(live, "t"), 250);
  EXPECT_EQ(IntegrityCheck(live), "ok");
  SQLite::Database d(live, SQLite::OPEN_READONLY);
  EXPECT_EQ(d.execAndGet("PRAGMA journal_mode").getString(), "wal") << "live keeps its mode";
}

TEST(SqliteBackup, RestoreIntoLiveRollbackDatabaseWaitsForTheReaderThenCommitsWhole) {
  ScratchDir dir;
  const std::string live = dir / "live.db", image = dir / "image.db";
  CreateNumbersDb(live, false, 10, 0);
  CreateNumbersDb(image, false, 250, 1000);
  SharedBlock shared;
  Child reader([&] { return ReaderLoop(live, *shared); });
  ASSERT_TRUE(WaitFor([&] { return shared->ready.load() == 1; }));

  SqliteBackupOptions short_budget;
  short_budget.busy_budget = 300ms;
  Status busy = RestoreIntoLive(image, live, short_budget);
  EXPECT_EQ(busy.code(), Code::kBusy) << busy.ToString();
  EXPECT_NE(busy.ToString().find(live), std::string::npos);

  std::thread release([&] {
    std::this_thread::sleep_for(400ms);
    shared->stop = 1;
  });
  auto t0 = Clock::now();
  Status st = RestoreIntoLive(image, live);
  release.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GE(Clock::now() - t0, 300ms) << "the restore cannot commit while the reader reads";
  EXPECT_EQ(reader.Wait(), 0);
  EXPECT_EQ(shared->seen[0].load(), 10);
  EXPECT_EQ(shared->seen[1].load(), 10);
  EXPECT_EQ(CountRows(live, "t"), 250);
  EXPECT_EQ(IntegrityCheck(live), "ok");
}

TEST(SqliteBackup, RestoreIntoWalDatabaseWithAnotherPageSizeHoldsTheImagesRows) {
  ScratchDir dir;
  const std::string live = dir / "live.db", image = dir / "image.db";
  CreateNumbersDb(live, true, 10, 0);
  {
    SQLite::Database d(image, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    d.exec("PRAGMA page_size=1024");
  }
  CreateNumbersDb(image, false, 20, 0);
  Status st = RestoreIntoLive(image, live);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(CountRows(live, "t"), 20);
  EXPECT_EQ(IntegrityCheck(live), "ok");
  SQLite::Database d(live, SQLite::OPEN_READONLY);
  EXPECT_EQ(d.execAndGet("PRAGMA journal_mode").getString(), "wal");
}

TEST(SqliteBackup, RestoreRefusesToOverwriteANonDatabaseFile) {
  ScratchDir dir;
  CreateNumbersDb(dir / "image.db", false, 5, 0);
  std::ofstream(dir / "live.db") << "not a database";
  Status st = RestoreIntoLive(dir / "image.db", dir / "live.db");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadFile(dir / "live.db"), "not a database");
}

}  // namespace
}  // namespace mv::hooks
