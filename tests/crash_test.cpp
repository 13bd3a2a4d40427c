// Crash safety and the repository lock (docs/FORMAT.md §8 write ordering; bad
// input: a full disk, a second concurrent backup), through the real binary: a backup killed
// with SIGKILL, a second backup racing the first, a stale lock, a repository on a full tmpfs.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "child_process.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

// The mail tree as restore must reproduce it: tmp/ contents are never backed up.
std::map<std::string, std::string> MailTree(const std::string& dir) {
  auto t = ListTree(dir);
  for (auto it = t.begin(); it != t.end();)
    it = it->first.find("/tmp/") != std::string::npos ? t.erase(it) : std::next(it);
  return t;
}

bool AnyContains(const nlohmann::json& list, const std::string& needle) {
  for (const auto& n : list)
    if (n.get<std::string>().find(needle) != std::string::npos) return true;
  return false;
}

class CrashSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeMailVolume(vol_.path(), {.users = 3, .messages_per_user = 40, .seed = 1});
    ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0);
  }
  std::string repo() const { return repo_ / "r"; }
  std::string lock() const { return repo() + "/locks/exclusive"; }
  std::vector<std::string> BackupArgs(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a = {"backup", "--repo",   repo(),
                                  "--json", "--source", "mail=" + vol_ / "mail"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  RunResult Backup() const { return RunMailvault(BackupArgs()); }
  size_t SnapshotCount() const {
    return Json(RunMailvault({"snapshots", "--repo", repo(), "--json"})).size();
  }
  // Restores `snap` into a fresh directory and returns the differences from `want` ("" =
  // bit-exact).
  std::string RestoreDiff(const std::string& snap,
                          const std::map<std::string, std::string>& want) const {
    TempDir out("mvcrash-out");
    RunResult r =
        RunMailvault({"restore", "--repo", repo(), "--snapshot", snap, "--target", out.path()});
    if (r.exit_code != 0) return "restore failed (" + std::to_string(r.exit_code) + "): " + r.err;
    return DiffTrees(want, ListTree(out / "mail"));
  }
  // Thousands of messages and four 48 MiB incompressible attachments: six or more packs.
  void Grow() {
    MakeMailVolume(vol_.path(), {.users = 10, .messages_per_user = 300, .seed = 2});
    for (int i = 1; i <= 4; i++)
      WriteRandomFile(vol_ / ("mail/big/f" + std::to_string(i)), 48u << 20);
  }
  // Killed runs compress harder on one thread: a backup then lasts seconds, so each kill lands
  // mid-way. What they write is the same as at the default level.
  const std::vector<std::string> slow_ = {"--compression", "12", "--threads", "1"};
  TempDir vol_{"mvcrash-vol"}, repo_{"mvcrash-repo"};
};

TEST_F(CrashSafety,
       BackupKilledMidWayLeavesEarlierSnapshotsIntactAndTheNextBackupReusesWhatItWrote) {
  RunResult b1 = Backup();
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  auto first = Json(b1);
  std::string s1 = first["snapshot"];
  auto want1 = MailTree(vol_ / "mail");
  Grow();
  // Kills: as soon as the lock is taken (the lock left by the previous kill is then stale);
  // as soon as one pack is durable; three packs into the run's own work.
  for (size_t more : {0u, 1u, 3u}) {
    BackgroundMailvault bg(BackupArgs(slow_));
    size_t base = CountPacks(repo());
    auto locked_by_bg = [&] {
      return ReadFile(lock()).find(std::to_string(bg.pid())) != std::string::npos;
    };
    ASSERT_TRUE(PollUntil([&] {
      return (more ? CountPacks(repo()) >= base + more : locked_by_bg()) || bg.exited();
    }));
    ASSERT_TRUE(bg.Kill()) << "the backup finished before it could be killed; " << bg.err();
    EXPECT_TRUE(stdfs::exists(lock())) << "a killed backup leaves its lock behind";
    EXPECT_EQ(SnapshotCount(), 1u) << "a killed backup commits no snapshot";
    EXPECT_EQ(RestoreDiff(s1.substr(0, 8), want1), "") << "after kill " << more;
  }
  uint64_t repo_before = DirBytes(repo());
  RunResult b2 = Backup();
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  auto second = Json(b2);
  EXPECT_TRUE(AnyContains(second["notes"], "took over a stale lock")) << second["notes"];
  std::smatch m;
  std::string notes = second["notes"].dump();
  ASSERT_TRUE(std::regex_search(notes, m, std::regex("adopted (\\d+) pack"))) << notes;
  EXPECT_GE(std::stoi(m[1]), 3) << "the packs of the last killed run are adopted";
  // At least four packs (>= 32 MiB of blobs each) were written by the killed runs: none is
  // written again, and the repository holds no second copy of them.
  uint64_t grown = second["bytes_total"].get<uint64_t>() - first["bytes_total"].get<uint64_t>();
  uint64_t added = second["bytes_new"];
  EXPECT_LT(added, grown - 4 * (31ull << 20))
      << "added " << added << " of " << grown << " new bytes";
  EXPECT_LT(DirBytes(repo()) - repo_before, added + (4u << 20));
  EXPECT_LT(DirBytes(repo()), second["bytes_total"].get<uint64_t>());
  EXPECT_FALSE(stdfs::exists(lock())) << "the lock is released";
  EXPECT_EQ(SnapshotCount(), 2u);
  EXPECT_EQ(RestoreDiff(second["snapshot"], MailTree(vol_ / "mail")), "");
  EXPECT_EQ(RestoreDiff(s1, want1), "");
}

TEST_F(CrashSafety, SecondConcurrentBackupIsRefusedNamingTheLockHolderWhileTheFirstSucceeds) {
  for (int i = 1; i <= 2; i++)
    WriteRandomFile(vol_ / ("mail/big/f" + std::to_string(i)), 48u << 20);
  BackgroundMailvault first(BackupArgs(slow_));
  ASSERT_TRUE(PollUntil([&] { return stdfs::exists(lock()) || first.exited(); }));
  RunResult second = Backup();
  ASSERT_FALSE(first.exited()) << "the first backup ended before the second started: "
                               << first.err();
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_NE(second.err.find("repository is locked"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("pid " + std::to_string(first.pid())), std::string::npos) << second.err;
  EXPECT_NE(second.err.find(lock()), std::string::npos) << "names the lock file: " << second.err;
  EXPECT_EQ(first.Wait(), 0) << first.err();
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0]["id"], nlohmann::json::parse(first.out())["snapshot"]);
  EXPECT_EQ(Backup().exit_code, 0) << "the lock is released when the first backup ends";
}

