// Sources that change while `mailvault backup` runs (files vanishing,
// unreadable, growing or replaced during the walk; Maildir messages renamed by a client), through
// the real binary. Nothing may be lost or torn, and everything that could not be read is
// reported (exit 3) while the rest is still committed. SQLite: live_sqlite_test.cpp.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "child_process.h"
#include "test_util.h"

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
  // One reader and slow compression: reading a large file lasts long enough to act meanwhile.
  std::vector<std::string> SlowBackupArgs(const std::string& source) const {
    auto args = BackupArgs(source);
    args.insert(args.end(), {"--threads", "1", "--compression", "12"});
    return args;
  }
  // A pack is being written: the backup has started reading content.
  bool PackOpen() const {
    for (const auto& e : stdfs::directory_iterator(repo() + "/tmp"))
      if (e.path().filename().string().starts_with("pack-")) return true;
    return false;
  }
  std::string RestoreDiff(const std::map<std::string, std::string>& want,
                          const std::string& source = "mail") {
    TempDir out("mvlive-out");
    RunResult r =
        RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()});
    if (r.exit_code != 0) return "restore failed: " + r.err;
    return DiffTrees(want, ListTree(out / source));
  }
  TempDir vol_{"mvlive-vol"}, repo_{"mvlive-repo"};
};

TEST_F(LiveSource, FilesDeletedDuringTheBackupAreReportedAndEverythingElseIsCommitted) {
  // The big file is read first (manifest order, one reader, slow compression so that reading
  // it lasts a while); the small ones are deleted while it is read.
  WriteRandomFile(vol_ / "mail/a-big", 64u << 20);
  for (int i = 0; i < 20; i++)
    WriteFile(vol_ / ("mail/z-" + std::to_string(10 + i)), MessageText(i, 2000));
  BackgroundMailvault bg(SlowBackupArgs("mail=" + vol_ / "mail"));
  ASSERT_TRUE(PollUntil([&] { return PackOpen() || bg.exited(); }));
  for (int i = 0; i < 10; i++) stdfs::remove(vol_ / ("mail/z-" + std::to_string(10 + i)));
  ASSERT_EQ(bg.Wait(), 3) << bg.err();
  auto report = Json(bg.out());
  auto problems = Problems(report);
  EXPECT_EQ(problems.size(), 10u) << report["problems"];
  for (int i = 0; i < 10; i++)
    EXPECT_NE(problems[vol_ / ("mail/z-" + std::to_string(10 + i))].find("vanished"),
              std::string::npos);
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}).out);
  ASSERT_EQ(snaps.size(), 1u) << "the partial snapshot is committed";
  EXPECT_EQ(snaps[0]["problems"], 10);
  EXPECT_EQ(RestoreDiff(ListTree(vol_ / "mail")), "") << "holds exactly the files that remained";
}

TEST_F(LiveSource, FileReplacedByAFifoDuringTheBackupIsReportedWithoutHanging) {
  WriteRandomFile(vol_ / "mail/a-big", 64u << 20);
  WriteFile(vol_ / "mail/z-file", "a regular file when walked\n");
  WriteFile(vol_ / "mail/z-kept", "kept\n");
  BackgroundMailvault bg(SlowBackupArgs("mail=" + vol_ / "mail"));
  ASSERT_TRUE(PollUntil([&] { return PackOpen() || bg.exited(); }));
  stdfs::remove(vol_ / "mail/z-file");
  ASSERT_EQ(::mkfifo((vol_ / "mail/z-file").c_str(), 0600), 0);
  ASSERT_TRUE(PollUntil([&] { return bg.exited(); }, std::chrono::seconds(60)))
      << "the backup hangs on the fifo";
  ASSERT_EQ(bg.Wait(), 3) << bg.err();
  auto problems = Problems(Json(bg.out()));
  ASSERT_EQ(problems.size(), 1u) << bg.out();
  EXPECT_NE(problems[vol_ / "mail/z-file"].find("not a regular file"), std::string::npos)
      << bg.out();
  auto ls = Json(RunMailvault({"ls", "--repo", repo(), "--json", "mail/z-kept"}).out);
  EXPECT_EQ(ls.size(), 1u) << "the rest is committed";
}

