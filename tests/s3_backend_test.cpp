// The S3 backend (storage/s3/backend.h) against a real Ceph RADOS Gateway on loopback, started by
// tests/s3/rgw.sh (under ctest: the rgw fixture, MV_RGW_DIR; run directly: its own, on port
// 17480), and against a tiny fake server for answers RGW cannot be made to give (SlowDown).
// Every test uses its own bucket and a prefix unique to the run, so runs against one RGW do not
// see each other's objects.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "storage/s3/backend.h"
#include "storage/s3/http.h"

namespace mv::storage::s3 {
namespace {

constexpr int kPort = 17480;  // the ctest fixture's port (tests/CMakeLists.txt)

std::string Source() { return MAILVAULT_SOURCE_DIR; }

class RgwBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* shared = std::getenv("MV_RGW_DIR");
    own_ = !shared || !*shared;
    dir_ = new std::string(own_ ? ::testing::TempDir() + "/mv-rgw-backend-" +
                                      std::to_string(::getpid())
                                : std::string(shared));
    started_ = true;
    if (own_) {
      std::string cmd = "bash " + Source() + "/tests/s3/rgw.sh start " + *dir_ + " " +
                        std::to_string(kPort) + " >" + *dir_ + ".log 2>&1";
      started_ = std::system(cmd.c_str()) == 0;
    }
    std::ifstream env(*dir_ + "/env");
    std::string line;
    env_ = new std::map<std::string, std::string>;
    while (std::getline(env, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) (*env_)[line.substr(0, eq)] = line.substr(eq + 1);
    }
    started_ = started_ && env_->count("AWS_SECRET_ACCESS_KEY") && env_->count("MV_S3_ENDPOINT");
    run_ = new std::string(std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr)));
  }
  static void TearDownTestSuite() {
    if (own_) {
      std::string cmd = "bash " + Source() + "/tests/s3/rgw.sh stop " + *dir_;
      (void)std::system(cmd.c_str());
    }
    delete env_;
    delete dir_;
    delete run_;
  }
  void SetUp() override {
    ASSERT_TRUE(started_) << "no RGW: " << *dir_ << "/env is missing or incomplete (run "
                          << "tests/s3/rgw.sh start " << *dir_ << "; its logs are under it)";
    scratch_ = ::testing::TempDir() + "/mv-s3-scratch-" + *run_;
  }

  static Credentials Creds() {
    return {(*env_)["AWS_ACCESS_KEY_ID"], (*env_)["AWS_SECRET_ACCESS_KEY"]};
  }
  // "http://127.0.0.1:17480/<bucket>/<prefix>-<run>" (the bucket is created).
  static Location Loc(const std::string& bucket, const std::string& prefix) {
    auto loc = ParseLocation("s3:" + (*env_)["MV_S3_ENDPOINT"] + "/" + bucket, false);
    EXPECT_TRUE(loc.ok()) << loc.status().ToString();
    Client c(*loc, Creds(), "us-east-1");
    Request mk;
    mk.method = "PUT";
    auto made = c.Send(mk);
    EXPECT_TRUE(made.ok() && made->status == 200) << (made.ok() ? DescribeError(*made) : "");
    loc->prefix = prefix.empty() ? "" : prefix + "-" + *run_;
    return *loc;
  }
  std::unique_ptr<S3Backend> Open(const Location& loc, RetryPolicy retry = {},
                                  Credentials creds = Creds(),
                                  std::function<int64_t()> now = nullptr) {
    return std::make_unique<S3Backend>(loc, creds, "us-east-1", scratch_, retry, now);
  }
  // The object as the server has it, read around the backend.
  static Response RawGet(const Location& loc, const std::string& rel) {
    Client c(loc, Creds(), "us-east-1");
    Request r;
    r.key = loc.Key(rel);
    auto resp = c.Send(r);
    EXPECT_TRUE(resp.ok());
    return resp.ok() ? *resp : Response{};
  }
  static void RawPut(const Location& loc, const std::string& rel, const std::string& body) {
    Client c(loc, Creds(), "us-east-1");
    Request r;
    r.method = "PUT";
    r.key = loc.Key(rel);
    r.body = body;
    auto resp = c.Send(r);
    ASSERT_TRUE(resp.ok());
    ASSERT_EQ(resp->status, 200) << DescribeError(*resp);
  }
  std::string WriteScratchFile(const std::string& name, const std::string& data) {
    EXPECT_EQ(std::system(("mkdir -p '" + scratch_ + "'").c_str()), 0);
    std::string path = scratch_ + "/" + name;
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  static std::string* dir_;
  static std::map<std::string, std::string>* env_;
  static std::string* run_;
  static bool started_, own_;
  std::string scratch_;
};
std::string* RgwBackendTest::dir_ = nullptr;
std::map<std::string, std::string>* RgwBackendTest::env_ = nullptr;
std::string* RgwBackendTest::run_ = nullptr;
bool RgwBackendTest::started_ = false;
bool RgwBackendTest::own_ = false;

