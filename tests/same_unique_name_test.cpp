// Two different messages that share a Maildir unique name (one in new/, one in
// cur/, as a `tar -x` or a copy into a live Maildir leaves them) are two messages. Backup stores
// both, restore brings back both, verify counts both; only the same file (same inode) seen in
// new/ and then in cur/ is one message.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "test_util.h"

namespace mv::testing {
namespace {

class SameUniqueName : public RepoTest {
 protected:
  void SetUp() override {
    RepoTest::SetUp();
    for (const char* d : {"cur", "new", "tmp"})
      std::filesystem::create_directories(vol_ / ("mail/u@x/" + std::string(d)));
    WriteFile(vol_ / "mail/u@x/new/1.M1P1.h", "From: a\nSubject: one\n\nFIRST copy\n");
    WriteFile(vol_ / "mail/u@x/cur/1.M1P1.h:2,S",
              "From: a\nSubject: two\n\nSECOND different content\n");
  }
};

TEST_F(SameUniqueName, BackupStoresBothMessagesAndRestoreBringsBothBack) {
  RunResult b = Backup("mail=" + vol_ / "mail");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult ls = RunMailvault({"ls", "--repo", repo(), "--snapshot", "latest", "mail/u@x"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("new/1.M1P1.h"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("cur/1.M1P1.h:2,S"), std::string::npos) << ls.out;

  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  ASSERT_EQ(snaps.size(), 1u);
  ASSERT_EQ(snaps[0]["census"].size(), 1u);
  EXPECT_EQ(snaps[0]["census"][0]["messages"].get<int>(), 2);

  RunResult r = Restore("latest", out_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(ReadFile(out_ / "mail/u@x/new/1.M1P1.h"), "From: a\nSubject: one\n\nFIRST copy\n");
  EXPECT_EQ(ReadFile(out_ / "mail/u@x/cur/1.M1P1.h:2,S"),
            "From: a\nSubject: two\n\nSECOND different content\n");
}

TEST_F(SameUniqueName, VerifyFindsNothingMissingNorArrived) {
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  RunResult v = RunMailvault({"verify", "--repo", repo(), "--snapshot", "latest", "--source",
                              "mail=" + vol_ / "mail", "--json"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  auto j = Json(v);
  EXPECT_EQ(j["messages"].get<int>(), 2) << v.out;
  EXPECT_EQ(j["lost_messages"].get<int>(), 0) << v.out;
  ASSERT_EQ(j["live"].size(), 1u);
  EXPECT_EQ(j["live"][0]["arrived_since_count"].get<int>(), 0) << v.out;
  EXPECT_EQ(j["live"][0]["changed_count"].get<int>(), 0) << v.out;
}

// Restoring into a live folder that holds another message under the same unique name (with other
// flags) writes the snapshot's message: it is not "already present under other flags".
TEST_F(SameUniqueName, RestoreIntoLiveFolderDoesNotSkipADifferentMessageWithTheSameUniqueName) {
  std::filesystem::remove(vol_ / "mail/u@x/cur/1.M1P1.h:2,S");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  // Live: the snapshot's message is gone, another one with its unique name is in cur/.
  std::filesystem::remove(vol_ / "mail/u@x/new/1.M1P1.h");
  WriteFile(vol_ / "mail/u@x/cur/1.M1P1.h:2,S",
            "From: a\nSubject: two\n\nSECOND different content\n");
  RunResult r = RunMailvault(
      {"restore", "--repo", repo(), "--snapshot", "latest", "--target", vol_.path(), "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(ReadFile(vol_ / "mail/u@x/new/1.M1P1.h"), "From: a\nSubject: one\n\nFIRST copy\n");
  EXPECT_EQ(ReadFile(vol_ / "mail/u@x/cur/1.M1P1.h:2,S"),
            "From: a\nSubject: two\n\nSECOND different content\n");
}

// The same message (same inode) renamed from new/ to cur/ under other flags is still restored once.
TEST_F(SameUniqueName, RestoreIntoLiveFolderSkipsTheSameMessageUnderOtherFlags) {
  std::filesystem::remove(vol_ / "mail/u@x/cur/1.M1P1.h:2,S");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  std::filesystem::rename(vol_ / "mail/u@x/new/1.M1P1.h", vol_ / "mail/u@x/cur/1.M1P1.h:2,S");
  RunResult r = RunMailvault(
      {"restore", "--repo", repo(), "--snapshot", "latest", "--target", vol_.path(), "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_FALSE(std::filesystem::exists(vol_ / "mail/u@x/new/1.M1P1.h"));
  EXPECT_EQ(ReadFile(vol_ / "mail/u@x/cur/1.M1P1.h:2,S"), "From: a\nSubject: one\n\nFIRST copy\n");
}

}  // namespace
}  // namespace mv::testing
