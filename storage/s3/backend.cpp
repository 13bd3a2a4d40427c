// The S3 backend (storage/s3/backend.h; docs/S3.md).
#include "storage/s3/backend.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "storage/fs.h"
#include "storage/s3/xml.h"

namespace mv::storage::s3 {
namespace {

constexpr uint64_t kReadChunk = 8 << 20;  // OpenReader's range size
constexpr size_t kIdleClients = 16;       // curl handles kept for reuse
constexpr const char* kLockName = "locks/exclusive";

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::string Header(const Response& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// An HTTP-date ("Tue, 01 Dec 2026 10:00:00 GMT") in seconds since the epoch; -1 if malformed.
int64_t ParseHttpDate(const std::string& s) {
  struct tm tm {};
  const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return -1;
  return static_cast<int64_t>(::timegm(&tm));
}

std::string IsoTime(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string HostName() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string ErrorCode(const Response& r) {
  return r.status >= 300 ? ParseError(r.body).code : std::string();
}

bool IsRetryable(const Response& r) {
  return r.status >= 500 || r.status == 429 || ErrorCode(r) == "SlowDown";
}

void Backoff(const RetryPolicy& p, int retry) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  int64_t cap = p.first_ms;
  for (int i = 0; i < retry && cap < p.max_ms; i++) cap *= 2;
  cap = std::max<int64_t>(0, std::min(cap, p.max_ms));
  std::uniform_int_distribution<int64_t> d(0, cap);
  std::this_thread::sleep_for(std::chrono::milliseconds(d(rng)));
}

Request Req(std::string method, std::string key, std::string_view body = {}) {
  Request r;
  r.method = std::move(method);
  r.key = std::move(key);
  r.body = body;
  return r;
}

// "held by pid 12 on host-a (backup since 2026-12-01T10:00:00Z)" from a lock's content.
std::string Holder(const nlohmann::json& j) {
  auto str = [&](const char* k) {
    return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "?";
  };
  long pid =
      j.is_object() && j.contains("pid") && j["pid"].is_number_integer() ? j["pid"].get<long>() : 0;
  return "held by pid " + std::to_string(pid) + " on " + str("host") + " (" + str("purpose") +
         " since " + str("time") + ")";
}

std::string Duration(int64_t ms) {
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + " minutes";
  return std::to_string(ms / 1000) + " s";
}

}  // namespace

// Clients not in use, under a mutex. A request takes one (or makes one) and gives it back.
class S3Backend::Pool {
 public:
  Pool(Location loc, Credentials creds, std::string region, std::function<int64_t()> now)
      : loc_(std::move(loc)),
        creds_(std::move(creds)),
        region_(std::move(region)),
        now_(std::move(now)) {}
  std::unique_ptr<Client> Take() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return std::make_unique<Client>(loc_, creds_, region_, now_);
  }
  void Give(std::unique_ptr<Client> c) {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_.size() < kIdleClients) idle_.push_back(std::move(c));
  }

 private:
  const Location loc_;
  const Credentials creds_;
  const std::string region_;
  const std::function<int64_t()> now_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Client>> idle_;
};

S3Backend::S3Backend(Location loc, Credentials creds, std::string region, std::string scratch_dir,
                     RetryPolicy retry, std::function<int64_t()> now)
    : loc_(std::move(loc)), scratch_dir_(std::move(scratch_dir)), retry_(retry) {
  if (!now)
    now = [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };
  now_ = now;
  pool_ = std::make_unique<Pool>(loc_, std::move(creds), std::move(region), std::move(now));
  if (retry_.max_tries < 1) retry_.max_tries = 1;
  // A failure shows at the first temp file written there, naming the directory.
  if (!scratch_dir_.empty()) (void)fs::MakeDirs(scratch_dir_, 0700);
}

S3Backend::~S3Backend() = default;

int64_t S3Backend::Now() const { return now_(); }

std::string S3Backend::Describe(std::string_view rel) const {
  return rel.empty() ? loc_.Url() : loc_.Url() + "/" + std::string(rel);
}

