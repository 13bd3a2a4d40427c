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
  auto report = Json(r);
  std::map<std::string, std::string> problems;
  for (const auto& p : report["problems"]) problems[p["path"].get<std::string>()] = p["message"];
  for (const char* bad : {"../escape3", "/abs/path", "mail/../../escape", "mail/./x", "mail//empty",
                          "mail/link/evil", "mail/link2/tmp/evil2"}) {
    ASSERT_TRUE(problems.count(bad)) << bad << " not reported; problems: " << report["problems"];
    EXPECT_EQ(problems[bad].rfind("refused", 0), 0u) << bad << ": " << problems[bad];
  }
  EXPECT_EQ(problems.size(), 7u) << report["problems"];
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
  EXPECT_EQ(report["files_written"], 1);
}

TEST_F(BadInput, RestoreNeverFollowsASymlinkPlantedInTheTarget) {
  MakeMailVolume(vol_.path(), {.users = 1, .messages_per_user = 8, .seed = 4});
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  TempDir outside("mvbad-outside");
  // Where a source goes: the whole restore is refused before anything is written.
  std::string t1 = out_ / "t1", t2 = out_ / "t2";
  stdfs::create_directories(t1);
  stdfs::create_directory_symlink(outside.path(), t1 + "/mail");
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", t1});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(t1 + "/mail: refused: this is a symlink"), std::string::npos) << r.err;
  // Where a mailbox goes: that mailbox is refused, entry by entry; nothing lands outside.
  stdfs::create_directories(t2 + "/mail");
  stdfs::create_directory_symlink(outside.path(), t2 + "/mail/user0@example.org");
  r = Restore("latest", t2);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto report = Json(r);
  size_t refused = 0;
  for (const auto& p : report["problems"]) refused += p["message"].get<std::string>().starts_with("refused");
  size_t below = 0;
  for (const auto& e : Json(RunMailvault({"ls", "--repo", repo(), "--json", "mail/user0@example.org"})))
    below += e["path"] != "mail/user0@example.org";
  EXPECT_GT(below, 8u);
  EXPECT_EQ(refused, below) << "every entry below the symlink: " << report["problems"];
  EXPECT_EQ(report["problems"].size(), below + 1) << "and the symlink itself is kept, not replaced";
  EXPECT_TRUE(ListTree(outside.path()).empty());
  EXPECT_EQ(report["files_written"], 0);
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
  auto report = Json(b);
  std::map<std::string, std::string> skipped;
  for (const auto& k : report["skipped"]) skipped[k["path"].get<std::string>()] = k["message"];
  EXPECT_EQ(skipped.size(), 3u) << b.out;
  EXPECT_NE(skipped[vol_ / "mail/a/fifo"].find("fifo"), std::string::npos);
  EXPECT_NE(skipped[vol_ / "mail/a/null"].find("device"), std::string::npos);
  EXPECT_NE(skipped[vol_ / "mail/a/sock"].find("socket"), std::string::npos);
  EXPECT_TRUE(report["problems"].empty());

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
  EXPECT_EQ(ls.size(), ListTree(vol_ / "mail").size() + 1) << "every entry and the source root";
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  uint64_t messages = 0;
  for (const auto& c : snaps[0]["census"])
    messages += c["messages"].get<uint64_t>();
  EXPECT_EQ(messages, 3u) << "the folder with a non-UTF-8 name is counted";
  ASSERT_EQ(Restore("latest", out_.path()).exit_code, 0);
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "mail"), ListTree(out_ / "mail")), "");
  EXPECT_EQ(ReadFile(out_ / ("mail/user@example.org/.Caf" + bad + "/cur/1700000000.M1P1.host" + bad + ",S=6:2,S")),
            "hello" + bad);
}

// --- Paths over PATH_MAX ----------------------------------------------------------------------
// Such paths cannot be named whole by the kernel, so this test reads and removes them by
// directory file descriptors, as mailvault must.

// path -> "type mode size mtime content" below `dfd`, like ListTree.
void ListAt(int dfd, const std::string& prefix, std::map<std::string, std::string>* out) {
  DIR* d = ::fdopendir(::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& n : names) {
    struct stat st;
    ::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW);
    std::string rel = prefix + "/" + n, desc = std::to_string(st.st_mode) + " " + std::to_string(st.st_mtim.tv_sec) +
                                               "." + std::to_string(st.st_mtim.tv_nsec);
    int fd = ::openat(dfd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (S_ISDIR(st.st_mode)) {
      ListAt(fd, rel, out);
    } else {
      std::string data(static_cast<size_t>(st.st_size), '\0');
      desc += " " + std::to_string(::pread(fd, data.data(), data.size(), 0)) + " " + data;
    }
    ::close(fd);
    (*out)[rel] = desc;
  }
}

void RemoveAt(int dfd) {
  DIR* d = ::fdopendir(::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& n : names) {
    int fd = ::openat(dfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      RemoveAt(fd);
      ::close(fd);
    }
    ::unlinkat(dfd, n.c_str(), fd >= 0 ? AT_REMOVEDIR : 0);
  }
}

std::map<std::string, std::string> ListDeep(const std::string& dir) {
  std::map<std::string, std::string> out;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) ListAt(fd, "", &out);
  ::close(fd);
  return out;
}