std::map<std::string, uint64_t> AsMap(const std::vector<ObjectInfo>& v) {
  std::map<std::string, uint64_t> m;
  for (const auto& o : v) m[o.name] = o.size;
  return m;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x = rng();
    for (size_t k = 0; k < 8 && i + k < n; k++) s[i + k] = static_cast<char>(x >> (8 * k));
  }
  return s;
}

// The object's bytes, or the error as text (so a failure shows in the comparison).
std::string Text(const Result<std::string>& r) {
  return r.ok() ? r.value() : "<" + r.status().ToString() + ">";
}

std::string ReadAll(ObjectReader& r, size_t step) {
  std::string out, buf(step, '\0');
  for (;;) {
    auto n = r.Read(buf.data(), buf.size());
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) return out;
    out.append(buf.data(), *n);
  }
}

TEST_F(RgwBackendTest, ObjectsRoundTripUnderAPrefixWithSpacePlusEqualsAndUtf8) {
  Location loc = Loc("mv-be-roundtrip", "mail repo/a+b=c/\xC3\xBC");
  auto b = Open(loc);
  ASSERT_TRUE(b->Create().ok());
  const std::map<std::string, std::string> files = {
      {"config", "{\"version\":2}"},
      {"packs/ab/ab12 x+y=\xC3\xA9.tar.zst", std::string(1000, 'p')},
      {"packs/cd/cd34", "second pack"},
      {"index/0001", ""}};
  for (const auto& [name, data] : files) ASSERT_TRUE(b->Put(name, data).ok()) << name;
  for (const auto& [name, data] : files) {
    auto got = b->Read(name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, data) << name;
    auto size = b->Size(name);
    ASSERT_TRUE(size.ok()) << size.status().ToString();
    EXPECT_EQ(*size, data.size()) << name;
  }
  auto all = b->List("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::map<std::string, uint64_t> want;
  for (const auto& [name, data] : files) want[name] = data.size();
  EXPECT_EQ(AsMap(*all), want);  // relative to the repository root, not keys
  auto packs = b->List("packs");
  ASSERT_TRUE(packs.ok());
  EXPECT_EQ(AsMap(*packs),
            (std::map<std::string, uint64_t>{{"packs/ab/ab12 x+y=\xC3\xA9.tar.zst", 1000},
                                             {"packs/cd/cd34", 11}}));
  auto pack_names = ListNames(*b, "packs/cd");
  ASSERT_TRUE(pack_names.ok());
  EXPECT_EQ(*pack_names, std::vector<std::string>{"cd34"});
  auto none = b->List("snapshots");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  // "pack" is not "packs": a directory is a whole path segment.
  auto partial = b->List("pack");
  ASSERT_TRUE(partial.ok());
  EXPECT_TRUE(partial->empty());
  EXPECT_EQ(b->Describe("config"),
            "s3:" + (*env_)["MV_S3_ENDPOINT"] + "/mv-be-roundtrip/" + loc.prefix + "/config");
  EXPECT_EQ(b->local_root(), "");
  EXPECT_EQ(b->ScratchDir(), scratch_);
  BackendStats st = b->stats();
  EXPECT_GE(st.requests, 13u);
  EXPECT_EQ(st.retries, 0u);
  EXPECT_GE(st.bytes_up, 1000u);
  EXPECT_GE(st.bytes_down, 1000u);
}

TEST_F(RgwBackendTest, AListingIsFollowedOverEveryPage) {
  Location loc = Loc("mv-be-pages", "paged");
  auto b = Open(loc);
  b->set_list_page_size_for_testing(3);
  std::map<std::string, uint64_t> want;
  for (int i = 0; i < 10; i++) {
    std::string name = "snapshots/" + std::to_string(i);
    ASSERT_TRUE(b->Put(name, name).ok());
    want[name] = name.size();
  }
  ASSERT_TRUE(b->Put("index/x", "x").ok());
  uint64_t before = b->stats().requests;
  auto listed = b->List("snapshots");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->size(), 10u);
  EXPECT_EQ(AsMap(*listed), want);
  EXPECT_EQ(b->stats().requests - before, 4u);  // pages of 3, 3, 3, 1
}

