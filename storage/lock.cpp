// docs/FORMAT.md §9 (locks).
#include "storage/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>

#include "storage/fs.h"
#include "storage/layout.h"

namespace mv::storage {
namespace {

constexpr int kStaleSeconds = 30 * 60;

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// When process `pid` started (clock ticks since boot, /proc/<pid>/stat field 22), or "" when
// unknown. With the pid it names one process: a pid reused later (a restarted container's
// agent often gets the same small pid) has another start time.
std::string ProcessStartTime(long pid) {
  auto stat = fs::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return "";
  size_t pos = stat->rfind(')');  // the command name may hold spaces and parentheses
  for (int field = 2; pos != std::string::npos && field < 22; field++)
    pos = stat->find(' ', pos + 1);
  if (pos == std::string::npos) return "";
  return stat->substr(pos + 1, stat->find(' ', pos + 1) - pos - 1);
}

}  // namespace

std::string LockHostName() { return HostName(); }
std::string LockProcessStartTime(long pid) { return ProcessStartTime(pid); }

bool LockHolderGone(const std::string& host, long pid, const std::string& pid_start,
                    std::string* why, const std::string& me) {
  if (host != (me.empty() ? HostName() : me) || pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
    *why = "stale lock of pid " + std::to_string(pid) + " on this host, which is gone";
    return true;
  }
  if (!pid_start.empty()) {
    std::string now = ProcessStartTime(pid);
    if (!now.empty() && now != pid_start) {
      *why = "stale lock of pid " + std::to_string(pid) +
             " on this host, which is gone (that pid is now "
             "another process)";
      return true;
    }
  }
  return false;
}

namespace {

// True when the lock file `data` (read from the lock at `path`, status `st`) may be taken over;
// `why` says why (or who holds it).
bool IsStale(const std::string& data, const struct stat& st, int64_t now, const std::string& me,
             std::string* why) {
  nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
  std::string host = j.is_object() ? j.value("host", "") : "";
  long pid = j.is_object() ? j.value("pid", 0L) : 0;
  std::string holder = "held by pid " + std::to_string(pid) + " on " + host + " (" +
                       (j.is_object() ? j.value("purpose", "") : "") + " since " +
                       (j.is_object() ? j.value("started", "") : "") + ")";
  *why = holder;
  if (LockHolderGone(host, pid, j.is_object() ? j.value("pid_start", "") : "", why, me))
    return true;
  if (now - st.st_mtime > kStaleSeconds) {
    *why = "stale lock not refreshed for over 30 minutes (" + holder + ")";
    return true;
  }
  return false;
}

// The lock file as found: which inode it is, and what it says.
struct Found {
  bool exists = false;
  struct stat st {};
  std::string data;
};

Found ReadLock(const std::string& path) {
  Found f;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return f;
  if (::fstat(fd, &f.st) == 0) {
    f.exists = true;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) f.data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return f;
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Swaps the names `a` and `b`; on failure returns false with errno set (the Env's Status carries
// it).
bool Exchange(Env* env, const std::string& a, const std::string& b) {
  Status st = env->Rename(a, b, RenameMode::kExchange);
  if (!st.ok()) errno = st.sys_errno() ? st.sys_errno() : EIO;
  return st.ok();
}

// Replaces the stale lock `stale` (as read) by ours (`mine`, a fully written file) in one atomic
// step (§9): exchange the two names, so `lock` is never absent, then look at what came out. If it
// is the stale inode, we hold the lock and delete it; if another process replaced the stale lock
// first, what came out is its fresh lock: exchange back (nobody can have replaced ours meanwhile:
// it is not stale) and report the lock held. Returns true when we hold it.
Result<bool> TakeOver(Env* env, const std::string& lock, const std::string& mine,
                      const Found& stale) {
  if (!Exchange(env, mine, lock)) {
    if (errno == ENOENT) return false;  // the lock went away: try to link again
    if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)  // e.g. NFS: no safe takeover
      return Status::Busy(
          "the lock is stale, but this filesystem cannot replace it atomically "
          "(renameat2 RENAME_EXCHANGE is not supported); make sure its process is gone, "
          "then remove the lock file",
          lock);
    return Status::FromErrno(errno, "replace stale lock (renameat2 RENAME_EXCHANGE)", lock);
  }
  // Inode and bytes: a freed inode number may be reused by a newer lock file.
  Found out = ReadLock(mine);
  if (out.exists && SameFile(out.st, stale.st) && out.data == stale.data) {
    (void)env->RemoveFile(mine);  // the stale lock, now under our temp name
    return true;
  }
  if (!Exchange(env, mine, lock)) {
    if (errno == ENOENT)  // `mine` now names the other lock file, not ours: give up this time
      return Status::Busy("the lock changed during a takeover by another process; try again", lock);
    return Status::FromErrno(errno, "put back the lock taken over concurrently", lock);
  }
  return false;
}

}  // namespace

RepoLock::RepoLock(std::string path, const struct stat& mine, Env* env)
    : path_(std::move(path)), env_(env), dev_(mine.st_dev), ino_(mine.st_ino) {
  refresher_ = std::thread([this] {
    std::unique_lock<std::mutex> l(mu_);
    while (!cv_.wait_for(l, std::chrono::seconds(60), [this] { return stop_; }))
      ::utimensat(AT_FDCWD, path_.c_str(), nullptr, 0);
  });
}

RepoLock::~RepoLock() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  // Only our own lock file: a concurrent takeover may hold ours aside for an instant (§9).
  for (int i = 0; i < 1000; i++) {
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) return;
    if (st.st_dev == dev_ && st.st_ino == ino_) {
      (void)env_->RemoveFile(path_);
      return;
    }
    ::usleep(1000);
  }
}