// Unique name (before ":2,") -> content of every message in a Maildir's cur/ and new/.
std::map<std::string, std::string> Messages(const std::string& maildir) {
  std::map<std::string, std::string> m;
  for (const char* sub : {"/cur", "/new"})
    for (const auto& e : stdfs::directory_iterator(maildir + sub)) {
      std::string n = e.path().filename();
      m[n.substr(0, n.find(":2,"))] = ReadFile(e.path());
    }
  return m;
}

TEST_F(LiveSource, MessagesRenamedForAFlagChangeDuringTheBackupAreStillInTheSnapshot) {
  WriteRandomFile(vol_ / "mail/a-big", 64u << 20);
  std::string mb = vol_ / "mail/user@example.org";
  for (const char* sub : {"/cur", "/new", "/tmp"}) stdfs::create_directories(mb + sub);
  for (uint32_t i = 0; i < 15; i++) {
    std::string body = MessageText(i, 1500);
    WriteFile(mb + (i < 10 ? "/cur/" : "/new/") + MaildirName(i, body.size(), "S", i >= 10), body,
              0600);
  }
  auto want = Messages(mb);
  BackgroundMailvault bg(SlowBackupArgs("mail=" + vol_ / "mail"));
  ASSERT_TRUE(PollUntil([&] { return PackOpen() || bg.exited(); }));
  // A client reads the mailbox: new/ moves to cur/, flags change in cur/.
  for (const auto& e :
       std::vector<stdfs::directory_entry>(stdfs::directory_iterator(mb + "/cur"), {}))
    stdfs::rename(e.path(), e.path().string() + "R");
  for (const auto& e :
       std::vector<stdfs::directory_entry>(stdfs::directory_iterator(mb + "/new"), {}))
    stdfs::rename(e.path(), mb + "/cur/" + e.path().filename().string() + ":2,S");
  ASSERT_FALSE(bg.exited()) << "the backup ended before the renames: " << bg.err();
  EXPECT_EQ(bg.Wait(), 0) << "flag changes are routine, not a partial backup: " << bg.out();
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}).out);
  ASSERT_EQ(snaps.size(), 1u);
  uint64_t messages = 0;
  for (const auto& c : snaps[0]["census"]) messages += c["messages"].get<uint64_t>();
  EXPECT_EQ(messages, 15u);
  TempDir out("mvlive-out");
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()})
          .exit_code,
      0);
  auto got = Messages(out / "mail/user@example.org");
  size_t same = 0;
  for (const auto& [name, body] : want) same += got.count(name) && got[name] == body;
  EXPECT_EQ(same, want.size())
      << "every message restored with its content, found by its unique name";
  RunResult next = RunMailvault(BackupArgs("mail=" + vol_ / "mail"));
  ASSERT_EQ(next.exit_code, 0) << next.err;
  EXPECT_EQ(Json(next.out)["blobs_new"], 0) << "the next backup recognises the renamed messages";
}

