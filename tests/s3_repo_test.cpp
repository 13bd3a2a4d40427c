// Repositories on S3 through the real mailvault binary, against a real Ceph RGW on loopback
// (tests/rgw_fixture.h; not a mock: RGW checks every signature and payload hash). What an
// operator does: init, backup, snapshots, ls, restore bit-exact, a second backup that stores
// nothing new, check --read-data, forget --prune; with a write-only credential (a bucket policy
// that denies s3:DeleteObject) backup works and prune refuses; and the errors for a wrong secret,
// an unknown bucket, an unreachable endpoint and plain http to a remote host.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tests/rgw_fixture.h"
#include "tests/test_util.h"

namespace mv::testing {
namespace {

class RgwRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_ = Rgw::Get();
    ASSERT_NE(rgw_, nullptr) << "RGW did not start; see " << (rgw_ ? rgw_->log : "its log");
    ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["AWS_ACCESS_KEY_ID"].c_str(), 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", (*rgw_)["AWS_SECRET_ACCESS_KEY"].c_str(), 1);
    ::setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    ::setenv("XDG_CACHE_HOME", (cache_ / "").c_str(), 1);
    // One bucket per test; the prefix has a space, '+', '=' and UTF-8 (each must be encoded
    // once in the path and the signature).
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    bucket_ = "mv-repo-" + std::string(info->name());
    for (auto& c : bucket_) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
    ASSERT_TRUE(Rgw::MakeBucket(bucket_));
    url_ = "s3:" + (*rgw_)["MV_S3_ENDPOINT"] + "/" + bucket_ + "/mail backups/ü+=x";
  }
  void TearDown() override {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    ::unsetenv("XDG_CACHE_HOME");
  }
  RunResult Mv(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--repo", url_});
    return RunMailvault(args);
  }

  const Rgw* rgw_ = nullptr;
  std::string bucket_, url_;
  TempDir vol_{"mvvol"}, out_{"mvout"}, cache_{"mvcache"};
};