TEST_F(RgwBackendTest, ARepositoryAtTheBucketRootListsNamesWithoutALeadingSlash) {
  // An empty prefix: keys are the names themselves.
  Location loc = Loc("mv-be-root-" + std::to_string(::getpid()), "");
  auto b = Open(loc);
  ASSERT_TRUE(b->Create().ok());
  ASSERT_TRUE(b->Put("config", "c").ok());
  ASSERT_TRUE(b->Put("keys/k1", "k").ok());
  auto all = b->List("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(AsMap(*all), (std::map<std::string, uint64_t>{{"config", 1}, {"keys/k1", 1}}));
  auto keys = b->List("keys");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(AsMap(*keys), (std::map<std::string, uint64_t>{{"keys/k1", 1}}));
  EXPECT_EQ(b->Create().code(), Code::kInvalidArgument);
}

TEST_F(RgwBackendTest, PutOfAnExistingNameIsBusyAndKeepsTheFirstContent) {
  Location loc = Loc("mv-be-once", "once");
  auto b = Open(loc);
  ASSERT_TRUE(b->Put("keys/k1", "first").ok());
  Status again = b->Put("keys/k1", "second");
  EXPECT_EQ(again.code(), Code::kBusy) << again.ToString();
  EXPECT_NE(again.ToString().find("already exists"), std::string::npos) << again.ToString();
  EXPECT_EQ(Text(b->Read("keys/k1")), "first");
  // Overwrite is the one way to replace (config, on a format upgrade).
  ASSERT_TRUE(b->Overwrite("keys/k1", "third").ok());
  EXPECT_EQ(Text(b->Read("keys/k1")), "third");
}

TEST_F(RgwBackendTest, PutFileUploadsAndConsumesTheFileAndAnExistingPackIsSuccess) {
  Location loc = Loc("mv-be-putfile", "putfile");
  auto b = Open(loc);
  const std::string pack = RandomBytes(300000, 7);
  std::string first = WriteScratchFile("p1", pack);
  ASSERT_TRUE(b->PutFile(first, "packs/aa/aa11").ok());
  EXPECT_NE(::access(first.c_str(), F_OK), 0) << "the local file is consumed";
  EXPECT_EQ(Text(b->Read("packs/aa/aa11")), pack);
  // The same content-addressed pack again (a retried backup): success, and consumed too.
  std::string second = WriteScratchFile("p2", pack);
  Status st = b->PutFile(second, "packs/aa/aa11");
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_NE(::access(second.c_str(), F_OK), 0);
  EXPECT_EQ(Text(b->Read("packs/aa/aa11")), pack);
  EXPECT_TRUE(b->SyncDir("packs/aa").ok());
  // A missing local file is an error naming it, and nothing is uploaded.
  Status missing = b->PutFile(scratch_ + "/nope", "packs/bb/bb22");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.ToString().find("nope"), std::string::npos) << missing.ToString();
  EXPECT_EQ(b->Size("packs/bb/bb22").status().code(), Code::kNotFound);
}

TEST_F(RgwBackendTest, OpenReaderReadsALargeObjectInRangesAndAnEmptyOne) {
  Location loc = Loc("mv-be-reader", "reader");
  auto b = Open(loc);
  const std::string big = RandomBytes(20 << 20, 42);  // 20 MiB: ranges of 8, 8 and 4 MiB
  ASSERT_TRUE(b->Put("packs/bi/big", big).ok());
  ASSERT_TRUE(b->Put("packs/em/empty", "").ok());
  uint64_t before = b->stats().requests;
  auto r = b->OpenReader("packs/bi/big");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string got = ReadAll(**r, (1 << 20) + 7);  // reads that straddle the ranges
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big) << "the bytes differ";
  EXPECT_EQ(b->stats().requests - before, 4u);  // HEAD and three ranged GETs
  auto e = b->OpenReader("packs/em/empty");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  char c;
  auto n = (*e)->Read(&c, 1);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(b->OpenReader("packs/no/such").status().code(), Code::kNotFound);
}

