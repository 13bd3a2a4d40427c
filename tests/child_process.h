// A mailvault run in the background, for tests that must act while it works: kill it
// (SIGKILL, as a crash would), race it, or change its source under it. Header-only; also the
// one launcher behind RunMailvault (test_util.cpp).
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace mv::testing {

class BackgroundMailvault {
 public:
  // Starts `mailvault args...` with stdout/stderr in files read by out()/err(). With
  // `as_uid` >= 0 the child drops to that uid/gid first (to see what an unprivileged
  // backup meets).
  explicit BackgroundMailvault(const std::vector<std::string>& args, int as_uid = -1) {
    char o[] = "/tmp/mvbg-out-XXXXXX", e[] = "/tmp/mvbg-err-XXXXXX";
    int ofd = ::mkstemp(o), efd = ::mkstemp(e);
    out_path_ = o;
    err_path_ = e;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(ofd, 1);
      ::dup2(efd, 2);
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::unsetenv("MAILVAULT_REPO");
      if (as_uid >= 0 &&
          (::setgroups(0, nullptr) != 0 || ::setgid(as_uid) != 0 || ::setuid(as_uid) != 0))
        ::_exit(126);
      std::vector<char*> argv;
      std::string bin = MAILVAULT_BIN;
      argv.push_back(bin.data());
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(ofd);
    ::close(efd);
  }
  ~BackgroundMailvault() {
    Kill();
    ::unlink(out_path_.c_str());
    ::unlink(err_path_.c_str());
  }

  pid_t pid() const { return pid_; }
  bool exited() {
    if (reaped_) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) Reaped(st);
    return reaped_;
  }
  // SIGKILL and reap. Returns true when the kill landed (the process was still running).
  bool Kill() {
    if (reaped_ || pid_ <= 0) return false;
    ::kill(pid_, SIGKILL);
    Wait();
    return killed_;
  }
  int Wait() {
    if (!reaped_) {
      int st = 0;
      ::waitpid(pid_, &st, 0);
      Reaped(st);
    }
    return exit_code_;
  }
  std::string out() const { return ReadFile(out_path_); }
  std::string err() const { return ReadFile(err_path_); }

 private:
  void Reaped(int st) {
    reaped_ = true;
    killed_ = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  pid_t pid_ = -1;
  bool reaped_ = false, killed_ = false;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
};

// Polls `cond` every millisecond for up to `limit`.
inline bool PollUntil(const std::function<bool()>& cond,
                      std::chrono::milliseconds limit = std::chrono::seconds(120)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Finished pack files in a repository (packs/<xx>/<id>.tar.zst).
inline size_t CountPacks(const std::string& repo) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(repo + "/packs", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->path().string().ends_with(".tar.zst")) n++;
  return n;
}

// `n` bytes from /dev/urandom (incompressible, so every byte lands in a pack).
inline void WriteRandomFile(const std::string& path, size_t n) {
  std::string data(n, '\0');
  int fd = ::open("/dev/urandom", O_RDONLY);
  for (size_t got = 0; got < n;) {
    ssize_t k = ::read(fd, data.data() + got, n - got);
    if (k <= 0) break;
    got += static_cast<size_t>(k);
  }
  ::close(fd);
  WriteFile(path, data);
}

}  // namespace mv::testing
