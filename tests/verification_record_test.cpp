// Verification records (docs/FORMAT.md §11): a verify writes its verdict into the repository,
// `snapshots` shows each snapshot's standing (complete/partial, verified/FAILED/-), and a record
// that cannot be read costs only itself.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

struct Repo {
  TempDir dir{"mvproof"};
  std::string repo() const { return dir / "repo"; }
  std::string src() const { return dir / "src"; }
  std::string Backup() {
    RunResult b = RunMailvault({"backup", "--repo", repo(), "--json", "--source", "mail=" + src()});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    return Json(b)["snapshot"];
  }
  nlohmann::json Snapshots() {
    RunResult r = RunMailvault({"snapshots", "--repo", repo(), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json(r);
  }
  Repo() {
    EXPECT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0);
    WriteFile(src() + "/alice@example.org/cur/1700000000.M1P1.host:2,S", "Subject: a\n\nhello\n");
  }
};

std::vector<std::string> Records(const std::string& repo) {
  std::vector<std::string> v;
  if (!stdfs::exists(repo + "/verifications")) return v;
  for (const auto& e : stdfs::directory_iterator(repo + "/verifications"))
    v.push_back(e.path().filename());
  return v;
}

TEST(VerificationRecord, VerifyRecordsItsVerdictAndSnapshotsShowsIt) {
  Repo r;
  std::string first = r.Backup();
  WriteFile(r.src() + "/alice@example.org/new/1700000001.M2P1.host", "Subject: b\n\nmore\n");
  std::string second = r.Backup();
  auto before = r.Snapshots();
  EXPECT_TRUE(before[0]["verification"].is_null()) << "never verified";
  EXPECT_EQ(before[0]["complete"], true);

  RunResult v = RunMailvault({"verify", "--repo", r.repo(), "--snapshot", first, "--json"});
  ASSERT_EQ(v.exit_code, 0) << v.err << v.out;
  EXPECT_EQ(Json(v)["recorded"], true);
  auto recs = Records(r.repo());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].substr(0, 32), first) << "named after the snapshot it proves";

  auto after = r.Snapshots();
  ASSERT_EQ(after.size(), 2u);
  ASSERT_TRUE(after[0]["verification"].is_object()) << after.dump();
  EXPECT_EQ(after[0]["verification"]["ok"], true);
  EXPECT_GT(after[0]["verification"]["time"].get<int64_t>(), 1700000000);
  EXPECT_TRUE(after[1]["verification"].is_null()) << "the other snapshot stays unverified";

  RunResult table = RunMailvault({"snapshots", "--repo", r.repo()});
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("PROOF"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("verified"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("complete"), std::string::npos) << table.out;
  RunResult check = RunMailvault({"check", "--repo", r.repo()});
  EXPECT_EQ(check.exit_code, 0) << "records are part of the format: " << check.err << check.out;
}

TEST(VerificationRecord, AFailedVerifyIsRecordedAsFailed) {
  Repo r;
  std::string id = r.Backup();
  // Damage the content pack (the one whose files hold the message; the tree pack holds records):
  // the message no longer restores intact, which verify must call a failure.
  int damaged = 0;
  for (const auto& e : stdfs::recursive_directory_iterator(r.repo() + "/packs")) {
    if (!e.is_regular_file()) continue;
    if (Shell("tar --zstd -xOf '" + e.path().string() + "' | grep -q hello").exit_code != 0)
      continue;
    std::string data = ReadFile(e.path());
    data[data.size() / 2] ^= 0x55;
    stdfs::permissions(e.path(), stdfs::perms::owner_all);
    WriteFile(e.path(), data);
    damaged++;
  }
  ASSERT_EQ(damaged, 1);
  RunResult v = RunMailvault({"verify", "--repo", r.repo(), "--snapshot", id, "--json"});
  EXPECT_NE(v.exit_code, 0) << v.out;
  auto snaps = r.Snapshots();
  ASSERT_EQ(Records(r.repo()).size(), 1u) << "a failed verdict is recorded too: " << v.err << v.out;
  ASSERT_TRUE(snaps[0]["verification"].is_object());
  EXPECT_EQ(snaps[0]["verification"]["ok"], false);
  EXPECT_FALSE(snaps[0]["verification"]["summary"].get<std::string>().empty());
  EXPECT_NE(RunMailvault({"snapshots", "--repo", r.repo()}).out.find("FAILED"), std::string::npos);
}

TEST(VerificationRecord, ADamagedRecordIsSkippedWithAWarningNamingIt) {
  Repo r;
  std::string id = r.Backup();
  ASSERT_EQ(RunMailvault({"verify", "--repo", r.repo(), "--snapshot", id}).exit_code, 0);
  auto recs = Records(r.repo());
  ASSERT_EQ(recs.size(), 1u);
  std::string path = r.repo() + "/verifications/" + recs[0];
  WriteFile(path, ReadFile(path).substr(0, 20));  // torn
  RunResult s = RunMailvault({"snapshots", "--repo", r.repo(), "--json"});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.err.find(recs[0]), std::string::npos) << "the warning names the record: " << s.err;
  EXPECT_TRUE(Json(s)[0]["verification"].is_null()) << "a torn record proves nothing";
}

}  // namespace
}  // namespace mv::testing