TEST_F(RgwBackendTest, AMissingNameIsNotFoundAndDeletingItIsFine) {
  Location loc = Loc("mv-be-missing", "missing");
  auto b = Open(loc);
  auto read = b->Read("snapshots/none");
  EXPECT_EQ(read.status().code(), Code::kNotFound) << read.status().ToString();
  EXPECT_NE(read.status().ToString().find(b->Describe("snapshots/none")), std::string::npos);
  EXPECT_EQ(b->Size("snapshots/none").status().code(), Code::kNotFound);
  EXPECT_TRUE(b->Delete("snapshots/none").ok());
  ASSERT_TRUE(b->Put("snapshots/s1", "s").ok());
  EXPECT_TRUE(b->Delete("snapshots/s1").ok());
  EXPECT_EQ(b->Read("snapshots/s1").status().code(), Code::kNotFound);
}

TEST_F(RgwBackendTest, CreateRefusesAPrefixThatHoldsSomethingAndNamesAMissingBucket) {
  Location loc = Loc("mv-be-create", "create");
  auto b = Open(loc);
  EXPECT_TRUE(b->Create().ok());
  ASSERT_TRUE(b->Put("config", "c").ok());
  Status st = b->Create();
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("already something under " + b->Describe()), std::string::npos)
      << st.ToString();
  // A longer prefix that starts the same is another, empty place.
  Location other = loc;
  other.prefix += "x";
  EXPECT_TRUE(Open(other)->Create().ok());
  Location nobucket = loc;
  nobucket.bucket = "mv-be-no-such-bucket";
  Status missing = Open(nobucket)->Create();
  EXPECT_EQ(missing.code(), Code::kIOError);
  EXPECT_NE(missing.message().find("NoSuchBucket"), std::string::npos) << missing.ToString();
  EXPECT_NE(missing.message().find("create the bucket 'mv-be-no-such-bucket'"), std::string::npos)
      << missing.ToString();
}

TEST_F(RgwBackendTest, AnUnreachableEndpointFailsNamingItAfterEveryTry) {
  auto loc = ParseLocation("s3:http://127.0.0.1:1/mv-nowhere/repo", false);
  ASSERT_TRUE(loc.ok());
  auto b = Open(*loc, RetryPolicy{3, 1, 5});
  Status st = b->Put("config", "c");
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find("s3:http://127.0.0.1:1/mv-nowhere"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("3 tries"), std::string::npos) << st.ToString();
  EXPECT_EQ(b->stats().retries, 2u);
  EXPECT_EQ(b->stats().requests, 3u);
}

TEST_F(RgwBackendTest, AWrongSecretSaysAccessDeniedWithoutTheSecret) {
  Location loc = Loc("mv-be-auth", "auth");
  Credentials wrong = Creds();
  wrong.secret_access_key = "WrongSecretValue1234567890abcdefghijklmno";
  auto b = Open(loc, {}, wrong);
  Status st = b->Put("config", "c");
  EXPECT_EQ(st.code(), Code::kIOError);
  const std::string m = st.ToString();
  EXPECT_NE(m.find("SignatureDoesNotMatch"), std::string::npos) << m;
  EXPECT_NE(m.find("AccessDenied"), std::string::npos) << m;
  EXPECT_NE(m.find("check the credentials"), std::string::npos) << m;
  EXPECT_EQ(m.find(wrong.secret_access_key), std::string::npos) << m;
  EXPECT_EQ(m.find(Creds().secret_access_key), std::string::npos) << m;
  EXPECT_EQ(b->stats().retries, 0u) << "a 403 is not retried";
  Status read = b->Read("config").status();
  EXPECT_EQ(read.code(), Code::kIOError) << read.ToString();
}