// The walk lists cur/ before new/. A client opening the folder in between moves new/ to cur/:
// those messages are in neither listing unless cur/ is looked at again.
TEST_F(LiveSource, MessagesMovedFromNewToCurBetweenTheirListingsAreStillInTheSnapshot) {
  std::string mb = vol_ / "mail/user@example.org";
  for (const char* sub : {"/cur", "/new", "/tmp"}) stdfs::create_directories(mb + sub);
  for (uint32_t i = 0; i < 10; i++) {
    std::string body = MessageText(i, 1200);
    WriteFile(mb + (i < 5 ? "/cur/" : "/new/") + MaildirName(i, body.size(), "S", i >= 5), body,
              0600);
  }
  // Many directories walked after cur/ ("d" sorts after it) keep the walk there long enough for
  // the test to move the messages; inotify tells when cur/ (listed after new/) is done. The walk
  // saw them in new/; they are read from cur/ under their new names.
  for (int i = 0; i < 20000; i++) ::mkdir((mb + "/d" + std::to_string(i)).c_str(), 0700);
  auto want = Messages(mb);
  std::vector<stdfs::directory_entry> in_new(stdfs::directory_iterator(mb + "/new"),
                                             {});  // listed now: the
  // test must not open new/ itself once it watches for the walk opening it
  int in = ::inotify_init1(IN_CLOEXEC);
  ASSERT_GE(::inotify_add_watch(in, mb.c_str(), IN_OPEN | IN_CLOSE_NOWRITE | IN_ONLYDIR), 0);
  bool cur_closed = false, new_opened = false;  // among the events read so far
  auto read_events = [&](int timeout_ms) {
    pollfd p{in, POLLIN, 0};
    while (!cur_closed && ::poll(&p, 1, timeout_ms) > 0) {
      alignas(inotify_event) char buf[1 << 16];
      ssize_t n = ::read(in, buf, sizeof buf);
      for (ssize_t off = 0; off < n;) {
        auto* ev = reinterpret_cast<inotify_event*>(buf + off);
        std::string name = ev->len ? ev->name : "";
        cur_closed |= name == "cur" && (ev->mask & IN_CLOSE_NOWRITE);
        new_opened |= name == "new" && (ev->mask & IN_OPEN);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    }
  };
  BackgroundMailvault bg(BackupArgs("mail=" + vol_ / "mail"));
  while (!cur_closed && !bg.exited()) read_events(100);
  ASSERT_TRUE(cur_closed) << bg.err();
  for (const auto& e : in_new)
    stdfs::rename(e.path(), mb + "/cur/" + e.path().filename().string() + ":2,S");
  cur_closed = false;
  read_events(0);
  ::close(in);
  ASSERT_TRUE(new_opened) << "new/ is listed before cur/ (messages only move new/ -> cur/)";
  EXPECT_EQ(bg.Wait(), 0) << bg.out();
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}).out);
  ASSERT_EQ(snaps.size(), 1u);
  uint64_t messages = 0;
  for (const auto& c : snaps[0]["census"]) messages += c["messages"].get<uint64_t>();
  EXPECT_EQ(messages, 10u);
  std::vector<std::string> cur;
  for (const auto& e :
       Json(RunMailvault({"ls", "--repo", repo(), "--json", "mail/user@example.org/cur"}).out))
    cur.push_back(e["path"]);
  EXPECT_EQ(cur.size(), 6u) << "cur/ itself and the 5 messages that were there when it was listed";
  EXPECT_TRUE(std::is_sorted(cur.begin(), cur.end()))
      << "manifest order (docs/FORMAT.md §7.1) is kept";
  TempDir out("mvlive-out");
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()})
          .exit_code,
      0);
  auto got = Messages(out / "mail/user@example.org");
  size_t same = 0;
  for (const auto& [name, body] : want) same += got.count(name) && got[name] == body;
  EXPECT_EQ(same, want.size())
      << "every message restored with its content, found by its unique name";
}

TEST_F(LiveSource, FilesTheBackupCannotReadAreReportedAndEverythingElseIsCommitted) {
  // Root reads everything, so this backup runs as nobody, as a non-root agent would.
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run mailvault as another user (nobody)";
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
  EXPECT_NE(problems[vol_ / "mail/private"].find("cannot open directory: Permission denied"),
            std::string::npos);
  auto want = ListTree(vol_ / "mail");
  want.erase("secret");
  want.erase("private/inside");
  EXPECT_EQ(RestoreDiff(want), "");
}

TEST_F(LiveSource, FileGrowingWhileReadIsStoredConsistentlyOrReported) {
  std::string log = vol_ / "mail/grow.log";
  WriteFile(log, std::string(16u << 20, 'x'));
  std::atomic<bool> stop{false};
  std::thread appender([&] {  // appends numbered lines, as a log or an mbox grows
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
  if (b.exit_code == 3) {  // it changed under every read: stored as last read and said so
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
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out.path()})
          .exit_code,
      0);
  std::string restored = ReadFile(out / "mail/grow.log");
  EXPECT_EQ(restored.size(), size) << "the manifest size is the size of the stored content";
  EXPECT_TRUE(ReadFile(log).compare(0, size, restored) == 0)
      << "the stored content is a prefix the file really had";
}

}  // namespace
}  // namespace mv::testing