BackendStats S3Backend::stats() const {
  BackendStats s;
  s.requests = requests_.load();
  s.retries = retries_.load();
  s.bytes_up = bytes_up_.load();
  s.bytes_down = bytes_down_.load();
  return s;
}

// What a message names for a request: the object's URL (the key is under the prefix), or the
// repository for a request on the bucket.
static std::string Named(const Location& loc, const Request& r) {
  if (r.key.empty()) return loc.Url();
  return "s3:" + loc.scheme + "://" + loc.host + "/" + loc.bucket + "/" + r.key;
}

Result<Response> S3Backend::Call(const Request& r) const {
  for (int attempt = 1;; attempt++) {
    std::unique_ptr<Client> client = pool_->Take();
    requests_++;
    bytes_up_ += r.body.size();
    Result<Response> resp = client->Send(r);
    pool_->Give(std::move(client));
    if (resp.ok()) bytes_down_ += resp->body.size();
    bool again = !resp.ok() || IsRetryable(*resp);
    if (!again) return resp;
    if (attempt >= retry_.max_tries) {
      std::string tries = " after " + std::to_string(attempt) + (attempt == 1 ? " try" : " tries");
      if (!resp.ok()) return Status::IOError(resp.status().message() + " (gave up" + tries + ")");
      return Status::IOError(r.method + " " + Named(loc_, r) + ": " + DescribeError(*resp) + tries);
    }
    retries_++;
    Backoff(retry_, attempt - 1);
  }
}

Status S3Backend::Failed(const Request& r, const Response& resp) const {
  std::string code = ParseError(resp.body).code;
  std::string what = r.method + " " + Named(loc_, r) + ": " + DescribeError(resp);
  if (code == "RequestTimeTooSkewed")
    return Status::IOError(what +
                           "; this machine's clock is off from the server's by more than 15 "
                           "minutes: fix the clock (NTP)");
  if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" ||
      code == "IllegalLocationConstraintException")
    return Status::IOError(what +
                           "; the bucket is in another region than the one signed for: pass "
                           "the bucket's region with --s3-region (or AWS_DEFAULT_REGION)");
  if (code == "NoSuchBucket")
    return Status::IOError(what + "; create the bucket '" + loc_.bucket +
                           "' first, or fix the repository URL");
  if (resp.status == 403 && r.method == "DELETE")
    return Status::IOError(what +
                           "; this credential may not delete: prune needs one that is allowed "
                           "s3:DeleteObject on the bucket (docs/S3.md §3)");
  if (resp.status == 403)
    return Status::IOError(what + (code == "AccessDenied" ? "" : ", access denied (AccessDenied)") +
                           "; check the credentials (AWS_ACCESS_KEY_ID / --s3-credentials-file) "
                           "and the bucket policy");
  return Status::IOError(what);
}

Status S3Backend::Create() {
  Request r = Req("GET", "");
  r.query = {{"list-type", "2"}, {"max-keys", "1"}};
  if (!loc_.prefix.empty()) r.query.push_back({"prefix", loc_.prefix + "/"});
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status != 200) return Failed(r, resp);
  MV_ASSIGN_OR_RETURN(ListPage page, ParseListObjectsV2(resp.body));
  if (!page.objects.empty())
    return Status::Invalid("there is already something under " + loc_.Url() + " (for example '" +
                           page.objects[0].key + "'); choose another prefix or an empty bucket");
  return Status::Ok();
}