TEST_F(RgwBackendTest, ASkewedClockSaysToFixTheClock) {
  Location loc = Loc("mv-be-skew", "skew");
  int64_t real = static_cast<int64_t>(std::time(nullptr));
  auto b = Open(loc, {}, Creds(), [real] { return real + 3600; });
  Status st = b->Put("config", "c");
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find("RequestTimeTooSkewed"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("clock"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("NTP"), std::string::npos) << st.ToString();
}

TEST_F(RgwBackendTest, AWriteOnlyCredentialCannotDeleteAndIsToldWhichPermission) {
  Location loc = Loc("mv-be-writeonly", "wo");
  ASSERT_TRUE(env_->count("MV_S3_AGENT_ACCESS_KEY_ID"));
  // The bucket's owner allows the agent user get, put and list: not delete (docs/S3.md §3).
  nlohmann::json policy = {
      {"Version", "2012-10-17"},
      {"Statement",
       {{{"Effect", "Allow"},
         {"Principal", {{"AWS", {"arn:aws:iam:::user/" + (*env_)["MV_S3_AGENT_USER"]}}}},
         {"Action", {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}},
         {"Resource", {"arn:aws:s3:::mv-be-writeonly", "arn:aws:s3:::mv-be-writeonly/*"}}}}}};
  std::string body = policy.dump();
  Client owner(loc, Creds(), "us-east-1");
  Request set;
  set.method = "PUT";
  set.query = {{"policy", ""}};
  set.body = body;
  auto set_resp = owner.Send(set);
  ASSERT_TRUE(set_resp.ok());
  ASSERT_TRUE(set_resp->status == 200 || set_resp->status == 204) << DescribeError(*set_resp);
  Credentials agent{(*env_)["MV_S3_AGENT_ACCESS_KEY_ID"], (*env_)["MV_S3_AGENT_SECRET_ACCESS_KEY"]};
  auto b = Open(loc, {}, agent);
  ASSERT_TRUE(b->Put("packs/ab/ab1", "pack").ok());
  EXPECT_EQ(Text(b->Read("packs/ab/ab1")), "pack");
  Status del = b->Delete("packs/ab/ab1");
  EXPECT_EQ(del.code(), Code::kIOError) << del.ToString();
  EXPECT_NE(del.message().find("may not delete"), std::string::npos) << del.ToString();
  EXPECT_NE(del.message().find("s3:DeleteObject"), std::string::npos) << del.ToString();
  EXPECT_EQ(Text(b->Read("packs/ab/ab1")), "pack");
  // And it can still take and release the lock: release overwrites, it does not delete.
  {
    auto lock = b->LockExclusive("backup", {}, nullptr);
    ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  }
  // (Read as the agent: the object is the agent's, which the bucket's owner may not read.)
  auto j = nlohmann::json::parse(Text(b->Read("locks/exclusive")), nullptr, false);
  ASSERT_TRUE(j.is_object()) << Text(b->Read("locks/exclusive"));
  EXPECT_EQ(j.value("released", false), true);
}

TEST_F(RgwBackendTest, ConcurrentWorkersShareOneBackend) {
  Location loc = Loc("mv-be-threads", "threads");
  auto b = Open(loc);
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 6; t++)
    workers.emplace_back([&, t] {
      for (int i = 0; i < 15; i++) {
        std::string name = "packs/" + std::to_string(t) + "/" + std::to_string(i);
        std::string data = RandomBytes(10000 + i, t * 100 + i);
        if (!b->Put(name, data).ok()) failures++;
        auto got = b->Read(name);
        if (!got.ok() || *got != data) failures++;
      }
    });
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = b->List("packs");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 90u);
}

// ---- The lock (docs/S3.md §2) ----

TEST_F(RgwBackendTest, TheLockIsExclusiveAndReleasedByOverwritingIt) {
  Location loc = Loc("mv-be-lock", "lock");
  auto a = Open(loc), b = Open(loc);
  std::string took;
  auto first = a->LockExclusive("backup", {}, &took);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(took, "");
  auto second = b->LockExclusive("prune", {}, &took);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kBusy);
  const std::string m = second.status().ToString();
  EXPECT_NE(m.find("backup since"), std::string::npos) << m;
  EXPECT_NE(m.find("pid " + std::to_string(::getpid())), std::string::npos) << m;
  EXPECT_NE(m.find("goes stale 30 minutes after its last refresh"), std::string::npos) << m;
  first->reset();
  Response after = RawGet(loc, "locks/exclusive");
  ASSERT_EQ(after.status, 200) << "release keeps the object";
  auto j = nlohmann::json::parse(after.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << after.body;
  EXPECT_EQ(j.value("released", false), true) << after.body;
  EXPECT_EQ(j.value("purpose", ""), "backup");
  auto third = b->LockExclusive("prune", {}, &took);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(took, "") << "a released lock is no stale one";
  auto now_held = nlohmann::json::parse(RawGet(loc, "locks/exclusive").body, nullptr, false);
  EXPECT_EQ(now_held.value("purpose", ""), "prune");
  EXPECT_EQ(now_held.value("released", true), false);
}

