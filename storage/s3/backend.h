// A repository in an S3 bucket (docs/S3.md §1-§4): storage/backend.h over the signed requests
// of storage/s3/http.h. Names map 1:1 onto keys under the Location's prefix.
//
// Requests are retried with exponential backoff and full jitter (RetryPolicy) on transport
// errors (no connection, timeout, reset), HTTP 5xx, 429 and SlowDown; other 4xx are not, and
// become messages that say what to fix (credentials, clock, bucket). No message ever holds a
// credential.
//
// Writes are write-once: Put and PutFile send `If-None-Match: *`. A server that answers 501
// (NotImplemented) to that header (OpenStack Swift's s3api) gets a plain PUT instead, from then
// on for this backend: content-addressed names (packs, snapshots) still come out right, since
// the same name always holds the same bytes, but Put of a name that exists then overwrites it
// instead of failing with kBusy. Each PUT is one request with the whole body in memory (packs
// are at most ~64 MiB); multipart upload is not implemented.
//
// The lock (docs/S3.md §2) is the object locks/exclusive, taken with `If-None-Match: *`,
// refreshed every minute and released with `If-Match: <own ETag>`, judged stale by the server's
// clock (its Last-Modified against the Date of our GET) after 30 minutes. It needs a server with
// conditional writes: without them LockExclusive fails with kUnsupported.
//
// Thread-safe: each request takes a Client (one curl handle, its connections kept) from a pool
// and gives it back, so concurrent workers use their own handles.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/backend.h"
#include "storage/s3/http.h"
#include "storage/s3/location.h"
#include "storage/s3/sigv4.h"

namespace mv::storage::s3 {

// How often a request is sent again. Before retry k (k = 0, 1, ...) the backend sleeps a time
// drawn uniformly from [0, min(max_ms, first_ms * 2^k)] ms ("full jitter").
struct RetryPolicy {
  int max_tries = 8;  // attempts in all, the first one included
  int64_t first_ms = 200;
  int64_t max_ms = 10000;
};

class S3Backend final : public Backend {
 public:
  // `scratch_dir` is a local directory for temp files (created if missing). `now` gives the
  // time in seconds since the epoch for x-amz-date and the lock's content (default: the system
  // clock; tests pass a skewed one).
  S3Backend(Location loc, Credentials creds, std::string region, std::string scratch_dir,
            RetryPolicy retry = {}, std::function<int64_t()> now = nullptr);
  ~S3Backend() override;
  S3Backend(const S3Backend&) = delete;
  S3Backend& operator=(const S3Backend&) = delete;

  // Location::Url() + "/" + rel ("s3:https://host/bucket/prefix/config").
  std::string Describe(std::string_view rel = {}) const override;
  const std::string& local_root() const override { return no_local_root_; }
  std::string ScratchDir() const override { return scratch_dir_; }

  // Checks that nothing is under the prefix (kInvalidArgument otherwise); S3 has no
  // directories to make. A missing bucket is an error naming it (this does not create buckets).
  Status Create() override;
  // ListObjectsV2 over every page.
  Result<std::vector<ObjectInfo>> List(const std::string& dir) const override;
  Result<std::string> Read(const std::string& name) const override;
  // Reads the object in ranged GETs of 8 MiB. The backend must outlive the reader.
  Result<std::unique_ptr<ObjectReader>> OpenReader(const std::string& name) const override;
  Result<std::string> ReadAt(const std::string& name, uint64_t offset,
                             uint64_t length) const override {
    if (length == 0) return std::string();
    return ReadRange(name, offset, offset + length - 1);
  }
  Result<uint64_t> Size(const std::string& name) const override;
  // kBusy ("already exists") when `name` exists: S3 keeps the first object.
  Status Put(const std::string& name, std::string_view data) override;
  // An existing `name` is success (it holds the same bytes); `local_path` is removed on success.
  Status PutFile(const std::string& local_path, const std::string& name) override;
  Status SyncDir(const std::string& /*dir*/) override { return Status::Ok(); }
  // A plain PUT over the existing object (atomic on S3).
  Status Overwrite(const std::string& name, std::string_view data) override;
  // DELETE; a missing object is success. Needs s3:DeleteObject (only prune deletes).
  Status Delete(const std::string& name) override;
  // The lock is released (its content marked "released", not deleted) when the returned object
  // is destroyed, which must happen before the backend is.
  Result<std::unique_ptr<HeldLock>> LockExclusive(const std::string& purpose, const LockWait& wait,
                                                  std::string* took_over_stale) override;

  BackendStats stats() const override;
  const Location& location() const { return loc_; }

  // Test knobs: the ListObjectsV2 page size (max-keys, default the server's 1000), the age after
  // which an unrefreshed lock is stale (default 30 min) and the lock's refresh period (default
  // 60 s). Set them before the backend is used.
  void set_list_page_size_for_testing(int keys) { list_page_size_ = keys; }
  void set_lock_stale_after_ms_for_testing(int64_t ms) { lock_stale_after_ms_ = ms; }
  void set_lock_refresh_ms_for_testing(int64_t ms) { lock_refresh_ms_ = ms; }

 private:
  class Pool;
  class Reader;
  class Lock;

  // Sends `r` with retries. Any HTTP answer that is not worth another try is returned as it is
  // (the caller judges it); transport errors, 5xx, 429 and SlowDown after the last try are
  // kIOError naming `op`, the key and the server's error.
  Result<Response> Call(const Request& r) const;
  // The kIOError for an answer the caller did not expect, saying what to fix.
  Status Failed(const Request& r, const Response& resp) const;
  // A PUT with `If-None-Match: *` (plain when the server cannot do it): 200 or 412 answers.
  Result<Response> PutIfAbsent(const std::string& name, std::string_view data);
  Result<std::string> ReadRange(const std::string& name, uint64_t first, uint64_t last) const;
  // One attempt at the lock (no waiting).
  Result<std::unique_ptr<HeldLock>> TryLock(const std::string& purpose, const std::string& host,
                                            std::string* took_over_stale);
  std::string LockBody(const std::string& purpose, const std::string& host,
                       const std::string& since, bool released) const;
  int64_t Now() const;

  Location loc_;
  std::string scratch_dir_;
  std::string no_local_root_;
  RetryPolicy retry_;
  std::function<int64_t()> now_;
  std::unique_ptr<Pool> pool_;
  int list_page_size_ = 0;  // 0: the server's default
  int64_t lock_stale_after_ms_ = 30 * 60 * 1000;
  int64_t lock_refresh_ms_ = 60 * 1000;
  std::atomic<bool> no_conditional_put_{false};  // the server answered 501 to If-None-Match
  mutable std::atomic<uint64_t> requests_{0}, retries_{0}, bytes_up_{0}, bytes_down_{0};
};

}  // namespace mv::storage::s3
