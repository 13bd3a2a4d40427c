// For the tests that bound memory: the peak resident set of one mailvault run, read from the
// kernel (the child's VmHWM), and a tmpfs of a fixed size for a generated tree,
// so such a test can neither fill the disk nor leave anything behind (we are root in CI).
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace mv::testing {

// Under AddressSanitizer the resident set is the sanitizer's shadow and quarantine, not the
// program's: a bound on it would measure ASan. The ordinary build (tests/run.sh) runs these.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif
#else
constexpr bool kUnderAsan = false;
#endif

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

struct Measured {
  int exit_code = -1;
  long max_rss_kb = 0;  // VmHWM of the child's own address space
  std::string out;      // stdout
};

inline long HighWaterKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

// Runs mailvault `args` with stdout in `out_file` (stderr discarded); its exit code and peak RSS.
// The peak is sampled from /proc until the child exits, not taken from wait4's ru_maxrss: Linux
// counts in that the parent's resident set at the exec, and this test binary's is large. VmHWM
// only rises, so the last sample before the exit is the peak.
inline Measured RunMeasured(const std::vector<std::string>& args, const std::string& out_file) {
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
  if (pid < 0) return m;
  // Until the exec, /proc shows the forked copy of this process: wait for the new image.
  std::string bin = MAILVAULT_BIN, exe = "/proc/" + std::to_string(pid) + "/exe";
  int st = 0;
  for (;;) {
    char link[4096];
    ssize_t n = ::readlink(exe.c_str(), link, sizeof link - 1);
    bool exec_done = n > 0 && std::string(link, n).ends_with("/mailvault");
    if (exec_done) m.max_rss_kb = std::max(m.max_rss_kb, HighWaterKb(pid));
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (r < 0) return m;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  m.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  m.out = ReadFile(out_file);
  return m;
}

}  // namespace mv::testing