TEST_F(CrashSafety, StaleLockOfAGoneOrReplacedProcessIsTakenOverAndALiveOneIsHonoured) {
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  auto lock_json = [&](pid_t pid, const std::string& pid_start = "") {
    nlohmann::json j = {
        {"host", host}, {"pid", pid}, {"purpose", "backup"}, {"started", "2026-01-01T00:00:00Z"}};
    if (!pid_start.empty()) j["pid_start"] = pid_start;
    return j.dump();
  };
  WriteFile(lock(), lock_json(dead));
  RunResult r = Backup();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(AnyContains(Json(r)["notes"], "stale lock of pid " + std::to_string(dead))) << r.out;
  EXPECT_FALSE(stdfs::exists(lock()));

  // The pid is alive but is another process than the one that took the lock (pid reuse, as
  // when a restarted container's agent gets the same pid): stale too.
  WriteFile(lock(), lock_json(::getpid(), "1"));
  r = Backup();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(AnyContains(Json(r)["notes"], "that pid is now another process")) << r.out;

  // This test process is alive and is the one named: the lock holds, with or without a start time.
  std::string stat = ReadFile("/proc/self/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string my_start;
  for (int f = 3; f <= 22; f++) fields >> my_start;
  for (const std::string& start : {std::string(), my_start}) {
    WriteFile(lock(), lock_json(::getpid(), start));
    r = Backup();
    EXPECT_EQ(r.exit_code, 1) << "pid_start '" << start << "'";
    EXPECT_NE(r.err.find("pid " + std::to_string(::getpid())), std::string::npos) << r.err;
    EXPECT_TRUE(stdfs::exists(lock())) << "a live holder's lock is left alone";
  }
  EXPECT_EQ(SnapshotCount(), 2u);
}

// A tmpfs of a given size, unmounted on destruction.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& dir, const std::string& size = "4m") : dir_(dir) {
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0)
      mounted_ = true;
    else
      error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool Grow(const char* size) {
    return ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT, size) == 0;
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
  bool mounted_ = false;
};