Result<std::vector<ObjectInfo>> S3Backend::List(const std::string& dir) const {
  // The repository's keys all start with `root`; a directory's with root + dir + "/".
  std::string root = loc_.prefix.empty() ? "" : loc_.prefix + "/";
  std::string prefix = dir.empty() ? root : root + dir + "/";
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    Request r = Req("GET", "");
    r.query = {{"list-type", "2"}};
    if (!prefix.empty()) r.query.push_back({"prefix", prefix});
    if (list_page_size_ > 0) r.query.push_back({"max-keys", std::to_string(list_page_size_)});
    if (!token.empty()) r.query.push_back({"continuation-token", token});
    MV_ASSIGN_OR_RETURN(Response resp, Call(r));
    if (resp.status != 200) return Failed(r, resp);
    auto page = ParseListObjectsV2(resp.body);
    if (!page.ok())
      return Status::Corruption("listing " + Describe(dir) + ": " + page.status().message());
    for (auto& o : page->objects) {
      if (o.key.compare(0, root.size(), root) != 0) continue;  // not ours (a server's defect)
      out.push_back({o.key.substr(root.size()), o.size});
    }
    if (page->truncated && page->next_token.empty())
      return Status::Corruption("listing " + Describe(dir) +
                                ": the server said the listing goes on but gave no token");
    token = page->truncated ? page->next_token : "";
  } while (!token.empty());
  return out;
}

Result<std::string> S3Backend::Read(const std::string& name) const {
  Request r = Req("GET", loc_.Key(name));
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status == 200) return std::move(resp.body);
  if (resp.status == 404 && ErrorCode(resp) != "NoSuchBucket")
    return Status::NotFound("no such object", Describe(name));
  return Failed(r, resp);
}

Result<uint64_t> S3Backend::Size(const std::string& name) const {
  Request r = Req("HEAD", loc_.Key(name));
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status == 404) return Status::NotFound("no such object", Describe(name));
  if (resp.status != 200) return Failed(r, resp);
  const std::string len = Header(resp, "content-length");
  char* end = nullptr;
  unsigned long long n = std::strtoull(len.c_str(), &end, 10);
  if (len.empty() || *end != '\0')
    return Status::Corruption("HEAD " + Describe(name) + ": no valid Content-Length ('" + len +
                              "')");
  return static_cast<uint64_t>(n);
}

Result<std::string> S3Backend::ReadRange(const std::string& name, uint64_t first,
                                         uint64_t last) const {
  Request r = Req("GET", loc_.Key(name));
  r.headers = {{"Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}};
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status == 404 && ErrorCode(resp) != "NoSuchBucket")
    return Status::NotFound("no such object", Describe(name));
  if (resp.status == 200 && first == 0 && resp.body.size() == last + 1) return resp.body;
  if (resp.status != 206) return Failed(r, resp);
  if (resp.body.size() != last - first + 1)
    return Status::IOError("GET " + Describe(name) + " bytes " + std::to_string(first) + "-" +
                           std::to_string(last) + ": the server sent " +
                           std::to_string(resp.body.size()) + " bytes (the object changed?)");
  return std::move(resp.body);
}

// Reads [0, size) in ranges of kReadChunk, one range ahead of the caller at most.
class S3Backend::Reader final : public ObjectReader {
 public:
  Reader(const S3Backend* b, std::string name, uint64_t size)
      : b_(b), name_(std::move(name)), size_(size) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (off_ == chunk_.size()) {
      if (next_ >= size_) return size_t{0};
      uint64_t last = std::min(size_, next_ + kReadChunk) - 1;
      MV_ASSIGN_OR_RETURN(chunk_, b_->ReadRange(name_, next_, last));
      next_ = last + 1;
      off_ = 0;
    }
    size_t k = std::min(n, chunk_.size() - off_);
    std::copy_n(chunk_.data() + off_, k, buf);
    off_ += k;
    return k;
  }

 private:
  const S3Backend* b_;
  std::string name_;
  uint64_t size_;
  uint64_t next_ = 0;  // the first byte not fetched yet
  std::string chunk_;
  size_t off_ = 0;
};

Result<std::unique_ptr<ObjectReader>> S3Backend::OpenReader(const std::string& name) const {
  MV_ASSIGN_OR_RETURN(uint64_t size, Size(name));
  return std::unique_ptr<ObjectReader>(new Reader(this, name, size));
}

