// The S3 request layer (storage/s3/http.h) against a real Ceph RADOS Gateway on loopback,
// started for this suite by tests/s3/rgw.sh (about 15 s; it installs the Debian packages when
// they are missing). Not a mock: the server checks every signature and payload hash.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "storage/s3/http.h"
#include "storage/s3/xml.h"

namespace mv::storage::s3 {
namespace {

constexpr int kPort = 17480;  // not RGW's default, so a developer's own RGW is left alone

std::string Source() { return MAILVAULT_SOURCE_DIR; }

using Pairs = std::vector<std::pair<std::string, std::string>>;

Request Req(std::string method, std::string key = "", Pairs headers = {},
            std::string_view body = {}, Pairs query = {}) {
  Request r;
  r.method = std::move(method);
  r.key = std::move(key);
  r.headers = std::move(headers);
  r.body = body;
  r.query = std::move(query);
  return r;
}

class RgwTest : public ::testing::Test {
 protected:
  // Under ctest, the rgw_start fixture has started one RGW for every test (MV_RGW_DIR names its
  // directory); run directly, the suite starts its own and stops it at the end.
  static void SetUpTestSuite() {
    const char* shared = std::getenv("MV_RGW_DIR");
    own_ = !shared || !*shared;
    dir_ = new std::string(own_ ? ::testing::TempDir() + "/mv-rgw-" + std::to_string(::getpid())
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
    started_ = started_ && env_->count("AWS_SECRET_ACCESS_KEY");
  }
  static void TearDownTestSuite() {
    if (own_) {
      std::string cmd = "bash " + Source() + "/tests/s3/rgw.sh stop " + *dir_;
      (void)std::system(cmd.c_str());
    }
    delete env_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_TRUE(started_) << "no RGW: " << *dir_ << "/env is missing or incomplete (run "
                          << "tests/s3/rgw.sh start " << *dir_ << "; its logs are under it)";
  }

  static Credentials Creds() {
    return {(*env_)["AWS_ACCESS_KEY_ID"], (*env_)["AWS_SECRET_ACCESS_KEY"]};
  }
  static Location Loc(const std::string& bucket) {
    auto loc = ParseLocation("s3:http://127.0.0.1:" + std::to_string(kPort) + "/" + bucket, false);
    EXPECT_TRUE(loc.ok()) << loc.status().ToString();
    return *loc;
  }
  static std::string* dir_;
  static std::map<std::string, std::string>* env_;
  static bool started_, own_;
};
std::string* RgwTest::dir_ = nullptr;
std::map<std::string, std::string>* RgwTest::env_ = nullptr;
bool RgwTest::started_ = false;
bool RgwTest::own_ = false;

TEST_F(RgwTest, AnObjectIsPutOnceReadByRangeListedHeadedAndDeleted) {
  Client c(Loc("mv-objects"), Creds(), "us-east-1");
  ASSERT_EQ(c.Send(Req("PUT"))->status, 200);
  const std::string key = "repo prefix/packs/a+b=c/\xC3\xBC.tar.zst";  // space, +, =, UTF-8
  const std::string data = "0123456789 the pack's bytes";
  auto put = c.Send(Req("PUT", key, {{"If-None-Match", "*"}}, data));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->status, 200) << DescribeError(*put);
  // Written once: the same key again is refused by the server, not overwritten.
  auto again = c.Send(Req("PUT", key, {{"If-None-Match", "*"}}, "other"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 412) << DescribeError(*again);
  auto part = c.Send(Req("GET", key, {{"Range", "bytes=2-5"}}));
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, "2345");
  auto head = c.Send(Req("HEAD", key));
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["content-length"], std::to_string(data.size()));
  auto list =
      c.Send(Req("GET", "", {}, {}, {{"list-type", "2"}, {"prefix", "repo prefix/packs/"}}));
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->status, 200) << DescribeError(*list);
  auto page = ParseListObjectsV2(list->body);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, key);
  EXPECT_EQ(page->objects[0].size, data.size());
  auto del = c.Send(Req("DELETE", key));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->status, 204);
  auto gone = c.Send(Req("GET", key));
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->status, 404);
  EXPECT_NE(DescribeError(*gone).find("NoSuchKey"), std::string::npos) << DescribeError(*gone);
}

TEST_F(RgwTest, AListingLongerThanAPageIsReadPageByPage) {
  Client c(Loc("mv-pages"), Creds(), "us-east-1");
  ASSERT_EQ(c.Send(Req("PUT"))->status, 200);
  std::set<std::string> put;
  for (int i = 0; i < 5; i++) {
    std::string key = "snapshots/" + std::to_string(i);
    ASSERT_EQ(c.Send(Req("PUT", key, {}, key))->status, 200);
    put.insert(key);
  }
  std::set<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    Request r =
        Req("GET", "", {}, {}, {{"list-type", "2"}, {"max-keys", "2"}, {"prefix", "snapshots/"}});
    if (!token.empty()) r.query.push_back({"continuation-token", token});
    auto resp = c.Send(r);
    ASSERT_TRUE(resp.ok());
    ASSERT_EQ(resp->status, 200) << DescribeError(*resp);
    auto page = ParseListObjectsV2(resp->body);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& o : page->objects) listed.insert(o.key);
    token = page->truncated ? page->next_token : "";
    pages++;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(listed, put);
  EXPECT_EQ(pages, 3);
}

TEST_F(RgwTest, WrongSecretSkewedClockAndUnknownBucketAreTheServersNamedErrors) {
  Client good(Loc("mv-errors"), Creds(), "us-east-1");
  ASSERT_EQ(good.Send(Req("PUT"))->status, 200);
  Credentials wrong = Creds();
  wrong.secret_access_key += "x";
  auto bad_secret = Client(Loc("mv-errors"), wrong, "us-east-1").Send(Req("GET", "k"));
  ASSERT_TRUE(bad_secret.ok());
  EXPECT_EQ(bad_secret->status, 403);
  EXPECT_NE(DescribeError(*bad_secret).find("SignatureDoesNotMatch"), std::string::npos)
      << DescribeError(*bad_secret);
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  Client skewed(Loc("mv-errors"), Creds(), "us-east-1", [now] { return now - 20 * 60; });
  auto old = skewed.Send(Req("GET", "k"));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->status, 403);
  EXPECT_NE(DescribeError(*old).find("RequestTimeTooSkewed"), std::string::npos)
      << DescribeError(*old);
  auto nobucket = Client(Loc("mv-no-such-bucket"), Creds(), "us-east-1").Send(Req("GET", "k"));
  ASSERT_TRUE(nobucket.ok());
  EXPECT_EQ(nobucket->status, 404);
  EXPECT_NE(DescribeError(*nobucket).find("NoSuchBucket"), std::string::npos)
      << DescribeError(*nobucket);
}

TEST_F(RgwTest, AnEndpointNobodyAnswersIsAnIOErrorNamingIt) {
  auto loc = ParseLocation("s3:http://127.0.0.1:1/mv-nowhere", false);
  ASSERT_TRUE(loc.ok());
  Client c(*loc, Creds(), "us-east-1");
  auto r = c.Send(Req("GET", "config"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIOError);
  EXPECT_NE(r.status().message().find("s3:http://127.0.0.1:1/mv-nowhere"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("key 'config'"), std::string::npos);
}

}  // namespace
}  // namespace mv::storage::s3
