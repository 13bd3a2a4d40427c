// `mailvault prune` (retention/prune.h, docs/FORMAT.md §8 "Prune", §9): it gives the space back,
// every kept snapshot restores exactly, and neither a SIGKILL nor a power cut at any moment, nor
// a backup or a reader running alongside, loses data.
//
// Snapshots are removed before a prune by deleting their manifests (snapshots/ID) directly, as
// `mailvault forget` will do once it lands (it is written in parallel with prune).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agent/restorer/restore.h"
#include "child_process.h"
#include "retention/prune.h"
#include "storage/fault_env.h"
#include "storage/lock.h"
#include "storage/repository.h"
#include "test_util.h"
#include "verify/check.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;
using Tree = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

// Incompressible bytes, deterministic in `seed`, so packs have the size of their content.
std::string Bytes(uint32_t seed, size_t n) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    for (size_t k = 0; k < 8 && i + k < n; k++) s[i + k] = static_cast<char>(x >> (8 * k));
  }
  return s;
}

// Version `v` of a source tree: files v*step .. v*step+count-1 (file i always has the same
// bytes), so consecutive versions share most files and every backup's packs mix blobs that
// later versions keep with blobs only this one has.
void WriteVersion(const std::string& dir, int v, int count, int step, size_t file_bytes) {
  stdfs::create_directories(dir + "/sub");
  for (int i = v * step; i < v * step + count; i++)
    WriteFile(dir + (i % 3 ? "/f" : "/sub/f") + std::to_string(i), Bytes(uint32_t(i), file_bytes));
}

uint64_t PackBytes(const std::string& repo) { return DirBytes(repo + "/packs"); }

class PruneTest : public ::testing::Test {
 protected:
  std::string Dir(const std::string& name) const { return work_ / name; }

  // Backs up `src` (source "mail") into `repo`; returns the snapshot ID.
  std::string Backup(const std::string& repo, const std::string& src,
                     const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"backup", "--repo", repo, "--json", "--source", "mail=" + src};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    if (r.exit_code != 0) return "";
    return Json(r)["snapshot"];
  }

  // A repository with `versions` snapshots of WriteVersion trees; the first `forget` of them are
  // removed (their manifests deleted). kept_ maps each kept snapshot to its tree.
  void Build(const std::string& repo, int versions, int forget, int count, int step,
             size_t file_bytes) {
    ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
    for (int v = 0; v < versions; v++) {
      std::string src = Dir("v" + std::to_string(v));
      if (!stdfs::exists(src)) WriteVersion(src, v, count, step, file_bytes);
      std::string id = Backup(repo, src, build_extra_);
      ASSERT_FALSE(id.empty());
      if (v < forget)
        stdfs::remove(repo + "/snapshots/" + id);
      else
        kept_[id] = src;
    }
  }

  // Extra backup options for Build (a test that needs a known pack layout passes --threads 1).
  std::vector<std::string> build_extra_;

  // "" when every kept snapshot restores byte-exact, else what went wrong.
  std::string RestoreAll(const std::string& repo) {
    std::string bad;
    for (const auto& [id, src] : kept_) {
      TempDir out("mvprune-out");
      RunResult r = RunMailvault(
          {"restore", "--repo", repo, "--snapshot", id, "--target", out / "t", "--json"});
      if (r.exit_code != 0) bad += "restore " + id + " failed: " + r.out + r.err + "\n";
      std::string diff = DiffTrees(ListTree(src), ListTree(out / "t/mail"));
      if (!diff.empty()) bad += "snapshot " + id + " differs: " + diff + "\n";
    }
    return bad;
  }

  // `check` (with --read-data when asked) finds no error; warnings are allowed.
  void ExpectChecks(const std::string& repo, bool read_data, const std::string& when) {
    std::vector<std::string> args = {"check", "--repo", repo, "--json"};
    if (read_data) args.push_back("--read-data");
    RunResult r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << when << "\n" << r.out << r.err;
  }

  nlohmann::json Prune(const std::string& repo, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"prune", "--repo", repo, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.exit_code == 0 ? Json(r) : nlohmann::json::object();
  }

  // A fresh repository holding only the kept snapshots' trees, backed up in the same order.
  uint64_t FreshSize() {
    std::string fresh = Dir("fresh");
    EXPECT_EQ(RunMailvault({"init", "--repo", fresh}).exit_code, 0);
    std::vector<std::string> srcs;
    for (const auto& [id, src] : kept_) srcs.push_back(src);
    std::sort(srcs.begin(), srcs.end());
    for (const auto& src : srcs) Backup(fresh, src);
    return PackBytes(fresh);
  }

  TempDir work_{"mvprune"};
  std::map<std::string, std::string> kept_;  // snapshot ID -> the tree it holds
};

