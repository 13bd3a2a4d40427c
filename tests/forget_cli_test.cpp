// `mailvault backup --time` and `mailvault forget` through the real binary: the recorded time,
// bad input (exit code, a message naming the value, nothing removed), forget by ID and prefix,
// dry runs, the empty policy, the refusal to empty a group, and a real forget after which
// `snapshots` no longer lists what was removed and `check` is clean.
#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <set>

#include "storage/repository.h"
#include "storage/verification.h"
#include "tests/test_util.h"

namespace mv::testing {
namespace {

namespace fs = std::filesystem;

class ForgetCli : public RepoTest {
 protected:
  void SetUp() override {
    RepoTest::SetUp();
    WriteFile(vol_ / "data/file", "tiny\n");
  }
  // A backup of the tiny source at `time`; returns the snapshot ID.
  std::string BackupAt(const std::string& time, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {
        "backup", "--repo", repo(), "--json", "--source", "data=" + vol_ / "data", "--time", time};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? Json(r)["snapshot"].get<std::string>() : "";
  }
  std::vector<nlohmann::json> Snapshots() {
    auto r = RunMailvault({"snapshots", "--repo", repo(), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = Json(r);
    return {j.begin(), j.end()};
  }
  std::set<std::string> SnapshotIds() {
    std::set<std::string> ids;
    for (const auto& s : Snapshots()) ids.insert(s["id"].get<std::string>());
    return ids;
  }
  RunResult Forget(std::vector<std::string> args) {
    args.insert(args.begin(), {"forget", "--repo", repo()});
    return RunMailvault(args);
  }
};

int64_t Utc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return timegm(&tm);
}

TEST_F(ForgetCli, BackupTimeIsRecordedInUtcOrAtTheGivenOffset) {
  BackupAt("2026-11-30 03:00:00");
  BackupAt("2026-11-29T03:00:00Z");
  BackupAt("2026-11-28T04:30:00+01:30");
  BackupAt("2026-11-27T00:00:00-03:00");
  std::vector<int64_t> times;
  for (const auto& s : Snapshots()) times.push_back(s["time"].get<int64_t>());
  EXPECT_EQ(times, (std::vector<int64_t>{Utc(2026, 11, 27, 3, 0, 0), Utc(2026, 11, 28, 3, 0, 0),
                                         Utc(2026, 11, 29, 3, 0, 0), Utc(2026, 11, 30, 3, 0, 0)}));
}

TEST_F(ForgetCli, BackupRejectsABadTimeNamingItAndTheAcceptedForms) {
  for (const char* bad :
       {"yesterday", "2026-13-01 00:00:00", "2026-02-29 00:00:00", "2026-11-30 24:00:00",
        "2026-11-30 03:00", "2026-11-30 03:00:00 CET", "2026-11-30T03:00:00+1:00",
        "1969-12-31 23:59:59", "2026-11-30_03:00:00"}) {
    auto r = RunMailvault(
        {"backup", "--repo", repo(), "--source", "data=" + vol_ / "data", "--time", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find(std::string("'") + bad + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("YYYY-MM-DD HH:MM:SS"), std::string::npos) << r.err;
  }
  EXPECT_TRUE(Snapshots().empty());
}

TEST_F(ForgetCli, BadInputExitsTwoNamingTheValueAndRemovesNothing) {
  BackupAt("2026-01-01 00:00:00");
  BackupAt("2026-01-02 00:00:00");
  BackupAt("2026-01-03 00:00:00");
  auto before = SnapshotIds();
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  for (const Case& c :
       std::vector<Case>{{{"--keep-daily", "-1"}, "'-1'"},
                         {{"--keep-last", "abc"}, "'abc'"},
                         {{"--keep-weekly", "3x"}, "'3x'"},
                         {{"--keep-daily", "1", "--timezone", "Mars/Olympus"}, "'Mars/Olympus'"},
                         {{"--keep-within", "30x"}, "'30x'"},
                         {{"--keep-daily", "1", "--group-by", "paths"}, "'paths'"},
                         {{"--keep-tag", "novalue"}, "'novalue'"}}) {
    auto r = Forget(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << " " << r.err;
    EXPECT_NE(r.err.find(c.named), std::string::npos) << r.err;
  }
  auto r = Forget({"--keep-daily", "-1"});
  EXPECT_NE(r.err.find("whole number"), std::string::npos) << r.err;
  EXPECT_EQ(SnapshotIds(), before);
}

TEST_F(ForgetCli, ForgetByIdAndPrefixThenSnapshotsAndCheckAgree) {
  std::string a = BackupAt("2026-01-01 00:00:00");
  std::string b = BackupAt("2026-01-02 00:00:00");
  std::string c = BackupAt("2026-01-03 00:00:00");
  auto r = Forget({a, b.substr(0, 6), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  EXPECT_EQ(j["removed"].size(), 2u);
  EXPECT_EQ(SnapshotIds(), (std::set<std::string>{c}));
  EXPECT_FALSE(fs::exists(repo() + "/snapshots/" + a));
  auto check = RunMailvault({"check", "--repo", repo()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // A prefix that matches nothing: exit 1, naming it.
  r = Forget({"abcdef01"});
  if (c.compare(0, 8, "abcdef01") != 0) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("'abcdef01'"), std::string::npos) << r.err;
  }
  EXPECT_EQ(SnapshotIds(), (std::set<std::string>{c}));
}

TEST_F(ForgetCli, AnAmbiguousPrefixRemovesNothing) {
  std::string a = BackupAt("2026-01-01 00:00:00");
  std::string b = BackupAt("2026-01-02 00:00:00");
  BackupAt("2026-01-03 00:00:00");
  // A second manifest name sharing a's first 8 digits (a copy: listed as damaged, but its name
  // counts for prefixes, as Repository::ResolveSnapshot documents).
  std::string twin = a.substr(0, 8) + std::string(24, a[8] == '0' ? '1' : '0');
  fs::copy_file(repo() + "/snapshots/" + a, repo() + "/snapshots/" + twin);
  auto r = Forget({b, a.substr(0, 8)});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("'" + a.substr(0, 8) + "' is ambiguous"), std::string::npos) << r.err;
  // The matches are named, so the next try can pick one (issue #11).
  EXPECT_NE(r.err.find(a.substr(0, 12) + "  2026-01-01 00:00:00 UTC"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(twin.substr(0, 12)), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(repo() + "/snapshots/" + a));
  EXPECT_TRUE(fs::exists(repo() + "/snapshots/" + b));
}

TEST_F(ForgetCli, DryRunAndEmptyPolicyRemoveNothing) {
  BackupAt("2026-01-01 00:00:00");
  BackupAt("2026-01-02 00:00:00");
  BackupAt("2026-01-03 00:00:00");
  auto before = SnapshotIds();
  auto r = Forget({"--keep-last", "1", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("would remove 2 snapshot(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("last 1, newest"), std::string::npos) << r.out;
  r = Forget({"--keep-last", "1", "--dry-run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["would_remove"].size(), 2u);
  EXPECT_EQ(SnapshotIds(), before);
  r = Forget({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("policy is empty: nothing removed"), std::string::npos) << r.out;
  EXPECT_EQ(SnapshotIds(), before);
}

TEST_F(ForgetCli, RemovingEverySnapshotOfAGroupIsRefusedNamingIt) {
  std::string a = BackupAt("2026-01-01 00:00:00", {"--tag", "stack=mail", "--host", "mx1"});
  std::string b = BackupAt("2026-01-02 00:00:00", {"--tag", "stack=mail", "--host", "mx1"});
  std::string c = BackupAt("2026-01-03 00:00:00", {"--tag", "stack=web", "--host", "mx1"});
  auto r = Forget({a, b});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("'host=mx1 stack=mail'"), std::string::npos) << r.err;
  EXPECT_EQ(SnapshotIds(), (std::set<std::string>{a, b, c}));
}

TEST_F(ForgetCli, APolicyForgetsPerGroupAndCheckStaysClean) {
  std::vector<std::string> mail, web;
  for (int d = 1; d <= 4; d++) {
    std::string day = "2026-01-0" + std::to_string(d);
    mail.push_back(BackupAt(day + " 03:00:00", {"--tag", "stack=mail", "--host", "mx1"}));
    web.push_back(BackupAt(day + " 04:00:00", {"--tag", "stack=web", "--host", "mx1"}));
  }
  auto r = Forget({"--keep-daily", "2", "--stack", "mail"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("group host=mx1 stack=mail: keep 2, remove 2"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("stack=web"), std::string::npos) << "--stack selects: " << r.out;
  std::set<std::string> want(web.begin(), web.end());
  want.insert(mail[2]);
  want.insert(mail[3]);
  EXPECT_EQ(SnapshotIds(), want);
  auto check = RunMailvault({"check", "--repo", repo()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // The remaining snapshots still restore.
  auto restore = Restore(mail[2], out_ / "t");
  EXPECT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_EQ(ReadFile(out_ / "t/data/file"), "tiny\n");
}

TEST_F(ForgetCli, TheNewestVerifiedSnapshotSurvivesANightOfUnprovenOnes) {
  std::string a = BackupAt("2026-01-01 03:00:00");
  std::string b = BackupAt("2026-01-02 03:00:00");
  std::string c = BackupAt("2026-01-03 03:00:00");
  std::string d = BackupAt("2026-01-04 03:00:00");
  {  // what `verify` records (storage/verification.h): b restored fine, c did not
    auto opened = storage::Repository::Open(repo());
    ASSERT_TRUE(opened.ok());
    auto record = [&](const std::string& id, bool ok) {
      storage::Verification v;
      v.snapshot = id;
      v.time = 1;
      v.ok = ok;
      return storage::RecordVerification(**opened, v).ok();
    };
    ASSERT_TRUE(record(b, true));
    ASSERT_TRUE(record(c, false));
  }
  auto r = Forget({"--keep-last", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  std::map<std::string, std::string> proof;
  for (const auto& s : j["groups"][0]["snapshots"]) {
    proof[s["id"].get<std::string>()] = s["proof"].get<std::string>();
    if (s["id"] == b) {
      EXPECT_EQ(s["reasons"], nlohmann::json({"verified"}));
    }
  }
  EXPECT_EQ(proof[b], "verified");
  EXPECT_EQ(proof[c], "failed");
  EXPECT_EQ(proof[d], "unverified");
  EXPECT_EQ(SnapshotIds(), (std::set<std::string>{b, d}));
  auto opened = storage::Repository::Open(repo());
  ASSERT_TRUE(opened.ok());
  auto left = storage::LoadVerifications(**opened);
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->count(c), 0u) << "forget removes the records of what it removed";
  EXPECT_EQ(left->count(b), 1u);
  (void)a;
}

TEST_F(ForgetCli, HelpStatesTheSemanticsAndTheDivergenceFromRestic) {
  auto r = RunMailvault({"forget", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* s :
       {"restic 0.14", "ISO weeks", "newest COMPLETE", "--keep-within D", "Examples:", "refused"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

// forget --prune: the forget, then a prune with its defaults, in one command; the space of the
// removed snapshots' own data comes back and what is kept still restores and checks.
TEST(ForgetPrune, ForgetWithPruneGivesBackTheRemovedSnapshotsDataAndKeepsTheRest) {
  TempDir d("mvforgetprune");
  std::string repo = d / "repo", src = d / "src";
  ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
  std::vector<std::string> ids;
  for (int day = 1; day <= 3; day++) {
    // Each day's messages replace the previous day's: only the newest snapshot holds day 3's.
    fs::remove_all(src);
    for (int i = 0; i < 20; i++)
      WriteFile(src + "/alice@example.org/cur/" + std::to_string(day * 100 + i) + ".M1P1.x:2,S",
                MessageText(static_cast<uint32_t>(day * 1000 + i), 20000));
    RunResult b = RunMailvault({"backup", "--repo", repo, "--json", "--source", "mail=" + src,
                                "--time", "2026-11-0" + std::to_string(day) + " 03:00:00"});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    ids.push_back(Json(b)["snapshot"]);
  }
  RunResult f = RunMailvault({"forget", "--repo", repo, "--keep-last", "1", "--prune", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err << f.out;
  auto j = Json(f);
  EXPECT_EQ(j["removed"].size(), 2u);
  ASSERT_TRUE(j.contains("prune")) << j.dump();
  EXPECT_LT(j["prune"]["size_after"].get<uint64_t>(), j["prune"]["size_before"].get<uint64_t>());
  EXPECT_GT(j["prune"]["deleted"]["packs"].get<uint64_t>() +
                j["prune"]["repacked"]["packs"].get<uint64_t>(),
            0u);
  RunResult c = RunMailvault({"check", "--repo", repo, "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
  TempDir out("mvforgetprune-out");
  RunResult r =
      RunMailvault({"restore", "--repo", repo, "--snapshot", ids.back(), "--target", out.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(ListTree(src), ListTree(out / "mail")), "");
}

// The agent reads the same rules and refuses a bad one before doing anything.
TEST(ForgetPrune, AgentRejectsABadRetentionRuleNamingIt) {
  TempDir d("mvagentkeep");
  ASSERT_EQ(RunMailvault({"init", "--repo", d / "repo"}).exit_code, 0);
  RunResult r = RunMailvault({"agent", "--repo", d / "repo", "--once", "--keep-daily", "seven"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--keep-daily 'seven'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mv::testing
