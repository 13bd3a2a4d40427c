// A restore's memory is bounded by its batch, not by the snapshot: a generated tree of 150k small
// messages is backed up and restored through the real binary, and the restore's peak RSS is read
// from the kernel (wait4's rusage of the child). Everything lives on one tmpfs of a fixed size,
// so the test cannot fill the disk and leaves nothing behind (we are root in CI).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "test_util.h"

namespace mv::testing {
namespace {

constexpr int kMessages = 150000;
constexpr int kPerFolder = 5000;  // as gen_small.py: 30 Maildir folders of 5,000 messages

// The restore's bound. Measured on this tree (RelWithDebInfo, 2 shared cores): when the restore
// loaded the whole snapshot and planned every file at once it peaked at 109 MB; reading the
// snapshot through an EntryCursor and writing it in batches, at 88-96 MB over three runs. What
// is left is almost all the version-2 manifest, which today's cursor still decodes whole (the
// decompressed manifest, the entry list, the paths) plus the index; the restorer's own state is
// one batch. 102 MB leaves ~6 MB for allocator and thread variance and fails a return to
// planning the whole snapshot. Lower it when the manifest is read tree by tree.
constexpr long kMaxRestoreRssKb = 102 * 1024;

class Tmpfs {
 public:
  Tmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    mounted_ =
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0755").c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
  bool mounted_ = false;
};

std::string Message(int i) {
  return "From: a@example.org\nTo: b@example.org\nSubject: message " + std::to_string(i) + "\n\n" +
         std::string(300 + (i * 7919) % 400, 'a' + i % 26) + "\n";
}
size_t FirstMessageSize() { return Message(0).size(); }

// kMessages distinct small messages (300-700 bytes) in cur/ of Maildirs under root/mail.
void MakeSmallMessages(const std::string& root) {
  std::string text;
  for (int i = 0; i < kMessages; i++) {
    std::string dir = root + "/mail/user" + std::to_string(i / kPerFolder) + "@example.org/cur";
    if (i % kPerFolder == 0) {
      ASSERT_EQ(Shell("mkdir -p '" + dir + "'").exit_code, 0);
    }
    text = Message(i);
    std::string path = dir + "/" + std::to_string(1700000000 + i) + ".M" + std::to_string(i) +
                       "P1.host,S=" + std::to_string(text.size()) + ":2,S";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  }
  // A hard link whose first name is in the restore's first batch and whose later name is
  // ~110k files further in walk order (user29 after user0..user28 sorted bytewise), in a later
  // batch: it is still restored as a link.
  ASSERT_EQ(::link((root + "/mail/user0@example.org/cur/1700000000.M0P1.host,S=" +
                    std::to_string(FirstMessageSize()) + ":2,S")
                       .c_str(),
                   (root + "/mail/user29@example.org/cur/zz-link").c_str()),
            0)
      << std::strerror(errno);
}

struct Measured {
  int exit_code = -1;
  long max_rss_kb = 0;
  std::string out;
};

// Runs mailvault `args` with stdout in `out_file`; returns its exit code and peak RSS.
Measured RunMeasured(const std::vector<std::string>& args, const std::string& out_file) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 2);
    ::unsetenv("MAILVAULT_REPO");
    std::vector<char*> argv;
    std::string bin = MAILVAULT_BIN;
    argv.push_back(bin.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  Measured m;
  int st = 0;
  struct rusage ru {};
  if (::wait4(pid, &st, 0, &ru) == pid) {
    m.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    m.max_rss_kb = ru.ru_maxrss;
  }
  m.out = ReadFile(out_file);
  return m;
}

TEST(RestoreMemory, RestoreOf150kSmallFilesStaysUnderItsBound) {
  TempDir mnt("mvrestmem");
  Tmpfs disk(mnt.path(), "1600m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << disk.error();
  std::string vol = mnt / "vol", repo = mnt / "repo", out = mnt / "out";
  ASSERT_NO_FATAL_FAILURE(MakeSmallMessages(vol));
  ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
  RunResult b =
      RunMailvault({"backup", "--repo", repo, "--json", "--source", "mail=" + vol + "/mail"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  // The volume is no longer needed: free its space before the restore writes a copy.
  ASSERT_EQ(Shell("rm -rf '" + vol + "'").exit_code, 0);

  Measured r =
      RunMeasured({"restore", "--repo", repo, "--snapshot", "latest", "--target", out, "--json"},
                  mnt / "restore.json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::cout << "restore of " << kMessages << " files: peak RSS " << r.max_rss_kb / 1024 << " MB\n";
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files_written"].get<uint64_t>(), static_cast<uint64_t>(kMessages) + 1);
  EXPECT_EQ(j["files_failed"].get<uint64_t>(), 0u);
  EXPECT_LE(r.max_rss_kb, kMaxRestoreRssKb)
      << "restore of " << kMessages << " small files peaked at " << r.max_rss_kb / 1024
      << " MB; its memory should be bounded by a batch, not grow with the snapshot";
  EXPECT_EQ(Shell("ls " + out + "/mail/user29@example.org/cur | wc -l").out, "5001\n");
  struct stat first {
  }, later{};
  ASSERT_EQ(::stat((out + "/mail/user0@example.org/cur/1700000000.M0P1.host,S=" +
                    std::to_string(FirstMessageSize()) + ":2,S")
                       .c_str(),
                   &first),
            0);
  ASSERT_EQ(::stat((out + "/mail/user29@example.org/cur/zz-link").c_str(), &later), 0);
  EXPECT_EQ(first.st_ino, later.st_ino) << "the hard link is restored as a link";
}

}  // namespace
}  // namespace mv::testing