Result<Response> S3Backend::PutIfAbsent(const std::string& name, std::string_view data) {
  Request r = Req("PUT", loc_.Key(name), data);
  if (!no_conditional_put_) {
    r.headers = {{"If-None-Match", "*"}};
    MV_ASSIGN_OR_RETURN(Response resp, Call(r));
    if (resp.status == 200 || resp.status == 412) return resp;
    if (resp.status != 501) return Failed(r, resp);
    no_conditional_put_ = true;  // e.g. Swift's s3api: see the header comment
    r.headers.clear();
  }
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status != 200) return Failed(r, resp);
  return resp;
}

Status S3Backend::Put(const std::string& name, std::string_view data) {
  MV_ASSIGN_OR_RETURN(Response resp, PutIfAbsent(name, data));
  if (resp.status == 412)
    return Status::Busy("already exists (objects are written once; it was kept as it is)",
                        Describe(name));
  return Status::Ok();
}

Status S3Backend::PutFile(const std::string& local_path, const std::string& name) {
  MV_ASSIGN_OR_RETURN(std::string data, fs::ReadFile(local_path));
  MV_ASSIGN_OR_RETURN(Response resp, PutIfAbsent(name, data));
  (void)resp;  // 200, or 412: the same content-addressed bytes are there already
  return fs::RemoveFile(local_path);
}

Status S3Backend::Overwrite(const std::string& name, std::string_view data) {
  Request r = Req("PUT", loc_.Key(name), data);
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status != 200) return Failed(r, resp);
  return Status::Ok();
}

Status S3Backend::Delete(const std::string& name) {
  Request r = Req("DELETE", loc_.Key(name));
  MV_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.status == 200 || resp.status == 204) return Status::Ok();
  if (resp.status == 404 && ErrorCode(resp) != "NoSuchBucket") return Status::Ok();
  return Failed(r, resp);
}

// ---- The lock (docs/S3.md §2) ----

std::string S3Backend::LockBody(const std::string& purpose, const std::string& host,
                                const std::string& since, bool released) const {
  nlohmann::json j = {{"host", host.empty() ? HostName() : host},
                      {"pid", static_cast<long>(::getpid())},
                      {"pid_start", LockProcessStartTime(::getpid())},
                      {"purpose", purpose},
                      {"time", since},
                      {"refreshed", IsoTime(Now())},
                      {"released", released}};
  return j.dump();
}

// Our lock object: refreshed by a thread every lock_refresh_ms_ with If-Match on our ETag, and
// released the same way on destruction. A 412 on either means another process took the lock
// over (judged it stale): it is theirs then, and we leave it alone.
class S3Backend::Lock final : public HeldLock {
 public:
  Lock(S3Backend* b, std::string purpose, std::string host, std::string since, std::string etag)
      : b_(b),
        purpose_(std::move(purpose)),
        host_(std::move(host)),
        since_(std::move(since)),
        etag_(std::move(etag)) {
    refresher_ = std::thread([this] {
      std::unique_lock<std::mutex> l(mu_);
      while (!lost_ && !cv_.wait_for(l, std::chrono::milliseconds(b_->lock_refresh_ms_),
                                     [this] { return stop_; })) {
        l.unlock();
        Write(false);
        l.lock();
      }
    });
  }
  ~Lock() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (refresher_.joinable()) refresher_.join();
    if (!lost_) Write(true);
  }

 private:
  // Errors other than 412 are left for the next refresh (the lock goes stale only after many).
  void Write(bool released) {
    std::string body = b_->LockBody(purpose_, host_, since_, released);
    Request r = Req("PUT", b_->loc_.Key(kLockName), body);
    r.headers = {{"If-Match", etag_}};
    auto resp = b_->Call(r);
    if (!resp.ok()) return;
    if (resp->status == 200) etag_ = Unquote(Header(*resp, "etag"));
    if (resp->status == 412) lost_ = true;
  }

  S3Backend* b_;
  const std::string purpose_, host_, since_;
  std::string etag_;  // touched by the refresher, then by the destructor after the join
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread refresher_;
};