TEST_F(PruneTest, AfterSnapshotsAreRemovedItChecksCleanRestoresExactlyAndShrinksToAFreshRepo) {
  std::string repo = Dir("repo");
  Build(repo, 5, 3, 12, 4, 256 << 10);  // 5 versions of 12 x 256 KiB, the first 3 removed
  uint64_t before = PackBytes(repo);
  RunResult dry = RunMailvault({"prune", "--repo", repo, "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("dry run, nothing changed"), std::string::npos) << dry.out;
  EXPECT_EQ(PackBytes(repo), before) << "a dry run changed the packs";

  nlohmann::json j = Prune(repo);
  EXPECT_EQ(j["snapshots"], 2);
  EXPECT_GT(j["deleted"]["packs"].get<int>() + j["repacked"]["packs"].get<int>(), 0) << j.dump();
  uint64_t after = PackBytes(repo), fresh = FreshSize();
  EXPECT_EQ(after, j["size_after"].get<uint64_t>());
  EXPECT_LT(after, before);
  EXPECT_LE(double(after), 1.15 * double(fresh)) << "before " << before << " after " << after;
  ExpectChecks(repo, true, "after prune");
  EXPECT_EQ(RestoreAll(repo), "");
  // Nothing left to do: a second prune changes nothing.
  nlohmann::json again = Prune(repo);
  EXPECT_EQ(again["deleted"]["packs"], 0);
  EXPECT_EQ(again["repacked"]["packs"], 0);
  EXPECT_EQ(PackBytes(repo), after);
}

TEST_F(PruneTest, RefusesAndChangesNothingWhenAUsedBlobIsMissingFromTheIndex) {
  std::string repo = Dir("repo");
  Build(repo, 3, 1, 6, 2, 64 << 10);
  // The index files go, as if damaged beyond reading: every used blob is "not in the index".
  for (const auto& e : stdfs::directory_iterator(repo + "/index")) stdfs::remove(e.path());
  uint64_t before = PackBytes(repo);
  RunResult r = RunMailvault({"prune", "--repo", repo});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("mailvault check"), std::string::npos) << r.err;
  EXPECT_EQ(PackBytes(repo), before);
}

TEST_F(PruneTest, BadOptionsAreUsageErrorsNamingTheValue) {
  std::string repo = Dir("repo");
  ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
  for (auto args : std::vector<std::vector<std::string>>{{"--max-unused", "five"},
                                                         {"--max-unused", "120%"},
                                                         {"--max-repack-size", "2Q"},
                                                         {"--retry-lock", "soon"}}) {
    std::vector<std::string> all = {"prune", "--repo", repo};
    all.insert(all.end(), args.begin(), args.end());
    RunResult r = RunMailvault(all);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_NE(r.err.find(args[1]), std::string::npos) << r.err;
  }
}

// Holding the lock in this process, as a running backup would.
TEST_F(PruneTest, RetryLockWaitsForAHeldLockAndWithoutItPruneFailsAtOnceNamingTheHolder) {
  std::string repo = Dir("repo");
  Build(repo, 2, 1, 4, 2, 16 << 10);
  auto lock = storage::RepoLock::AcquireExclusive(repo, "backup");
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  auto t0 = Clock::now();
  RunResult r = RunMailvault({"prune", "--repo", repo});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(r.err.find("pid " + std::to_string(::getpid())), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("backup since"), std::string::npos) << r.err;

  BackgroundMailvault prune({"prune", "--repo", repo, "--retry-lock", "60s"});
  BackgroundMailvault backup(
      {"backup", "--repo", repo, "--source", "mail=" + Dir("v1"), "--retry-lock", "1m"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(prune.exited()) << "prune did not wait for the lock: " << prune.err();
  EXPECT_FALSE(backup.exited()) << "backup did not wait for the lock: " << backup.err();
  lock->reset();  // the "backup" finishes
  EXPECT_EQ(prune.Wait(), 0) << prune.err();
  EXPECT_EQ(backup.Wait(), 0) << backup.err();
  EXPECT_NE(prune.err().find("waiting for the lock: repository is locked: held by pid " +
                             std::to_string(::getpid())),
            std::string::npos)
      << prune.err();
  EXPECT_NE(backup.err().find("waiting for the lock"), std::string::npos) << backup.err();
  ExpectChecks(repo, true, "after both");
}

TEST_F(PruneTest, SigkillAtAnyMomentLeavesARepositoryThatChecksRestoresAndPrunesToTheEnd) {
  // As big as the test's time allows: a prune of it runs for about half a second here (about
  // 55 MB of packs, one copy at a time on disk).
  std::string base = Dir("base");
  Build(base, 6, 3, 24, 6, 1 << 20);
  // The duration of an uninterrupted prune, measured the way the kills below are timed.
  std::string whole = Dir("whole");
  stdfs::copy(base, whole, stdfs::copy_options::recursive);
  auto t0 = Clock::now();
  BackgroundMailvault calibrate({"prune", "--repo", whole, "--max-unused", "0%"});
  ASSERT_EQ(calibrate.Wait(), 0) << calibrate.err();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t want = PackBytes(whole);
  stdfs::remove_all(whole);
  std::printf("[ prune ] an uninterrupted prune took %.2f s (%llu -> %llu bytes of packs)\n", secs,
              (unsigned long long)PackBytes(base), (unsigned long long)want);
  // A prune's duration varies from run to run (cache, load): a kill that lands after the prune
  // already ended is not counted, and the spread is shrunk until every kill lands inside a run.
  constexpr int kKills = 22;
  int killed_midway = 0;
  int attempts = 0;
  while (killed_midway < kKills && attempts < 4 * kKills) {
    attempts++;
    std::string repo = Dir("kill");
    stdfs::copy(base, repo, stdfs::copy_options::recursive);
    // Spread over the whole run, from its start to its end.
    auto delay = std::chrono::microseconds(int64_t(secs * 1e6 * (killed_midway + 0.5) / kKills));
    std::string when = "SIGKILL after " + std::to_string(delay.count() / 1000) + " ms";
    SCOPED_TRACE(when);
    bool midway = false;
    {
      BackgroundMailvault p({"prune", "--repo", repo, "--max-unused", "0%"});
      std::this_thread::sleep_for(delay);
      midway = !p.exited();
      p.Kill();
    }
    if (midway) {
      killed_midway++;
    } else {
      secs *= 0.8;  // this run was faster than the calibration
    }
    ExpectChecks(repo, false, when);
    EXPECT_EQ(RestoreAll(repo), "") << when;
    Prune(repo, {"--max-unused", "0%"});
    EXPECT_LE(PackBytes(repo), want + want / 50) << when;
    stdfs::remove_all(repo);
    if (::testing::Test::HasFailure()) break;
  }
  std::printf("[ prune ] %d of %d attempts killed a running prune\n", killed_midway, attempts);
  EXPECT_EQ(killed_midway, kKills) << "the kills did not fall inside the prune";
}

// A power cut at each sync point of a prune (storage::FaultEnv, as tests/power_loss_test.cpp
// does for a backup: the fake is only the power cut; files, prune, check and restore are real).
TEST_F(PruneTest, PowerLossAtEverySyncPointLeavesACleanRepositoryWithEveryKeptSnapshot) {
  std::string base = Dir("base");
  Build(base, 4, 2, 6, 2, 96 << 10);
  auto run = [&](const std::string& repo, storage::FaultEnv* env) {
    auto r = storage::Repository::Open(repo, env);
    EXPECT_TRUE(r.ok());
    retention::PruneOptions o;
    o.max_unused = 0;
    return retention::Prune(**r, o);
  };
  storage::FaultEnv counter;
  std::string counted = Dir("counted");
  stdfs::copy(base, counted, stdfs::copy_options::recursive);
  auto clean = run(counted, &counter);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  ASSERT_GT(clean->repacked.packs, 0u);
  const uint64_t syncs = counter.syncs();
  uint64_t want = PackBytes(counted);
  for (uint64_t n = 1; n <= syncs + 1; n++) {
    std::string repo = Dir("cut");
    stdfs::copy(base, repo, stdfs::copy_options::recursive);
    std::string when = "power cut at sync " + std::to_string(n) + " of " + std::to_string(syncs);
    SCOPED_TRACE(when);
    storage::FaultEnv env;
    env.CutPowerAtSync(n);
    auto r = run(repo, &env);
    EXPECT_EQ(r.ok(), n > syncs) << r.status().ToString();
    ASSERT_TRUE(env.SimulatePowerLoss().ok());
    auto opened = storage::Repository::Open(repo);
    ASSERT_TRUE(opened.ok());
    verify::CheckOptions co;
    co.read = verify::PackRead::kData;
    auto checked = verify::CheckRepository(**opened, co);
    ASSERT_TRUE(checked.ok()) << checked.status().ToString();
    for (const auto& p : checked->problems)
      EXPECT_TRUE(p.warning) << p.kind << " " << p.where << ": " << p.message;
    EXPECT_EQ(RestoreAll(repo), "");
    Prune(repo, {"--max-unused", "0%"});  // the next prune finishes the job
    EXPECT_LE(PackBytes(repo), want + want / 50);
    stdfs::remove_all(repo);
    if (::testing::Test::HasFailure()) break;
  }
}

// The race is made certain, not hoped for: the reader loads the index (OpenBlobReader), then a
// prune (the real binary) repacks the packs that hold its snapshots' data and deletes them, and
// only then does the reader read the snapshots, from packs its index names and that no longer
// exist (the test counts them: the race was real).
TEST_F(PruneTest, AReaderThatLoadedTheIndexBeforeAPruneDeletedItsPacksRestoresCorrectly) {
  std::string repo = Dir("repo");
  // One worker, so the forgotten version's files share a pack with files the kept snapshots
  // use (two workers may put them in packs of their own, which a prune deletes, not repacks:
  // that happened once under ASan).
  build_extra_ = {"--threads", "1"};
  Build(repo, 3, 1, 8, 2, 128 << 10);
  auto r = storage::Repository::Open(repo);
  ASSERT_TRUE(r.ok());
  auto reader = (*r)->OpenBlobReader();
  ASSERT_TRUE(reader.ok());
  std::set<storage::BlobId> needed;  // the packs the kept snapshots' content is in, as loaded
  for (const auto& [id, src] : kept_) {
    auto cursor = (*reader)->OpenEntries(id, nullptr);
    ASSERT_TRUE(cursor.ok());
    storage::FileEntry e;
    for (auto more = (*cursor)->Next(&e); more.ok() && *more; more = (*cursor)->Next(&e))
      for (const auto& b : e.blobs) needed.insert((*reader)->Find(b)->pack);
  }
  nlohmann::json j = Prune(repo, {"--max-unused", "0%"});
  ASSERT_GT(j["repacked"]["packs"].get<int>(), 0) << j.dump();
  int gone = 0;
  for (const auto& p : needed) gone += !stdfs::exists((*r)->PackPath(p));
  ASSERT_GT(gone, 0) << "no pack the reader needs was deleted: the test proves nothing";
  std::printf("[ prune ] %d of the %zu packs the reader needs were deleted under it\n", gone,
              needed.size());
  for (const auto& [id, src] : kept_) {
    TempDir out("mvprune-out");
    agent::RestoreOptions o;
    o.snapshot = id;
    o.target = out.path();
    o.sync = false;
    auto res = agent::RunRestore(**reader, o);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    for (const auto& p : res->problems) ADD_FAILURE() << p.path << ": " << p.message;
    EXPECT_EQ(DiffTrees(ListTree(src), ListTree(out / "mail")), "");
  }
  ExpectChecks(repo, true, "after the reads");
}

// And through the CLI: `verify --against snapshot` of the newest snapshot, with a prune
// repacking everything started while it runs (the tree is large enough that the verify's read
// of the packs overlaps the prune).
TEST_F(PruneTest, AVerifyRunningAcrossAPruneCompletesCorrectly) {
  std::string repo = Dir("repo");
  Build(repo, 3, 1, 30, 10, 1 << 20);
  for (int round = 0; round < 3; round++) {
    BackgroundMailvault verify(
        {"verify", "--repo", repo, "--snapshot", "latest", "--against", "snapshot", "--json"});
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + 100 * round));
    RunResult p = RunMailvault({"prune", "--repo", repo, "--max-unused", "0%"});
    EXPECT_EQ(p.exit_code, 0) << p.err;
    EXPECT_EQ(verify.Wait(), 0) << verify.out() << verify.err();
    // Something to repack for the next round: one more snapshot, then remove it again.
    std::string id = Backup(repo, Dir("v0"));
    stdfs::remove(repo + "/snapshots/" + id);
  }
  EXPECT_EQ(RestoreAll(repo), "");
}

TEST_F(PruneTest, AReaderWhoseSnapshotWasPrunedAwayIsToldThatAPruneRemovedIt) {
  std::string repo = Dir("repo");
  Build(repo, 2, 0, 4, 4, 64 << 10);  // two snapshots sharing nothing
  std::string first =
      kept_.begin()->second == Dir("v0") ? kept_.begin()->first : std::next(kept_.begin())->first;
  auto r = storage::Repository::Open(repo);
  ASSERT_TRUE(r.ok());
  auto reader = (*r)->OpenBlobReader();
  ASSERT_TRUE(reader.ok());
  auto snap = (*reader)->OpenEntries(first, nullptr);  // the manifest is read before the prune
  stdfs::remove(repo + "/snapshots/" + first);
  Prune(repo);
  ASSERT_TRUE(snap.ok());
  storage::FileEntry e;
  auto more = (*snap)->Next(&e);
  ASSERT_FALSE(more.ok());
  EXPECT_NE(more.status().message().find("removed by a prune"), std::string::npos)
      << more.status().ToString();
}

// Backups and prunes on one repository, each waiting for the other's lock; a third of the
// snapshots are removed before each prune, holding the lock, as a forget would.
TEST_F(PruneTest, ABackupLoopAndAPruneLoopOnOneRepositoryLoseNothing) {
  std::string repo = Dir("repo"), src = Dir("live");
  ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
  std::mutex mu;
  std::map<std::string, Tree> committed;  // snapshot -> the tree it was taken of
  std::atomic<bool> stop{false};
  std::atomic<int> backups{0}, prunes{0}, failures{0}, waits{0};
  std::thread backup_loop([&] {
    for (int v = 0; !stop; v++) {
      WriteVersion(src, v, 6, 1, 48 << 10);  // one new file each time, older ones stay
      if (v >= 3) stdfs::remove(src + (((v - 3) % 3) ? "/f" : "/sub/f") + std::to_string(v - 3));
      Tree tree = ListTree(src);
      RunResult r = RunMailvault(
          {"backup", "--repo", repo, "--json", "--source", "mail=" + src, "--retry-lock", "60s"});
      if (r.err.find("waiting for the lock") != std::string::npos) waits++;
      if (r.exit_code != 0) {
        failures++;
        ADD_FAILURE() << "backup: " << r.err;
        continue;
      }
      std::lock_guard<std::mutex> l(mu);
      committed[Json(r)["snapshot"]] = std::move(tree);
      backups++;
    }
  });
  std::thread prune_loop([&] {
    while (!stop) {
      {  // what forget does: under the lock, so no backup is choosing its parent meanwhile
        storage::LockWait wait;
        wait.timeout_ms = 60000;
        auto lock = storage::RepoLock::AcquireExclusive(repo, "forget", wait);
        if (!lock.ok()) {
          failures++;
          ADD_FAILURE() << "forget: " << lock.status().ToString();
          break;
        }
        std::lock_guard<std::mutex> l(mu);
        size_t n = 0, drop = committed.size() / 3;
        for (auto it = committed.begin(); it != committed.end() && n < drop; n++) {
          stdfs::remove(repo + "/snapshots/" + it->first);
          it = committed.erase(it);
        }
      }
      RunResult r =
          RunMailvault({"prune", "--repo", repo, "--retry-lock", "60s", "--max-unused", "0%"});
      if (r.err.find("waiting for the lock") != std::string::npos) waits++;
      if (r.exit_code != 0) {
        failures++;
        ADD_FAILURE() << "prune: " << r.err;
      }
      prunes++;
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(15));
  stop = true;
  backup_loop.join();
  prune_loop.join();
  std::printf("[ prune ] %d backups and %d prunes in 15 s; %d waited for the other's lock\n",
              backups.load(), prunes.load(), waits.load());
  EXPECT_GT(waits, 0) << "backup and prune never met: the test proves nothing";
  EXPECT_EQ(failures, 0);
  EXPECT_GE(prunes, 3);
  EXPECT_GE(backups, 5);
  ExpectChecks(repo, true, "after the loops");
  for (const auto& [id, tree] : committed) {
    TempDir out("mvprune-out");
    RunResult r = RunMailvault(
        {"restore", "--repo", repo, "--snapshot", id, "--target", out / "t", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(DiffTrees(tree, ListTree(out / "t/mail")), "") << "snapshot " << id;
  }
}

}  // namespace
}  // namespace mv::testing