TEST_F(RgwRepoTest, RoundTripDedupCheckAndPrune) {
  MakeMailVolume(vol_.path(),
                 {.users = 3, .messages_per_user = 30, .seed = 7, .big_attachment = true});
  auto init = Mv({"init", "--json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  // A second init finds the repository and refuses, changing nothing.
  auto again = Mv({"init"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already"), std::string::npos) << again.err;

  auto b1 = Mv({"backup", "--json", "--source", "mail=" + vol_ / "mail", "--source",
                "data=" + vol_ / "data", "--source", "dkim=" + vol_ / "dkim"});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  auto j1 = Json(b1);
  EXPECT_GT(j1["blobs_new"].get<int64_t>(), 0);
  // Nothing changed: the second backup stores no blob.
  auto b2 = Mv({"backup", "--json", "--source", "mail=" + vol_ / "mail", "--source",
                "data=" + vol_ / "data", "--source", "dkim=" + vol_ / "dkim"});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_EQ(Json(b2)["blobs_new"].get<int64_t>(), 0);
  EXPECT_EQ(Json(b2)["bytes_packed"].get<int64_t>(), 0);

  auto snaps = Mv({"snapshots", "--json"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_EQ(Json(snaps).size(), 2u);

  auto ls = Mv({"ls", "--snapshot", "latest"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("main.db"), std::string::npos) << ls.out.substr(0, 2000);

  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // tmp/ holds half-delivered mail, which is not backed up; the database is an online-backup
  // image: the same rows, not the same bytes.
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "dkim"), ListTree(out_ / "dkim")), "");
  auto dump = [](const std::string& db) { return Shell("sqlite3 '" + db + "' .dump").out; };
  EXPECT_FALSE(dump(vol_ / "data/main.db").empty());
  EXPECT_EQ(dump(vol_ / "data/main.db"), dump(out_ / "data/main.db"));

  auto check = Mv({"check", "--read-data", "--json"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // forget --prune removes the older snapshot; what is left restores and checks.
  auto forget = Mv({"forget", "--keep-last", "1", "--prune", "--json"});
  ASSERT_EQ(forget.exit_code, 0) << forget.out << forget.err;
  auto snaps2 = Mv({"snapshots", "--json"});
  EXPECT_EQ(Json(snaps2).size(), 1u);
  auto check2 = Mv({"check", "--read-data"});
  EXPECT_EQ(check2.exit_code, 0) << check2.out << check2.err;
}

TEST_F(RgwRepoTest, WriteOnlyCredentialBacksUpButCannotPrune) {
  // The owner lets the agent user get, put and list, and denies it every delete.
  std::string user = "arn:aws:iam:::user/" + (*rgw_)["MV_S3_AGENT_USER"];
  std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Principal":{"AWS":[")" +
                       user + R"("]},
     "Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],
     "Resource":["arn:aws:s3:::)" +
                       bucket_ + R"(","arn:aws:s3:::)" + bucket_ + R"(/*"]},
    {"Effect":"Deny","Principal":{"AWS":[")" +
                       user + R"("]},
     "Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::)" +
                       bucket_ + R"(/*"]}]})";
  ASSERT_TRUE(Rgw::PutBucketPolicy(bucket_, policy));
  ASSERT_EQ(Mv({"init"}).exit_code, 0);  // as the owner
  ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["MV_S3_AGENT_ACCESS_KEY_ID"].c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", (*rgw_)["MV_S3_AGENT_SECRET_ACCESS_KEY"].c_str(), 1);
  WriteFile(vol_ / "data/a", "first\n");
  auto b1 = Mv({"backup", "--json", "--source", "data=" + vol_ / "data"});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  WriteFile(vol_ / "data/a", "second\n");
  auto b2 = Mv({"backup", "--json", "--source", "data=" + vol_ / "data"});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_EQ(Mv({"check", "--read-data"}).exit_code, 0);
  // prune needs delete: it refuses, says which permission, and no snapshot is lost.
  auto prune = Mv({"forget", "--keep-last", "1", "--prune"});
  EXPECT_EQ(prune.exit_code, 1) << prune.out << prune.err;
  EXPECT_NE(prune.err.find("DeleteObject"), std::string::npos) << prune.err;
  EXPECT_EQ(prune.err.find((*rgw_)["MV_S3_AGENT_SECRET_ACCESS_KEY"]), std::string::npos);
  auto snaps = Mv({"snapshots", "--json"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_EQ(Json(snaps).size(), 2u);
  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(out_ / "data/a"), "second\n");
}

TEST_F(RgwRepoTest, ClearErrorsNameTheEndpointAndTheFix) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  std::string secret = (*rgw_)["AWS_SECRET_ACCESS_KEY"];
  // A wrong secret: exit 1, says what to check, never prints the secret.
  ::setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-0123456789", 1);
  auto wrong = Mv({"snapshots"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("credentials"), std::string::npos) << wrong.err;
  EXPECT_NE(wrong.err.find(bucket_), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("wrong-secret-value"), std::string::npos) << wrong.err;
  ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  // No credentials at all: says what to set.
  ::unsetenv("AWS_ACCESS_KEY_ID");
  auto none = Mv({"snapshots"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("AWS_ACCESS_KEY_ID"), std::string::npos) << none.err;
  ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["AWS_ACCESS_KEY_ID"].c_str(), 1);
  // An unknown bucket.
  auto nob = RunMailvault(
      {"snapshots", "--repo", "s3:" + (*rgw_)["MV_S3_ENDPOINT"] + "/no-such-bucket-here"});
  EXPECT_EQ(nob.exit_code, 1);
  EXPECT_NE(nob.err.find("no-such-bucket-here"), std::string::npos) << nob.err;
  EXPECT_NE(nob.err.find("NoSuchBucket"), std::string::npos) << nob.err;
  // Plain http to a host that is not loopback is refused before any request.
  auto http = RunMailvault({"snapshots", "--repo", "s3:http://s3.example.net/b3t/x"});
  EXPECT_NE(http.exit_code, 0);
  EXPECT_NE(http.err.find("--s3-insecure-http"), std::string::npos) << http.err;
}

}  // namespace
}  // namespace mv::testing
