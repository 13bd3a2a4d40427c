// S3 repository URLs (storage/s3/location.h): what an operator writes after --repo, and the
// message for each thing that is wrong with it.
#include "storage/s3/location.h"

#include <gtest/gtest.h>

namespace mv::storage::s3 {
namespace {

TEST(S3Location, ResticsFormWithEndpointBucketAndPrefix) {
  auto loc = ParseLocation("s3:https://s3.example.net/mail-backups/mailu/nightly/", false);
  ASSERT_TRUE(loc.ok()) << loc.status().ToString();
  EXPECT_EQ(loc->scheme, "https");
  EXPECT_EQ(loc->host, "s3.example.net");
  EXPECT_EQ(loc->bucket, "mail-backups");
  EXPECT_EQ(loc->prefix, "mailu/nightly");
  EXPECT_FALSE(loc->loopback);
  EXPECT_EQ(loc->Key("packs/ab/cd"), "mailu/nightly/packs/ab/cd");
  EXPECT_EQ(loc->Url(), "s3:https://s3.example.net/mail-backups/mailu/nightly");
}

TEST(S3Location, NoSchemeMeansHttpsAndNoPrefixMeansTheBucketRoot) {
  auto loc = ParseLocation("s3:s3.example.net:9000/backups", false);
  ASSERT_TRUE(loc.ok()) << loc.status().ToString();
  EXPECT_EQ(loc->scheme, "https");
  EXPECT_EQ(loc->host, "s3.example.net:9000");
  EXPECT_EQ(loc->prefix, "");
  EXPECT_EQ(loc->Key("config"), "config");
  EXPECT_TRUE(IsS3Url("s3:x"));
  EXPECT_FALSE(IsS3Url("/srv/backups"));
}

TEST(S3Location, PlainHttpIsAcceptedForLoopbackOnlyUnlessAllowed) {
  for (const char* url : {"s3:http://127.0.0.1:7480/mv-test", "s3:http://localhost/mv-test",
                          "s3:http://[::1]:7480/mv-test", "s3:http://127.9.8.7/mv-test"}) {
    auto loc = ParseLocation(url, false);
    ASSERT_TRUE(loc.ok()) << url << ": " << loc.status().ToString();
    EXPECT_TRUE(loc->loopback) << url;
  }
  auto remote = ParseLocation("s3:http://s3.example.net/backups", false);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), Code::kInvalidArgument);
  EXPECT_NE(remote.status().message().find("'s3.example.net'"), std::string::npos);
  EXPECT_NE(remote.status().message().find("--s3-insecure-http"), std::string::npos);
  // Not loopback although it starts like it.
  EXPECT_FALSE(ParseLocation("s3:http://127.0.0.1.example.net/backups", false).ok());
  EXPECT_FALSE(ParseLocation("s3:http://localhost.example.net/backups", false).ok());
  EXPECT_TRUE(ParseLocation("s3:http://s3.example.net/backups", true).ok());
}

TEST(S3Location, EveryBadUrlNamesTheValueAndTheForm) {
  struct Case {
    const char* url;
    const char* says;
  } cases[] = {
      {"s3:https://s3.example.net", "the bucket is missing"},
      {"s3:https://s3.example.net/", "the bucket is missing"},
      {"s3:https:///backups", "the endpoint (host) is missing"},
      {"s3:https://s3.example.net/Mail_Backups", "bucket 'Mail_Backups' is not a valid"},
      {"s3:https://s3.example.net/ab", "bucket 'ab' is not a valid"},
      {"s3:https://s3.example.net/-backups", "bucket '-backups' is not a valid"},
      {"s3:https://s3.example.net/backups/a//b", "empty path segment"},
      {"s3:https://s3.example.net/backups?versionId=1", "query or fragment"},
      {"s3:ftp://s3.example.net/backups", "only https:// and http://"},
      {"s3:https://AKIA:secret@s3.example.net/backups", "credentials do not belong in the URL"},
      {"/srv/backups", "does not start with s3:"},
  };
  for (const auto& c : cases) {
    auto loc = ParseLocation(c.url, true);
    ASSERT_FALSE(loc.ok()) << c.url;
    const std::string& m = loc.status().message();
    EXPECT_NE(m.find(c.says), std::string::npos) << c.url << ": " << m;
    EXPECT_NE(m.find("the form is s3:"), std::string::npos) << m;
  }
  // A secret someone put into the URL is not repeated by the message.
  auto with_secret = ParseLocation("s3:https://AKIA:s3cr3t@s3.example.net/backups", true);
  ASSERT_FALSE(with_secret.ok());
  EXPECT_EQ(with_secret.status().message().find("s3cr3t"), std::string::npos)
      << with_secret.status().message();
  EXPECT_NE(with_secret.status().message().find("s3:https://***@s3.example.net/backups"),
            std::string::npos);
}

}  // namespace
}  // namespace mv::storage::s3
