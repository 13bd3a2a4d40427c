// `latest` in a repository shared by stacks and hosts, through the real binary (issue #11): ls,
// restore, diff and verify take --stack, --host and --tag; `latest` is the newest snapshot of the
// one group they select, and without a filter it is an error listing the groups (exit 2) instead
// of silently another stack's snapshot. restore defaults to `latest`; an ID is used as given.
#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace mv::testing {
namespace {

class LatestSelect : public RepoTest {
 protected:
  // A backup of data/ holding only `file`, tagged and hosted as given; returns the snapshot ID.
  std::string BackupOf(const std::string& file, const std::vector<std::string>& extra,
                       const std::string& time) {
    EXPECT_EQ(Shell("rm -rf '" + vol_ / "data" + "'").exit_code, 0);
    WriteFile(vol_ / ("data/" + file), file + "\n");
    std::vector<std::string> args = {
        "backup", "--repo", repo(), "--json", "--source", "data=" + vol_ / "data", "--time", time};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? Json(r)["snapshot"].get<std::string>() : "";
  }
  // Three groups: mail on mx1 (two snapshots), web on mx1, mail on mx2 (the newest of all).
  void SetUp() override {
    RepoTest::SetUp();
    mail1_old_ =
        BackupOf("mail1-old", {"--tag", "stack=mail", "--host", "mx1"}, "2026-11-01 00:00:00");
    mail1_ = BackupOf("mail1", {"--tag", "stack=mail", "--host", "mx1", "--tag", "env=prod"},
                      "2026-11-02 00:00:00");
    web1_ = BackupOf("web1", {"--tag", "stack=web", "--host", "mx1"}, "2026-11-03 00:00:00");
    mail2_ = BackupOf("mail2", {"--tag", "stack=mail", "--host", "mx2"}, "2026-11-04 00:00:00");
  }
  // `ls` of the repository with `args`.
  RunResult Ls(std::vector<std::string> args) {
    args.insert(args.begin(), {"ls", "--repo", repo()});
    return RunMailvault(args);
  }
  std::string mail1_old_, mail1_, web1_, mail2_;
};

TEST_F(LatestSelect, WithoutAFilterLatestIsAnErrorListingEveryGroupAndHowToPickIt) {
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"ls", "--repo", repo()},
           {"restore", "--repo", repo(), "--target", out_ / "r"},
           {"diff", "--repo", repo(), mail1_old_.substr(0, 8), "latest"},
           {"verify", "--repo", repo(), "--scratch", out_ / "s"}}) {
    auto r = RunMailvault(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd[0] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("'latest' is ambiguous"), std::string::npos) << cmd[0] << ": " << r.err;
    EXPECT_NE(r.err.find("host=mx1 stack=mail  newest " + mail1_.substr(0, 8)), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("host=mx1 stack=web  newest " + web1_.substr(0, 8)), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("host=mx2 stack=mail  newest " + mail2_.substr(0, 8)), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("(--stack mail --host mx2)"), std::string::npos)
        << "says which flags pick a group: " << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(out_ / "r")) << "nothing restored";
}

TEST_F(LatestSelect, AFilterPicksTheNewestSnapshotOfItsGroup) {
  auto web = Ls({"--stack", "web"});
  ASSERT_EQ(web.exit_code, 0) << web.err;
  EXPECT_NE(web.out.find("data/web1"), std::string::npos) << web.out;

  auto mail1 = Ls({"--stack", "mail", "--host", "mx1"});
  ASSERT_EQ(mail1.exit_code, 0) << mail1.err;
  EXPECT_NE(mail1.out.find("data/mail1"), std::string::npos) << mail1.out;
  EXPECT_EQ(mail1.out.find("data/mail1-old"), std::string::npos) << "the newest of the group";

  auto prod = Ls({"--tag", "env=prod"});
  ASSERT_EQ(prod.exit_code, 0) << prod.err;
  EXPECT_NE(prod.out.find("data/mail1"), std::string::npos) << prod.out;

  // --stack alone still spans two hosts.
  auto both = Ls({"--stack", "mail"});
  EXPECT_EQ(both.exit_code, 2) << both.out;
  EXPECT_NE(both.err.find("the snapshots of --stack mail hold 2 groups"), std::string::npos)
      << both.err;

  // restore (no --snapshot: latest) of mail on mx2 brings back that host's file only.
  auto r = RunMailvault({"restore", "--repo", repo(), "--stack", "mail", "--host", "mx2",
                         "--target", out_ / "r", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["snapshot"], mail2_);
  EXPECT_EQ(ReadFile(out_ / "r/data/mail2"), "mail2\n");
  EXPECT_FALSE(std::filesystem::exists(out_ / "r/data/web1"));

  auto v = RunMailvault({"verify", "--repo", repo(), "--stack", "web", "--scratch", out_ / "s",
                         "--against", "snapshot", "--json"});
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(Json(v)["snapshot"], web1_);

  auto d = RunMailvault({"diff", "--repo", repo(), "--host", "mx1", "--stack", "mail",
                         mail1_old_.substr(0, 8), "latest"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_NE(d.out.find("+ data/mail1"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("- data/mail1-old"), std::string::npos) << d.out;
}

TEST_F(LatestSelect, AnIdIsUsedAsGivenAndBadFiltersNameTheValue) {
  auto id = Ls({"--snapshot", web1_.substr(0, 8), "--stack", "mail"});
  ASSERT_EQ(id.exit_code, 0) << id.err;
  EXPECT_NE(id.out.find("data/web1"), std::string::npos) << id.out;

  auto none = Ls({"--stack", "nope"});
  EXPECT_EQ(none.exit_code, 1) << none.out;
  EXPECT_NE(none.err.find("no snapshot matches --stack nope"), std::string::npos) << none.err;

  auto bad = Ls({"--tag", "envprod"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.err.find("'envprod' is not KEY=VALUE"), std::string::npos) << bad.err;
}

TEST(LatestSelectOneGroup, RestoreDefaultsToLatestWhenTheRepositoryHoldsOneGroup) {
  TempDir vol("mvvol"), repo("mvrepo"), out("mvout");
  WriteFile(vol / "data/a", "one\n");
  ASSERT_EQ(RunMailvault({"init", "--repo", repo / "r"}).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"backup", "--repo", repo / "r", "--source", "data=" + vol / "data"}).exit_code,
      0);
  WriteFile(vol / "data/a", "two\n");
  ASSERT_EQ(
      RunMailvault({"backup", "--repo", repo / "r", "--source", "data=" + vol / "data"}).exit_code,
      0);
  auto r = RunMailvault({"restore", "--repo", repo / "r", "--target", out / "r"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(out / "r/data/a"), "two\n");
}

}  // namespace
}  // namespace mv::testing
