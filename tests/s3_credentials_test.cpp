// S3 credentials (storage/s3/credentials.h): the AWS shared credentials file an operator or a
// swarm secret provides, the environment, and the messages for what is missing. No message may
// contain the secret.
#include "storage/s3/credentials.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>

namespace mv::storage::s3 {
namespace {

constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY=EXAMPLEKEY";
constexpr char kPastedSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYPASTEDKEY";  // a line of its own

std::string File() {
  return std::string(
             "# written by the operator\n[default]\naws_access_key_id = AKIADEFAULT\n"
             "aws_secret_access_key = ") +
         kSecret +
         "\r\n\n; the prune host's profile\n[profile prune]\naws_access_key_id=AKIAPRUNE\n"
         "aws_secret_access_key=prune-secret\n";
}

TEST(S3Credentials, TheDefaultAndANamedProfileAreRead) {
  auto d = ParseCredentialsFile(File(), "/run/secrets/s3", "default");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->access_key_id, "AKIADEFAULT");
  EXPECT_EQ(d->secret_access_key, kSecret);  // '=' inside the value, CRLF line end
  auto p = ParseCredentialsFile(File(), "/run/secrets/s3", "prune");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->access_key_id, "AKIAPRUNE");
  EXPECT_EQ(p->secret_access_key, "prune-secret");
}

TEST(S3Credentials, WhatIsWrongWithAFileIsNamedAndTheSecretIsNever) {
  struct Case {
    std::string text, profile, says;
  } cases[] = {
      {File(), "agent", "no profile [agent] in the credentials file (it has: default, prune)"},
      {"", "default", "(it has: none)"},
      {"[default]\naws_access_key_id = A\n", "default", "[default] has no aws_secret_access_key"},
      {std::string("[default]\naws_secret_access_key = ") + kSecret + "\n", "default",
       "has no aws_access_key_id"},
      {std::string("[default]\naws_access_key_id = A\n") + kPastedSecret + "\n", "default",
       "line 3 is neither a [profile], a comment nor key = value"},
      {std::string("aws_secret_access_key = ") + kSecret + "\n", "default",
       "line 1 sets a key before any [profile] section"},
      {"[default\n", "default", "line 1 opens a section without closing it"},
  };
  for (const auto& c : cases) {
    auto r = ParseCredentialsFile(c.text, "/run/secrets/s3", c.profile);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    std::string all = r.status().ToString();
    EXPECT_NE(all.find(c.says), std::string::npos) << c.says << " | " << all;
    EXPECT_NE(all.find("/run/secrets/s3"), std::string::npos) << all;
    EXPECT_EQ(all.find(kSecret), std::string::npos) << all;
    EXPECT_EQ(all.find(kPastedSecret), std::string::npos) << all;
  }
}

TEST(S3Credentials, TheEnvironmentIsUsedWithoutAFileAndItsAbsenceSaysWhatToSet) {
  std::map<std::string, std::string> env = {{"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                            {"AWS_SECRET_ACCESS_KEY", kSecret}};
  auto getenv = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto c = LoadCredentials("", "", getenv);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAENV");
  env.erase("AWS_SECRET_ACCESS_KEY");
  auto missing = LoadCredentials("", "", getenv);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("AWS_SECRET_ACCESS_KEY is not set"), std::string::npos);
  EXPECT_NE(missing.status().message().find("--s3-credentials-file"), std::string::npos);
}

TEST(S3Credentials, AFileIsReadFromDiskAndAMissingOneIsNamed) {
  std::string path = ::testing::TempDir() + "/mv-s3-credentials";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(File().c_str(), f);
  std::fclose(f);
  auto none = [](const char*) -> const char* { return nullptr; };
  auto c = LoadCredentials(path, "prune", none);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIAPRUNE");
  std::remove(path.c_str());
  auto gone = LoadCredentials(path, "", none);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().ToString().find(path), std::string::npos);
  EXPECT_NE(gone.status().message().find("check --s3-credentials-file"), std::string::npos);
}

}  // namespace
}  // namespace mv::storage::s3
