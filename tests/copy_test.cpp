// `mailvault copy` between two local repositories through the real binary (transfer/copy.h):
// what an operator checks after setting up a second copy. The copy restores bit-exact and
// passes check --read-data; a second copy sends nothing; a day of new mail sends only its
// packs; --snapshot and --stack select; a destination with its own key is refused, changing
// nothing; a copy cut off after its packs (as a SIGKILL leaves it) is resumed without sending
// them again; a damaged pack in the source stops the copy before that snapshot is written.
// The same against a real S3 engine: tests/s3_repo_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "tests/test_util.h"

namespace mv::testing {
namespace {

namespace fs = std::filesystem;

class CopyCli : public RepoTest {
 protected:
  std::string dest() const { return dest_ / "d"; }
  RunResult Copy(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"copy", "--from", repo(), "--to", dest(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunMailvault(args);
  }
  std::set<std::string> Ids(const std::string& r) {
    auto s = RunMailvault({"snapshots", "--repo", r, "--json"});
    EXPECT_EQ(s.exit_code, 0) << s.err;
    std::set<std::string> ids;
    for (const auto& j : Json(s)) ids.insert(j["id"].get<std::string>());
    return ids;
  }
  RunResult BackupMail(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"backup",   "--repo",
                                     repo(),     "--json",
                                     "--source", "mail=" + vol_ / "mail",
                                     "--source", "data=" + vol_ / "data"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunMailvault(args);
  }
  // The copy's latest snapshot restores exactly as the source's does, and its mail is the
  // live mail (tmp/, half-delivered mail, is not backed up).
  void ExpectSameRestore() {
    TempDir a("mvsrc"), b("mvdst");
    auto ra =
        RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", a.path()});
    ASSERT_EQ(ra.exit_code, 0) << ra.err;
    auto rb =
        RunMailvault({"restore", "--repo", dest(), "--snapshot", "latest", "--target", b.path()});
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    EXPECT_EQ(DiffTrees(ListTree(a.path()), ListTree(b.path())), "");
    auto want = ListTree(vol_ / "mail");
    for (auto it = want.begin(); it != want.end();)
      it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
    EXPECT_EQ(DiffTrees(want, ListTree(b / "mail")), "");
  }
  TempDir dest_{"mvdest"};
};

TEST_F(CopyCli, CopiesOnlyWhatTheDestinationLacksAndTheCopyRestoresAndChecks) {
  MakeMailVolume(vol_.path(),
                 {.users = 3, .messages_per_user = 30, .seed = 4, .big_attachment = true});
  ASSERT_EQ(BackupMail({"--tag", "stack=mailu"}).exit_code, 0);
  auto init = RunMailvault({"init", "--repo", dest(), "--copy-key-from", repo()});
  ASSERT_EQ(init.exit_code, 0) << init.err;

  auto c1 = Copy();
  ASSERT_EQ(c1.exit_code, 0) << c1.out << c1.err;
  auto j1 = Json(c1);
  EXPECT_EQ(j1["copied"].size(), 1u);
  EXPECT_GT(j1["packs_sent"].get<int64_t>(), 0);
  EXPECT_EQ(Ids(dest()), Ids(repo()));

  // A second copy finds everything there and sends nothing.
  auto c2 = Copy();
  ASSERT_EQ(c2.exit_code, 0) << c2.err;
  EXPECT_EQ(Json(c2)["copied"].size(), 0u);
  EXPECT_EQ(Json(c2)["present"].size(), 1u);
  EXPECT_EQ(Json(c2)["packs_sent"].get<int64_t>(), 0);

  // A day of mail: a new message in each of two mailboxes, one deleted. Only the new backup's
  // packs go over, far less than the first copy.
  auto users = fs::directory_iterator(vol_ / "mail");
  int n = 0;
  for (const auto& u : users) {
    if (n++ == 2) break;
    WriteFile(u.path().string() + "/new/1700000000.M1P1.host,S=900", MessageText(900 + n, 900));
  }
  ASSERT_EQ(BackupMail({"--tag", "stack=mailu"}).exit_code, 0);
  auto c3 = Copy();
  ASSERT_EQ(c3.exit_code, 0) << c3.err;
  auto j3 = Json(c3);
  EXPECT_EQ(j3["copied"].size(), 1u);
  EXPECT_GT(j3["blobs_present"].get<int64_t>(), 0);
  EXPECT_LT(j3["bytes_sent"].get<int64_t>() * 4, j1["bytes_sent"].get<int64_t>()) << c3.out;
  EXPECT_EQ(Ids(dest()), Ids(repo()));

  // What an operator checks: the copy is whole, and restores the live tree.
  auto check = RunMailvault({"check", "--repo", dest(), "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  ExpectSameRestore();
  // The source's own backups still dedup against it: nothing changed, nothing new.
  auto again = BackupMail();
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(Json(again)["blobs_new"].get<int64_t>(), 0);
}

TEST_F(CopyCli, SnapshotAndStackSelectWhatIsCopied) {
  MakeMailVolume(vol_.path(), {.users = 2, .messages_per_user = 10, .seed = 5});
  auto a = BackupMail({"--tag", "stack=mailu"});
  ASSERT_EQ(a.exit_code, 0);
  WriteFile(vol_ / "data/other.txt", "another stack's data\n");
  auto b = RunMailvault({"backup", "--repo", repo(), "--json", "--source", "data=" + vol_ / "data",
                         "--tag", "stack=other"});
  ASSERT_EQ(b.exit_code, 0);
  std::string ida = Json(a)["snapshot"], idb = Json(b)["snapshot"];
  ASSERT_EQ(RunMailvault({"init", "--repo", dest(), "--copy-key-from", repo()}).exit_code, 0);

  auto dry = Copy({"--stack", "other", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(Json(dry)["copied"], nlohmann::json::array({idb}));
  EXPECT_TRUE(Ids(dest()).empty()) << "a dry run wrote a snapshot";

  auto s = Copy({"--stack", "other"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(Ids(dest()), std::set<std::string>{idb});
  auto p = Copy({"--snapshot", ida.substr(0, 8)});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(Ids(dest()), (std::set<std::string>{ida, idb}));

  auto none = Copy({"--stack", "nosuch"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.out.find("nosuch"), std::string::npos) << none.out;
}

TEST_F(CopyCli, ADestinationWithItsOwnKeyIsRefusedNamingTheFix) {
  MakeMailVolume(vol_.path(), {.users = 1, .messages_per_user = 5, .seed = 6});
  ASSERT_EQ(BackupMail().exit_code, 0);
  ASSERT_EQ(RunMailvault({"init", "--repo", dest()}).exit_code, 0);
  auto c = RunMailvault({"copy", "--from", repo(), "--to", dest()});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find("another content key"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("--copy-key-from " + repo()), std::string::npos) << c.err;
  EXPECT_TRUE(Ids(dest()).empty());
  EXPECT_EQ(DirBytes(dest() + "/packs"), 0u);
  // Usage: no destination.
  auto u = RunMailvault({"copy", "--from", repo()});
  EXPECT_EQ(u.exit_code, 2);
}

TEST_F(CopyCli, ACopyCutOffAfterItsPacksIsResumedWithoutSendingThemAgain) {
  MakeMailVolume(vol_.path(),
                 {.users = 3, .messages_per_user = 20, .seed = 8, .big_attachment = true});
  ASSERT_EQ(BackupMail().exit_code, 0);
  ASSERT_EQ(RunMailvault({"init", "--repo", dest(), "--copy-key-from", repo()}).exit_code, 0);
  auto c1 = Copy();
  ASSERT_EQ(c1.exit_code, 0) << c1.err;
  int64_t packs = Json(c1)["packs_sent"];
  ASSERT_GT(packs, 0);
  // What a SIGKILL after the packs and before the index and manifest leaves (§8): packs no
  // index file names, and no snapshot. (The SIGKILL itself: RgwRepoTest, against S3.)
  fs::remove_all(dest() + "/index");
  fs::create_directory(dest() + "/index");
  fs::remove_all(dest() + "/snapshots");
  fs::create_directory(dest() + "/snapshots");
  auto c2 = Copy();
  ASSERT_EQ(c2.exit_code, 0) << c2.err;
  auto j2 = Json(c2);
  EXPECT_EQ(j2["copied"].size(), 1u);
  EXPECT_EQ(j2["packs_sent"].get<int64_t>(), 0) << c2.out;
  EXPECT_EQ(j2["packs_resumed"].get<int64_t>(), packs) << c2.out;
  auto check = RunMailvault({"check", "--repo", dest(), "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  ExpectSameRestore();
}

TEST_F(CopyCli, ADamagedPackInTheSourceStopsTheCopyBeforeTheSnapshotIsWritten) {
  MakeMailVolume(vol_.path(), {.users = 2, .messages_per_user = 10, .seed = 9});
  ASSERT_EQ(BackupMail().exit_code, 0);
  ASSERT_EQ(RunMailvault({"init", "--repo", dest(), "--copy-key-from", repo()}).exit_code, 0);
  std::string biggest;
  uintmax_t size = 0;
  for (const auto& f : fs::recursive_directory_iterator(repo() + "/packs"))
    if (f.is_regular_file() && f.file_size() > size) size = f.file_size(), biggest = f.path();
  ASSERT_FALSE(biggest.empty());
  std::string data = ReadFile(biggest);
  data[data.size() / 2] ^= 0x01;
  WriteFile(biggest, data, 0600);
  auto c = RunMailvault({"copy", "--from", repo(), "--to", dest()});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find(fs::path(biggest).filename().string()), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("mailvault check"), std::string::npos) << c.err;
  EXPECT_TRUE(Ids(dest()).empty());
}

}  // namespace
}  // namespace mv::testing
