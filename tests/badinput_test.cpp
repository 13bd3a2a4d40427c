// Bad input, through the real binary: special files, non-UTF-8 names,
// paths over 4096 bytes, an unknown repository version and usage errors. Each gets a clear
// message and loses nothing. Crafted manifests: restore_traversal_test.cpp.
#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "child_process.h"
#include "storage/fs.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class BadInput : public RepoTest {};

// --- Special files and names ------------------------------------------------------------------

TEST_F(BadInput, SocketsFifosAndDevicesAreSkippedAndReportedWhileFilesAroundThemAreBackedUp) {
  WriteFile(vol_ / "mail/a/before", "before\n");
  WriteFile(vol_ / "mail/a/zafter", "after\n");
  ASSERT_EQ(::mkfifo((vol_ / "mail/a/fifo").c_str(), 0600), 0);
  bool root = ::geteuid() == 0;  // only root may make a device node
  if (root) {
    ASSERT_EQ(::mknod((vol_ / "mail/a/null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0)
        << std::strerror(errno);
  }
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
  EXPECT_EQ(skipped.size(), root ? 3u : 2u) << b.out;
  EXPECT_NE(skipped[vol_ / "mail/a/fifo"].find("fifo"), std::string::npos);
  if (root) {
    EXPECT_NE(skipped[vol_ / "mail/a/null"].find("device"), std::string::npos);
  }
  EXPECT_NE(skipped[vol_ / "mail/a/sock"].find("socket"), std::string::npos);
  EXPECT_TRUE(report["problems"].empty());

  RunResult r = Restore("latest", out_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = ListTree(vol_ / "mail");
  for (const char* special : {"a/fifo", "a/null", "a/sock"}) want.erase(special);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
}

// A fifo is never opened: opening one blocks until a writer comes, and would hang the backup.
TEST_F(BadInput, FifoNamedLikeADatabaseBesideItsSideFileDoesNotHangTheBackup) {
  WriteFile(vol_ / "data/users.db-wal", "not really a WAL\n");
  ASSERT_EQ(::mkfifo((vol_ / "data/users.db").c_str(), 0600), 0);
  BackgroundMailvault bg(
      {"backup", "--repo", repo(), "--json", "--source", "data=" + vol_ / "data"});
  ASSERT_TRUE(PollUntil([&] { return bg.exited(); }, std::chrono::seconds(30)))
      << "the backup hangs on the fifo";
  ASSERT_EQ(bg.Wait(), 0) << bg.err();
  auto report = nlohmann::json::parse(bg.out());
  ASSERT_EQ(report["skipped"].size(), 1u) << report;
  EXPECT_EQ(report["skipped"][0]["path"], vol_ / "data/users.db");
  EXPECT_EQ(report["files"], 1) << "the -wal file beside a non-database is an ordinary file";
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
  for (const auto& c : snaps[0]["census"]) messages += c["messages"].get<uint64_t>();
  EXPECT_EQ(messages, 3u) << "the folder with a non-UTF-8 name is counted";
  ASSERT_EQ(Restore("latest", out_.path()).exit_code, 0);
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "mail"), ListTree(out_ / "mail")), "");
  EXPECT_EQ(ReadFile(out_ / ("mail/user@example.org/.Caf" + bad + "/cur/1700000000.M1P1.host" +
                             bad + ",S=6:2,S")),
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
    std::string rel = prefix + "/" + n, desc = std::to_string(st.st_mode) + " " +
                                               std::to_string(st.st_mtim.tv_sec) + "." +
                                               std::to_string(st.st_mtim.tv_nsec);
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
    for (const auto& d : dirs) (void)storage::fs::RemoveTree(d);
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
  for (int i = 0; i < 24; i++) {  // 24 components of 200 bytes: a 4824-byte path
    std::string name = std::to_string(100 + i) + std::string(197, 'x');
    ASSERT_EQ(::mkdirat(cur, name.c_str(), 0750), 0) << std::strerror(errno);
    int next = ::openat(cur, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(cur);
    cur = next;
    rel += "/" + name;
    if (i == 12) WriteAt(cur, "middle", MessageText(1, 3000));
  }
  WriteAt(cur, "bottom", MessageText(2, 5000));
  {  // an xattr there too: the backup reads it through the directory, not the whole path
    int fd = ::openat(cur, "bottom", O_RDONLY | O_CLOEXEC);
    ASSERT_EQ(::fsetxattr(fd, "user.deep", "yes", 3, 0), 0) << std::strerror(errno);
    ::close(fd);
  }
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
  int root = ::open((out_ / "mail").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int restored = storage::fs::OpenBeneath(root, rel.substr(1) + "/bottom", O_RDONLY);
  ::close(root);
  ASSERT_GE(restored, 0) << std::strerror(errno);
  char value[8] = {};
  EXPECT_EQ(::fgetxattr(restored, "user.deep", value, sizeof value), 3) << std::strerror(errno);
  EXPECT_EQ(std::string(value), "yes");
  ::close(restored);
  EXPECT_EQ((b.out + b.err).find("extended attribute"), std::string::npos)
      << "none left out: " << b.out << b.err;
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
    EXPECT_NE(r.err.find("format version 99 is not supported"), std::string::npos)
        << args[0] << ": " << r.err;
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
    EXPECT_NE(r.err.find("`mailvault init --repo " + nowhere + "`"), std::string::npos)
        << verb << ": " << r.err;
  }
  EXPECT_FALSE(stdfs::exists(nowhere)) << "nothing is created by a command that is not init";
  RunResult r = Backup("mail=" + vol_ / "no-such-dir");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(vol_ / "no-such-dir"), std::string::npos) << r.err;
  // A source that is a file, not a directory: the same exit code as a missing one.
  WriteFile(vol_ / "a-file", "x\n");
  RunResult f = Backup("mail=" + vol_ / "a-file");
  EXPECT_EQ(f.exit_code, 1) << f.err;
  EXPECT_NE(f.err.find("is not a directory"), std::string::npos) << f.err;
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
  usage({"restore", "--repo", repo(), "--tag", "stackmail", "--target", out_.path()},
        "'stackmail' is not KEY=VALUE");
  // restore defaults to latest: in an empty repository that is an error, not a usage error.
  RunResult none = RunMailvault({"restore", "--repo", repo(), "--target", out_.path()});
  EXPECT_EQ(none.exit_code, 1) << none.err;
  EXPECT_NE(none.err.find("no snapshots yet"), std::string::npos) << none.err;
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  usage({"restore", "--repo", repo(), "--snapshot", "ab", "--target", out_.path()},
        "at least 4 hex digits");
  RunResult r = RunMailvault(
      {"restore", "--repo", repo(), "--snapshot", "ffffffff", "--target", out_.path()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("no snapshot matches 'ffffffff'"), std::string::npos) << r.err;
  EXPECT_TRUE(stdfs::is_empty(out_.path()));
}

}  // namespace
}  // namespace mv::testing
