// docs/FORMAT.md §9 (locks).
#include "storage/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "storage/fs.h"

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
  size_t pos = stat->rfind(')');   // the command name may hold spaces and parentheses
  for (int field = 2; pos != std::string::npos && field < 22; field++) pos = stat->find(' ', pos + 1);
  if (pos == std::string::npos) return "";
  return stat->substr(pos + 1, stat->find(' ', pos + 1) - pos - 1);
}

// True when the lock at `path` may be taken over; `why` says why (or who holds it).
bool IsStale(const std::string& path, std::string* why) {
  auto data = fs::ReadFile(path);
  if (!data.ok()) {
    *why = "unreadable lock";
    return !fs::Exists(path);
  }
  nlohmann::json j = nlohmann::json::parse(*data, nullptr, false);
  std::string host = j.is_object() ? j.value("host", "") : "";
  long pid = j.is_object() ? j.value("pid", 0L) : 0;
  std::string holder = "held by pid " + std::to_string(pid) + " on " + host + " (" +
                       (j.is_object() ? j.value("purpose", "") : "") + " since " +
                       (j.is_object() ? j.value("started", "") : "") + ")";
  *why = holder;
  if (host == HostName() && pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
    *why = "stale lock of pid " + std::to_string(pid) + " on this host, which is gone";
    return true;
  }
  std::string started = j.is_object() ? j.value("pid_start", "") : "";
  if (host == HostName() && pid > 0 && !started.empty()) {
    std::string now = ProcessStartTime(pid);
    if (!now.empty() && now != started) {
      *why = "stale lock of pid " + std::to_string(pid) + " on this host, which is gone (that pid is now "
             "another process)";
      return true;
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime > kStaleSeconds) {
    *why = "stale lock not refreshed for over 30 minutes (" + holder + ")";
    return true;
  }
  return false;
}

}  // namespace

RepoLock::RepoLock(std::string path) : path_(std::move(path)) {
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
  ::unlink(path_.c_str());
}

Result<std::unique_ptr<RepoLock>> RepoLock::AcquireExclusive(const std::string& repo_path,
                                                             const std::string& purpose,
                                                             std::string* took_over_stale) {
  std::string dir = fs::Join(repo_path, "locks");
  MV_RETURN_IF_ERROR(fs::MakeDirs(dir));
  std::string lock = fs::Join(dir, "exclusive");
  char when[32];
  time_t now = ::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  nlohmann::json j = {{"host", HostName()}, {"pid", ::getpid()}, {"purpose", purpose}, {"started", when},
                      {"pid_start", ProcessStartTime(::getpid())}};
  std::string tmp = fs::Join(dir, "new-" + fs::RandomHex(8));
  MV_RETURN_IF_ERROR(fs::WriteFileAtomic(tmp, j.dump()));
  for (int attempt = 0; attempt < 3; attempt++) {
    if (::link(tmp.c_str(), lock.c_str()) == 0) {
      ::unlink(tmp.c_str());
      return std::unique_ptr<RepoLock>(new RepoLock(lock));
    }
    if (errno != EEXIST) {
      Status st = Status::FromErrno(errno, "create lock", lock);
      ::unlink(tmp.c_str());
      return st;
    }
    std::string why;
    if (!IsStale(lock, &why)) {
      ::unlink(tmp.c_str());
      return Status::Busy("repository is locked: " + why +
                          ". Wait for it to finish; if that process is gone on another host, "
                          "remove the lock file", lock);
    }
    if (took_over_stale) *took_over_stale = why;
    ::unlink(lock.c_str());
  }
  ::unlink(tmp.c_str());
  return Status::Busy("could not take the repository lock (contended)", lock);
}

}  // namespace mv::storage