TEST_F(RgwBackendTest, AWaitingLockerGetsTheLockWhenItIsReleased) {
  Location loc = Loc("mv-be-lockwait", "lockwait");
  auto a = Open(loc), b = Open(loc);
  auto first = a->LockExclusive("backup", {}, nullptr);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    first->reset();
  });
  int held_calls = 0;
  LockWait wait{10000, 100,
                [&](const Status& s) {
                  held_calls++;
                  EXPECT_EQ(s.code(), Code::kBusy);
                },
                ""};
  auto second = b->LockExclusive("prune", wait, nullptr);
  releaser.join();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GE(held_calls, 1);
  // Without waiting long enough: kBusy saying how long it waited.
  auto third = a->LockExclusive("check", LockWait{300, 100, nullptr, ""}, nullptr);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Code::kBusy);
  EXPECT_NE(third.status().message().find("gave up after waiting"), std::string::npos);
}

TEST_F(RgwBackendTest, AStaleLockIsTakenOverAndSaysWhose) {
  Location loc = Loc("mv-be-stale", "stale");
  RawPut(loc, "locks/exclusive",
         R"({"host":"gone-host","pid":4242,"purpose":"old backup","time":"2026-01-01T00:00:00Z",)"
         R"("released":false})");
  auto b = Open(loc);
  b->set_lock_stale_after_ms_for_testing(1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));  // Last-Modified has seconds
  std::string took;
  auto lock = b->LockExclusive("backup", {}, &took);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_NE(took.find("stale"), std::string::npos) << took;
  EXPECT_NE(took.find("pid 4242 on gone-host (old backup"), std::string::npos) << took;
  auto j = nlohmann::json::parse(RawGet(loc, "locks/exclusive").body, nullptr, false);
  EXPECT_EQ(j.value("purpose", ""), "backup");
}

TEST_F(RgwBackendTest, ALockThatIsRefreshedDoesNotGoStale) {
  Location loc = Loc("mv-be-refresh", "refresh");
  auto a = Open(loc), b = Open(loc);
  a->set_lock_refresh_ms_for_testing(300);
  b->set_lock_stale_after_ms_for_testing(2000);
  auto held = a->LockExclusive("backup", {}, nullptr);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  std::string etag0 = RawGet(loc, "locks/exclusive").headers["etag"];
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));  // > 2 s without a refresh
  EXPECT_NE(RawGet(loc, "locks/exclusive").headers["etag"], etag0) << "refreshed: new content";
  auto other = b->LockExclusive("prune", {}, nullptr);
  EXPECT_EQ(other.status().code(), Code::kBusy) << other.status().ToString();
  held->reset();  // releases with the refreshed ETag
  auto j = nlohmann::json::parse(RawGet(loc, "locks/exclusive").body, nullptr, false);
  EXPECT_EQ(j.value("released", false), true);
}