TEST(FullDisk, BackupOntoAFullDiskFailsClearlyKeepsEarlierSnapshotsAndSucceedsOnceSpaceIsFreed) {
  TempDir mnt("mvdisk"), vol("mvdisk-vol"), out("mvdisk-out");
  SmallDisk disk(mnt.path());
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a 4 MiB tmpfs here (" << disk.error() << "); needs root";
  std::string repo = mnt / "r";
  ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
  MakeMailVolume(vol.path(), {.users = 2, .messages_per_user = 20, .seed = 3});
  std::vector<std::string> backup = {"backup", "--repo", repo, "--source", "mail=" + vol / "mail"};
  ASSERT_EQ(RunMailvault(backup).exit_code, 0);
  auto want1 = MailTree(vol / "mail");
  uint64_t used = DirBytes(repo);

  WriteRandomFile(vol / "mail/big/attachment", 6u << 20);  // more than the disk holds
  RunResult full = RunMailvault(backup);
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_NE(full.err.find("No space left on device"), std::string::npos) << full.err;
  EXPECT_NE(full.err.find(repo), std::string::npos) << "names the repository path: " << full.err;
  EXPECT_LT(DirBytes(repo), used + (64u << 10))
      << "the failed backup leaves no partial pack behind";
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo, "--json"}));
  ASSERT_EQ(snaps.size(), 1u);
  RunResult r = RunMailvault(
      {"restore", "--repo", repo, "--snapshot", snaps[0]["id"], "--target", out / "a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(want1, ListTree(out / "a/mail")), "");

  ASSERT_TRUE(disk.Grow("size=64m")) << std::strerror(errno);
  RunResult ok = RunMailvault(backup);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  r = RunMailvault({"restore", "--repo", repo, "--snapshot", "latest", "--target", out / "b"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(MailTree(vol / "mail"), ListTree(out / "b/mail")), "");
}

// The disk fills at every stage in turn (a pack, the index, the manifest): whichever write
// fails, the repository stays readable, earlier snapshots restore, and nothing is left behind.
TEST(FullDisk, DiskFillingAtAnyStageOfABackupLeavesTheRepositoryUsable) {
  TempDir mnt("mvdisk"), vol("mvdisk-vol"), out("mvdisk-out");
  SmallDisk disk(mnt.path(), "16m");
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error() << "); needs root";
  std::string repo = mnt / "r", filler = mnt / "filler";
  ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
  MakeMailVolume(vol.path(), {.users = 1, .messages_per_user = 20, .seed = 5});
  std::vector<std::string> backup = {"backup", "--repo", repo, "--source", "mail=" + vol / "mail"};
  ASSERT_EQ(RunMailvault(backup).exit_code, 0);
  std::set<std::string> failed_at;
  int ok = 0;
  for (int free_kib = 0; free_kib <= 140; free_kib += 2) {
    WriteRandomFile(vol / "mail/attachment", 100u << 10);  // new data each time
    struct statvfs fsinfo;
    ASSERT_EQ(::statvfs(mnt.path().c_str(), &fsinfo), 0);
    uint64_t avail = fsinfo.f_bavail * fsinfo.f_frsize, keep = static_cast<uint64_t>(free_kib)
                                                               << 10;
    WriteFile(filler, std::string(avail > keep ? avail - keep : 0, 'f'));
    RunResult r = RunMailvault(backup);
    std::filesystem::remove(filler);
    if (r.exit_code == 0) {
      ok++;
    } else {
      EXPECT_EQ(r.exit_code, 1) << r.err;
      EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
      failed_at.insert(r.err.find("/tmp/pack-") != std::string::npos    ? "pack"
                       : r.err.find("/snapshots/") != std::string::npos ? "manifest"
                       : r.err.find("/index/") != std::string::npos     ? "index"
                       : r.err.find("/locks/") != std::string::npos     ? "lock"
                                                                        : r.err);
    }
    RunResult list = RunMailvault({"snapshots", "--repo", repo, "--json"});
    ASSERT_EQ(list.exit_code, 0) << "after " << free_kib << " KiB free: " << list.err;
    ASSERT_EQ(Json(list).size(), 1u + ok);
  }
  EXPECT_GT(ok, 0);
  EXPECT_TRUE(failed_at.count("pack") && failed_at.count("manifest"))
      << "the sweep should fail both in a pack and at the commit; failed at: "
      << ::testing::PrintToString(failed_at);
  for (const char* d : {"tmp", "index", "snapshots", "locks"})
    for (const auto& e : std::filesystem::directory_iterator(repo + "/" + d))
      EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  RunResult last = RunMailvault(backup);
  ASSERT_EQ(last.exit_code, 0) << last.err;
  RunResult r =
      RunMailvault({"restore", "--repo", repo, "--snapshot", "latest", "--target", out.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(MailTree(vol / "mail"), ListTree(out / "mail")), "");
}

}  // namespace
}  // namespace mv::testing