Result<std::unique_ptr<RepoLock>> RepoLock::AcquireExclusive(const std::string& repo_path,
                                                             const std::string& purpose,
                                                             std::string* took_over_stale, Env* env,
                                                             const std::string& host) {
  std::string dir = layout::LocksDir(repo_path);
  // A repository on a read-only mount fails here first: say that, of the repository, rather
  // than naming the lock's temp file.
  auto read_only = [&](const Status& st) {
    return st.sys_errno() == EROFS
               ? Status::IOError(
                     "repository is read-only (its file system is mounted read-only) and this "
                     "command writes to it: remount it read-write, or use a command that only "
                     "reads (snapshots, ls, diff, restore, check)",
                     repo_path)
               : st;
  };
  if (Status st = fs::MakeDirs(dir, 0700, env); !st.ok()) return read_only(st);
  std::string lock = layout::ExclusiveLockFile(repo_path);
  char when[32];
  time_t now = static_cast<time_t>(env->NowNanos() / 1000000000);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  nlohmann::json j = {{"host", host.empty() ? HostName() : host},
                      {"pid", ::getpid()},
                      {"purpose", purpose},
                      {"started", when},
                      {"pid_start", ProcessStartTime(::getpid())}};
  std::string tmp = fs::Join(dir, layout::NewLockName(fs::RandomHex(8)));
  if (Status st = fs::WriteFileAtomic(tmp, j.dump(), env); !st.ok()) return read_only(st);
  struct stat mine_st;
  if (::stat(tmp.c_str(), &mine_st) != 0) return Status::FromErrno(errno, "stat", tmp);
  for (int attempt = 0; attempt < 5; attempt++) {
    Status linked = env->Link(tmp, lock);
    if (linked.ok()) {
      (void)env->RemoveFile(tmp);
      return std::unique_ptr<RepoLock>(new RepoLock(lock, mine_st, env));
    }
    if (linked.sys_errno() != EEXIST) {
      (void)env->RemoveFile(tmp);
      return Status(linked.code(), "create lock: " + linked.message(), lock);
    }
    Found found = ReadLock(lock);
    if (!found.exists) continue;  // released meanwhile
    std::string why;
    if (!IsStale(found.data, found.st, static_cast<int64_t>(now), host, &why)) {
      (void)env->RemoveFile(tmp);
      return Status::Busy("repository is locked: " + why +
                              ". Wait for it to finish; if that process is gone on another host, "
                              "remove the lock file",
                          lock);
    }
    auto took = TakeOver(env, lock, tmp, found);
    if (!took.ok()) {
      (void)env->RemoveFile(tmp);
      return took.status();
    }
    if (*took) {
      if (took_over_stale) *took_over_stale = why;
      return std::unique_ptr<RepoLock>(new RepoLock(lock, mine_st, env));
    }
  }
  (void)env->RemoveFile(tmp);
  return Status::Busy("could not take the repository lock (contended)", lock);
}

Result<std::unique_ptr<RepoLock>> RepoLock::AcquireExclusive(const std::string& repo_path,
                                                             const std::string& purpose,
                                                             const LockWait& wait,
                                                             std::string* took_over_stale,
                                                             Env* env) {
  using SteadyClock = std::chrono::steady_clock;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(wait.timeout_ms);
  for (;;) {
    auto lock = AcquireExclusive(repo_path, purpose, took_over_stale, env, wait.host);
    if (lock.ok() || lock.status().code() != Code::kBusy || wait.timeout_ms <= 0) return lock;
    auto now = SteadyClock::now();
    if (now >= deadline)
      return Status::Busy(lock.status().message() + " (gave up after waiting " +
                              std::to_string(wait.timeout_ms / 1000) + " s for it)",
                          lock.status().path());
    if (wait.on_held) wait.on_held(lock.status());
    auto pause =
        std::min<SteadyClock::duration>(std::chrono::milliseconds(wait.poll_ms), deadline - now);
    std::this_thread::sleep_for(pause);
  }
}

}  // namespace mv::storage
