// Helpers for the SQLite tests: a scratch directory, a child process (a real second process,
// because SQLite locks are per process and per connection), and memory shared with it.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>

namespace mv::sqlite_test {

class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (std::filesystem::temp_directory_path() / "mv-sqlite-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Counters shared with a child process (anonymous shared mapping survives fork).
struct Shared {
  std::atomic<int64_t> started{0};    // highest count a writer has tried to commit
  std::atomic<int64_t> committed{0};  // highest count a writer saw COMMIT succeed for
  std::atomic<int> stop{0};           // parent -> child: finish
  std::atomic<int> ready{0};          // child -> parent: lock/transaction is held
  std::atomic<int64_t> seen[4]{};     // child -> parent: observations
};

class SharedBlock {
 public:
  SharedBlock() {
    void* p =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    s_ = new (p) Shared();
  }
  ~SharedBlock() { ::munmap(s_, sizeof(Shared)); }
  Shared* operator->() { return s_; }
  Shared& operator*() { return *s_; }

 private:
  Shared* s_;
};

// Runs `body` in a forked child; its return value is the exit code. The parent must hold no
// open SQLite connection across the fork. The destructor stops and reaps the child.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int rc = 1;
      try {
        rc = body();
      } catch (...) {
        rc = 99;
      }
      ::_exit(rc);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  // Exit code of the child (waits for it); -1 if it died from a signal.
  int Wait() {
    if (reaped_) return code_;
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    code_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return code_;
  }
  bool running() const { return pid_ > 0 && !reaped_; }
  // SIGKILL, as a crash would; returns after the child is reaped.
  void Kill() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
};

// Polls `cond` every millisecond for up to `limit`.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline int64_t CountRows(const std::string& db, const std::string& table) {
  SQLite::Database d(db, SQLite::OPEN_READONLY);
  return d.execAndGet("SELECT count(*) FROM " + table).getInt64();
}

inline std::string IntegrityCheck(const std::string& db) {
  SQLite::Database d(db, SQLite::OPEN_READONLY);
  return d.execAndGet("PRAGMA integrity_check").getString();
}

}  // namespace mv::sqlite_test
