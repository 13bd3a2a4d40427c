// For the tests that bound memory: the peak resident set of one mailvault run, read from the
// kernel (wait4's rusage of the child alone), and a tmpfs of a fixed size for a generated tree,
// so such a test can neither fill the disk nor leave anything behind (we are root in CI).
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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
  long max_rss_kb = 0;
  std::string out;  // stdout
};

// Runs mailvault `args` with stdout in `out_file` (stderr discarded); its exit code and peak RSS.
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
  int st = 0;
  struct rusage ru {};
  if (::wait4(pid, &st, 0, &ru) == pid) {
    m.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    m.max_rss_kb = ru.ru_maxrss;
  }
  m.out = ReadFile(out_file);
  return m;
}

}  // namespace mv::testing