Result<std::unique_ptr<HeldLock>> S3Backend::TryLock(const std::string& purpose,
                                                     const std::string& host,
                                                     std::string* took_over_stale) {
  const std::string key = loc_.Key(kLockName);
  const std::string since = IsoTime(Now());
  const std::string body = LockBody(purpose, host, since, false);
  auto held = [&](const Response& resp) {
    return std::unique_ptr<HeldLock>(
        new Lock(this, purpose, host, since, Unquote(Header(resp, "etag"))));
  };
  for (int attempt = 0; attempt < 5; attempt++) {
    Request put = Req("PUT", key, body);
    put.headers = {{"If-None-Match", "*"}};
    MV_ASSIGN_OR_RETURN(Response created, Call(put));
    if (created.status == 200) return held(created);
    if (created.status == 501)
      return Status::Unsupported(
          "this S3 server does not support conditional writes (If-None-Match), which the "
          "repository lock needs (docs/S3.md §2)",
          Describe(kLockName));
    if (created.status == 409) continue;  // a concurrent write of the same key (RGW)
    if (created.status != 412) return Failed(put, created);

    Request get = Req("GET", key);
    MV_ASSIGN_OR_RETURN(Response found, Call(get));
    if (found.status == 404 && ErrorCode(found) == "NoSuchKey") continue;  // gone meanwhile
    if (found.status != 200) return Failed(get, found);
    nlohmann::json j = nlohmann::json::parse(found.body, nullptr, false);
    std::string holder = Holder(j);
    bool released = j.is_object() && j.contains("released") && j["released"].is_boolean() &&
                    j["released"].get<bool>();
    // The server's clock on both sides, so the hosts' clocks do not matter.
    int64_t modified = ParseHttpDate(Header(found, "last-modified"));
    int64_t server_now = ParseHttpDate(Header(found, "date"));
    bool stale =
        modified >= 0 && server_now >= 0 && (server_now - modified) * 1000 > lock_stale_after_ms_;
    // A holder on this host whose process is gone (killed, crashed) is stale at once, as on
    // disk (docs/FORMAT.md §9).
    std::string gone;
    if (!released && !stale && j.is_object() && j.contains("host") && j["host"].is_string() &&
        j.contains("pid") && j["pid"].is_number_integer())
      stale = LockHolderGone(j["host"].get<std::string>(), j["pid"].get<long>(),
                             j.contains("pid_start") && j["pid_start"].is_string()
                                 ? j["pid_start"].get<std::string>()
                                 : std::string(),
                             &gone, host);
    if (!released && !stale)
      return Status::Busy("repository is locked: " + holder +
                              ". Wait for it or, if that process is gone, it goes stale " +
                              Duration(lock_stale_after_ms_) + " after its last refresh",
                          Describe(kLockName));
    Request take = Req("PUT", key, body);
    take.headers = {{"If-Match", Unquote(Header(found, "etag"))}};  // RGW wants it unquoted
    MV_ASSIGN_OR_RETURN(Response taken, Call(take));
    // Another process was first (412), or is writing it right now (409): look again.
    if (taken.status == 412 || taken.status == 404 || taken.status == 409) continue;
    if (taken.status != 200) return Failed(take, taken);
    // Taking a released lock is the normal case, not worth a word.
    if (took_over_stale && !released)
      *took_over_stale = !gone.empty()
                             ? gone + " (" + holder + ")"
                             : "took over the stale lock " + holder + ", not refreshed for " +
                                   std::to_string(server_now - modified) + " s";
    return held(taken);
  }
  return Status::Busy("could not take the repository lock (contended)", Describe(kLockName));
}

Result<std::unique_ptr<HeldLock>> S3Backend::LockExclusive(const std::string& purpose,
                                                           const LockWait& wait,
                                                           std::string* took_over_stale) {
  using SteadyClock = std::chrono::steady_clock;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(wait.timeout_ms);
  for (;;) {
    auto lock = TryLock(purpose, wait.host, took_over_stale);
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

}  // namespace mv::storage::s3