// Removes deep trees before TempDir's std::filesystem::remove_all, which cannot.
struct DeepCleanup {
  std::vector<std::string> dirs;
  ~DeepCleanup() {
    for (const auto& d : dirs) {
      int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) RemoveAt(fd);
      ::close(fd);
    }
  }
};

void WriteAt(int dfd, const std::string& name, const std::string& data) {
  int fd = ::openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
}

TEST_F(BadInput, PathsLongerThan4096BytesBackUpAndRestoreBitExact) {
  DeepCleanup cleanup{{vol_.path(), out_.path()}};
  stdfs::create_directories(vol_ / "mail");
  int cur = ::open((vol_ / "mail").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  std::string rel;
  for (int i = 0; i < 24; i++) {   // 24 components of 200 bytes: a 4824-byte path
    std::string name = std::to_string(100 + i) + std::string(197, 'x');
    ASSERT_EQ(::mkdirat(cur, name.c_str(), 0750), 0) << std::strerror(errno);
    int next = ::openat(cur, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(cur);
    cur = next;
    rel += "/" + name;
    if (i == 12) WriteAt(cur, "middle", MessageText(1, 3000));
  }
  WriteAt(cur, "bottom", MessageText(2, 5000));
  ::close(cur);
  ASSERT_GT((vol_ / "mail" + rel + "/bottom").size(), 4096u);

  RunResult b = Backup("mail=" + vol_ / "mail");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Json(b)["files"], 2);
  auto ls = Json(RunMailvault({"ls", "--repo", repo(), "--json"}));
  bool listed = false;
  for (const auto& e : ls) listed |= e["path"] == "mail" + rel + "/bottom";
  EXPECT_TRUE(listed) << "ls lists the 4800-byte path";
  RunResult r = Restore("latest", out_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = ListDeep(vol_ / "mail");
  EXPECT_EQ(want.size(), 26u);
  EXPECT_EQ(DiffTrees(want, ListDeep(out_ / "mail")), "");
}

// --- Repositories and command lines -----------------------------------------------------------

TEST_F(BadInput, RepositoryOfAnUnknownFormatVersionIsRefusedNamingTheVersionAndLeftUntouched) {
  WriteFile(vol_ / "mail/m", "x\n");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  auto config = nlohmann::json::parse(ReadFile(repo() + "/config"));
  config["version"] = 99;
  WriteFile(repo() + "/config", config.dump(2) + "\n", 0600);
  auto before = ListTree(repo());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"backup", "--repo", repo(), "--source", "mail=" + vol_ / "mail"},
           {"snapshots", "--repo", repo()},
           {"ls", "--repo", repo()},
           {"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()}}) {
    RunResult r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("format version 99 is not supported"), std::string::npos) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(repo() + "/config"), std::string::npos) << args[0] << ": " << r.err;
  }
  EXPECT_EQ(DiffTrees(before, ListTree(repo())), "");
  EXPECT_TRUE(stdfs::is_empty(out_.path()));
}

TEST_F(BadInput, MissingRepositoryOrSourceIsAnErrorSayingWhatToDo) {
  std::string nowhere = repo_ / "nowhere";
  for (const auto& verb : {"backup", "snapshots", "ls"}) {
    RunResult r = RunMailvault({verb, "--repo", nowhere, "--source", "mail=" + vol_.path()});
    if (std::string(verb) != "backup") r = RunMailvault({verb, "--repo", nowhere});
    EXPECT_EQ(r.exit_code, 1) << verb;
    EXPECT_NE(r.err.find("`mailvault init --repo " + nowhere + "`"), std::string::npos) << verb << ": " << r.err;
  }
  EXPECT_FALSE(stdfs::exists(nowhere)) << "nothing is created by a command that is not init";
  RunResult r = Backup("mail=" + vol_ / "no-such-dir");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(vol_ / "no-such-dir"), std::string::npos) << r.err;
}

// Usage errors (exit 2) are command lines that can never work; a well-formed reference to a
// snapshot that does not exist is an error (exit 1), like a missing file.
TEST_F(BadInput, UsageErrorsExitTwoAndAnUnknownSnapshotExitsOne) {
  WriteFile(vol_ / "mail/m", "x\n");
  auto usage = [&](std::vector<std::string> args, const std::string& says) {
    RunResult r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  };
  usage({"backup", "--repo", repo(), "--source", vol_ / "mail"}, "--source takes NAME=DIR");
  usage({"backup", "--repo", repo(), "--source", "mail="}, "--source takes NAME=DIR");
  usage({"backup", "--repo", repo(), "--source", "=" + vol_ / "mail"}, "--source takes NAME=DIR");
  usage({"backup", "--repo", repo(), "--source", "ma/il=" + vol_ / "mail"}, "source name 'ma/il'");
  usage({"backup", "--source", "mail=" + vol_ / "mail"}, "--repo");
  usage({"snapshots"}, "MAILVAULT_REPO");
  usage({"backup", "--repo", repo(), "--no-such-flag"}, "no-such-flag");
  usage({"restore", "--repo", repo(), "--target", out_.path()}, "--snapshot");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  usage({"restore", "--repo", repo(), "--snapshot", "ab", "--target", out_.path()}, "at least 4 hex digits");
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "ffffffff", "--target", out_.path()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no snapshot matches 'ffffffff'"), std::string::npos) << r.err;
  EXPECT_TRUE(stdfs::is_empty(out_.path()));
}

}  // namespace
}  // namespace mv::testing