TEST_F(RgwBackendTest, OfTwoRacersOnAStaleLockExactlyOneWins) {
  Location loc = Loc("mv-be-race", "race");
  for (int round = 0; round < 3; round++) {
    RawPut(loc, "locks/exclusive",
           R"({"host":"gone-host","pid":4242,"purpose":"old","time":"x","released":false})");
    std::vector<std::unique_ptr<S3Backend>> backends;
    for (int i = 0; i < 2; i++) {
      backends.push_back(Open(loc));
      backends.back()->set_lock_stale_after_ms_for_testing(1000);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    std::vector<std::unique_ptr<HeldLock>> won(2);
    std::vector<Code> codes(2, Code::kOk);
    std::atomic<bool> go{false};
    std::vector<std::thread> racers;
    for (int i = 0; i < 2; i++)
      racers.emplace_back([&, i] {
        while (!go) std::this_thread::yield();
        auto l = backends[i]->LockExclusive("racer " + std::to_string(i), {}, nullptr);
        if (l.ok())
          won[i] = std::move(*l);
        else
          codes[i] = l.status().code();
      });
    go = true;
    for (auto& t : racers) t.join();
    int winners = (won[0] != nullptr) + (won[1] != nullptr);
    EXPECT_EQ(winners, 1) << "round " << round;
    for (int i = 0; i < 2; i++) {
      if (!won[i]) {
        EXPECT_EQ(codes[i], Code::kBusy);
      }
    }
    won.clear();  // releases: the next round overwrites it by hand anyway
  }
}

// ---- Retries, against a fake server that answers what it is told ----

// Answers each request on 127.0.0.1:<port> with the next of `answers` (the last one repeats).
class FakeServer {
 public:
  explicit FakeServer(std::vector<std::pair<int, std::string>> answers)
      : answers_(std::move(answers)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int served() const { return served_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[65536];
      size_t body_at = std::string::npos, want = 0;
      while (true) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        if (body_at == std::string::npos && (body_at = req.find("\r\n\r\n")) != std::string::npos) {
          body_at += 4;
          size_t cl = req.find("Content-Length: ");
          if (cl != std::string::npos && cl < body_at) want = std::stoul(req.substr(cl + 16));
        }
        if (body_at != std::string::npos && req.size() >= body_at + want) break;
      }
      const auto& [status, body] = answers_[std::min<size_t>(served_, answers_.size() - 1)];
      served_++;
      std::string resp =
          "HTTP/1.1 " + std::to_string(status) +
          " X\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  std::vector<std::pair<int, std::string>> answers_;
  int fd_ = -1, port_ = 0;
  std::atomic<int> served_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

const std::string kSlowDown =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
    "<Message>Please reduce your request rate.</Message></Error>";

Location FakeLoc(int port) {
  auto loc = ParseLocation("s3:http://127.0.0.1:" + std::to_string(port) + "/bucket/prefix", false);
  EXPECT_TRUE(loc.ok());
  return *loc;
}

TEST(S3BackendRetryTest, SlowDownAndServerErrorsAreRetriedUntilTheServerAccepts) {
  FakeServer server({{503, kSlowDown}, {500, ""}, {200, ""}});
  S3Backend b(FakeLoc(server.port()), {"AKID", "SECRETSECRET"}, "us-east-1",
              ::testing::TempDir() + "/mv-s3-fake", RetryPolicy{8, 1, 10});
  Status st = b.Put("config", "c");
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(server.served(), 3);
  EXPECT_EQ(b.stats().retries, 2u);
  EXPECT_EQ(b.stats().requests, 3u);
}

TEST(S3BackendRetryTest, AfterTheLastTryTheMessageNamesKeyStatusAndTheServersError) {
  FakeServer server({{503, kSlowDown}});
  S3Backend b(FakeLoc(server.port()), {"AKID", "SECRETSECRET"}, "us-east-1",
              ::testing::TempDir() + "/mv-s3-fake", RetryPolicy{4, 1, 10});
  Status st = b.Put("config", "c");
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_EQ(st.message(), "PUT s3:http://127.0.0.1:" + std::to_string(server.port()) +
                              "/bucket/prefix/config: SlowDown: Please reduce your request "
                              "rate. (HTTP 503) after 4 tries");
  EXPECT_EQ(b.stats().retries, 3u);
  EXPECT_EQ(st.ToString().find("SECRETSECRET"), std::string::npos);
}

TEST(S3BackendRetryTest, ANotFoundOrAClientErrorIsNotRetried) {
  FakeServer server({{400, "<Error><Code>InvalidArgument</Code><Message>no</Message></Error>"}});
  S3Backend b(FakeLoc(server.port()), {"AKID", "SECRETSECRET"}, "us-east-1",
              ::testing::TempDir() + "/mv-s3-fake", RetryPolicy{4, 1, 10});
  Status st = b.Put("config", "c");
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find("InvalidArgument: no (HTTP 400)"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(server.served(), 1);
  EXPECT_EQ(b.stats().retries, 0u);
}

TEST(S3BackendRetryTest, AServerWithoutConditionalWritesGetsPlainPuts) {
  FakeServer server({{501, "<Error><Code>NotImplemented</Code></Error>"}, {200, ""}});
  S3Backend b(FakeLoc(server.port()), {"AKID", "SECRETSECRET"}, "us-east-1",
              ::testing::TempDir() + "/mv-s3-fake", RetryPolicy{4, 1, 10});
  EXPECT_TRUE(b.Put("snapshots/s1", "s").ok());
  EXPECT_TRUE(b.Put("snapshots/s2", "s").ok());
  EXPECT_EQ(server.served(), 3) << "501 once, then plain PUTs";
}

}  // namespace
}  // namespace mv::storage::s3
