// `mailvault check`: read-only, subsets that add up to the whole repository, orphans are warnings.
#include <set>

#include "storage/pack.h"
#include "verify_fixture.h"

namespace mv::testing {
namespace {

class Check : public VerifyFixture {};

// check writes nothing; verify writes only its verdict (docs/FORMAT.md §11), one new file under
// verifications/, and changes nothing else.
TEST_F(Check, WritesNothingToTheRepository) {
  auto before = ListTree(repo());
  RunResult c = VerifyFixture::Check({"--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_EQ(DiffTrees(before, ListTree(repo())), "");
  RunResult v = VerifyFixture::Verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  auto after = ListTree(repo());
  size_t records = 0;
  for (auto it = after.begin(); it != after.end();)
    if (it->first.rfind("verifications", 0) == 0) {
      records += it->first.size() > std::string("verifications").size();
      it = after.erase(it);
    } else {
      ++it;
    }
  EXPECT_EQ(records, 1u) << "one verification record";
  EXPECT_EQ(DiffTrees(before, after), "");
}

TEST_F(Check, SubsetsKOfNTogetherReadEveryPackOnce) {
  // More packs: a few more backups with new mail.
  for (int i = 0; i < 3; i++) {
    WriteFile(vol_ / ("mail/" + users_[0] + "/new/18000000" + std::to_string(i) + ".M1P1.x"),
              "mail " + std::to_string(i), 0600);
    Backup();
  }
  auto all = ParseJson(VerifyFixture::Check({"--read-data"}));
  uint64_t packs = all["packs"], blobs = all["blobs_hashed"], read = 0, hashed = 0;
  ASSERT_GE(packs, 4u);
  for (int k = 1; k <= 3; k++) {
    auto j = ParseJson(VerifyFixture::Check({"--read-data-subset", std::to_string(k) + "/3"}));
    EXPECT_EQ(j["ok"], true);
    read += j["packs_read"].get<uint64_t>();
    hashed += j["blobs_hashed"].get<uint64_t>();
  }
  EXPECT_EQ(read, packs);
  EXPECT_EQ(hashed, blobs);
  auto pct = ParseJson(VerifyFixture::Check({"--read-data-subset", "100%"}));
  EXPECT_EQ(pct["packs_read"], packs);
}

TEST_F(Check, BadSubsetIsAUsageError) {
  for (const char* bad : {"0/3", "4/3", "x", "0%", "150%"}) {
    RunResult c = RunMailvault({"check", "--repo", repo(), "--read-data-subset", bad});
    EXPECT_EQ(c.exit_code, 2) << bad;
    EXPECT_NE(c.err.find("K/N"), std::string::npos) << c.err;
  }
}

TEST_F(Check, OrphanPackIsAWarningNotDamage) {
  auto r = OpenRepo();
  auto w = storage::PackWriter::Create(r->TmpDir(), 3);
  ASSERT_TRUE(w.ok());
  std::string data = "orphan";
  ASSERT_TRUE((*w)->Add(r->hasher().Hash(data.data(), data.size()), data.data(), data.size()).ok());
  ASSERT_TRUE((*w)->Finish(r->backend()).ok());  // never indexed, as after a crash
  RunResult c = VerifyFixture::Check();
  EXPECT_EQ(c.exit_code, 0) << c.out;
  auto j = ParseJson(c);
  ASSERT_EQ(j["problems"].size(), 1u);
  EXPECT_EQ(j["problems"][0]["kind"], "pack-not-indexed");
  EXPECT_TRUE(j["problems"][0]["warning"].get<bool>());
}

// Files that are not part of the format (a stray file, something under packs/ that is not named
// as a pack) are named as warnings, not damage; reports/, which the sidecar writes, is not.
TEST_F(Check, FilesThatAreNotPartOfTheFormatAreNamedAsWarnings) {
  WriteFile(repo() + "/notes.txt", "an operator's note\n");
  WriteFile(repo() + "/packs/zz/notapack", "junk\n");
  WriteFile(repo() + "/reports/run-1.json", "{}\n");
  RunResult c = VerifyFixture::Check();
  EXPECT_EQ(c.exit_code, 0) << c.out;
  auto j = ParseJson(c);
  std::set<std::string> named;
  for (const auto& p : j["problems"]) {
    EXPECT_EQ(p["kind"], "foreign-object") << p.dump();
    EXPECT_TRUE(p["warning"].get<bool>());
    named.insert(p["where"].get<std::string>());
  }
  EXPECT_EQ(named, (std::set<std::string>{repo() + "/notes.txt", repo() + "/packs/zz/notapack"}));
}

TEST_F(Check, HumanOutputNamesTheDamageAndWhatItAffects) {
  auto r = OpenRepo();
  auto msg = FirstMessage(Latest(*r));
  std::string pack = PackOf(*r, msg.blobs[0]);
  std::filesystem::remove(pack);
  RunResult c = RunMailvault({"check", "--repo", repo()});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(c.out.rfind("check: DAMAGE FOUND", 0), 0u) << c.out;
  EXPECT_NE(c.out.find("[pack-missing]"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find(pack), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("messages per mailbox: " + users_[0] + " ("), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("(mailbox " + users_[0] + ")"), std::string::npos) << c.out;
  auto j = ParseJson(VerifyFixture::Check());
  std::set<std::string> paths;
  for (const auto& a : j["problems"][0]["affected"]) paths.insert(a["path"].get<std::string>());
  EXPECT_TRUE(paths.count(msg.path)) << "JSON lists every affected file (up to 100)";
}

}  // namespace
}  // namespace mv::testing
