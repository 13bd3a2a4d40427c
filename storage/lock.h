// The repository lock (docs/FORMAT.md §9): one exclusive lock file, locks/exclusive, created
// atomically with link(2). It names host, pid and start time and is refreshed every minute;
// a lock whose process is gone (same host) or that was not refreshed for 30 minutes is stale
// and is taken over, with a message saying so. The takeover swaps the stale file for ours with
// one renameat2(RENAME_EXCHANGE) and keeps the result only if what came out is the inode judged
// stale, so two processes racing on one stale lock never both hold it.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "storage/env.h"
#include "storage/status.h"

namespace mv::storage {

// How AcquireExclusive waits while another live process holds the lock (`--retry-lock`).
struct LockWait {
  int64_t timeout_ms = 0;  // 0: fail at once with kBusy; else retry until this much time passed
  int64_t poll_ms = 500;   // the pause between two attempts
  // Called each time the lock is found held (with the kBusy status naming the holder), before
  // the pause; for a message such as "waiting for the lock held by ...".
  std::function<void(const Status& held)> on_held;
  // What the lock records as this host, and compares a holder's host with: empty for the host
  // name. An encrypted repository gives a keyed hash of it (docs/ENCRYPTION.md "Locks"), so the
  // lock names no host to whoever holds the bucket.
  std::string host;
};

// What a lock's content says of its holder on this machine (docs/FORMAT.md §9): the host name
// to record, the start time of process `pid` ("" when unknown), and whether a holder recorded as
// (host, pid, pid_start) is a process of this host that is gone or whose pid is now another
// process's (then *why says so). Used by the lock on disk and the one on S3 alike.
std::string LockHostName();
std::string LockProcessStartTime(long pid);
// `me`: this host as the lock records it (LockWait::host; empty: the host name).
bool LockHolderGone(const std::string& host, long pid, const std::string& pid_start,
                    std::string* why, const std::string& me = "");

// A lock held until this object is destroyed (a RepoLock on disk, an S3 lock object).
class HeldLock {
 public:
  virtual ~HeldLock() = default;
};

class RepoLock final : public HeldLock {
 public:
  // `purpose` is recorded for whoever finds the lock held ("backup", "prune"...).
  // Returns kBusy naming the holder when another live process holds it. The lock files are
  // written and removed through `env` (which must outlive the lock); the minute refresh of the
  // mtime is not (it is metadata a crash may lose without harm).
  static Result<std::unique_ptr<RepoLock>> AcquireExclusive(const std::string& repo_path,
                                                            const std::string& purpose,
                                                            std::string* took_over_stale = nullptr,
                                                            Env* env = Env::Default(),
                                                            const std::string& host = "");
  // The same, retrying while the lock is held (not on other errors) until `wait.timeout_ms` has
  // passed; then kBusy naming the holder and how long it waited.
  static Result<std::unique_ptr<RepoLock>> AcquireExclusive(const std::string& repo_path,
                                                            const std::string& purpose,
                                                            const LockWait& wait,
                                                            std::string* took_over_stale = nullptr,
                                                            Env* env = Env::Default());
  ~RepoLock() override;
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

 private:
  RepoLock(std::string path, const struct stat& mine, Env* env);
  std::string path_;
  Env* env_;
  dev_t dev_;  // our lock file's inode: release removes only that file
  ino_t ino_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread refresher_;
};

}  // namespace mv::storage
