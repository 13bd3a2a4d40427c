// The core promises (README "What it does"), checked through the real binary on a generated mail
// volume.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mv::testing {
namespace {

std::vector<std::string> Sources(const TempDir& vol) {
  return {"--source", "mail=" + vol / "mail", "--source", "data=" + vol / "data",
          "--source", "dkim=" + vol / "dkim"};
}

RunResult Backup(const std::string& repo, const TempDir& vol, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"backup", "--repo", repo, "--json"};
  for (auto& s : Sources(vol)) args.push_back(s);
  for (auto& e : extra) args.push_back(e);
  return RunMailvault(args);
}

class BackupRestore : public ::testing::Test {
 protected:
  void SetUp() override {
    users_ = MakeMailVolume(
        vol_.path(), {.users = 3, .messages_per_user = 60, .seed = 1, .big_attachment = true});
    ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0);
  }
  std::string repo() const { return repo_ / "r"; }
  TempDir vol_{"mvvol"}, repo_{"mvrepo"}, out_{"mvout"};
  std::vector<std::string> users_;
};

TEST_F(BackupRestore, RestoredMailVolumeIsIdenticalInContentAndStat) {
  RunResult b = Backup(repo(), vol_);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult r =
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto want = ListTree(vol_.path() + "/mail");
  // tmp/ contents are half-delivered mail and are not backed up.
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "dkim"), ListTree(out_ / "dkim")), "");
  EXPECT_EQ(ReadFile(out_ / "dkim/example.org.dkim.key"),
            ReadFile(vol_ / "dkim/example.org.dkim.key"));
}

TEST_F(BackupRestore, SnapshotRecordsMaildirCensusPerMailboxAndFolder) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  ASSERT_EQ(snaps.size(), 1u);
  uint64_t total = 0;
  std::set<std::string> folders;
  for (const auto& c : snaps[0]["census"]) {
    total += c["messages"].get<uint64_t>();
    folders.insert(c["mailbox"].get<std::string>() + "/" + c["folder"].get<std::string>());
  }
  EXPECT_EQ(total, 3u * 60 + 1);  // + the big attachment message
  EXPECT_TRUE(folders.count("user0@example.org/INBOX"));
  EXPECT_TRUE(folders.count("user2@example.org/.Archive.2024"));
  EXPECT_EQ(folders.size(), 12u);
}

TEST_F(BackupRestore, SecondBackupOfUnchangedDataAddsUnderOnePercentAndReadsOnlyTheDatabase) {
  auto first = Json(Backup(repo(), vol_));
  uint64_t before = DirBytes(repo());
  auto second = Json(Backup(repo(), vol_));
  uint64_t added = DirBytes(repo()) - before;
  EXPECT_LT(added, before / 100) << "repository grew by " << added << " of " << before;
  EXPECT_EQ(second["blobs_new"], 0);
  // Only SQLite databases are always re-copied (WAL commits do not touch the main file's mtime).
  EXPECT_EQ(second["files_read"], 1);
  EXPECT_EQ(second["parent"], first["snapshot"]);
}

TEST_F(BackupRestore, FlagRenamesAndFolderMovesReadNoContentAndStoreNothing) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  namespace fs = std::filesystem;
  int renamed = 0;
  std::string inbox = vol_ / ("mail/" + users_[1]);
  for (const auto& e : fs::directory_iterator(inbox + "/cur")) {
    std::string n = e.path().filename();
    if (renamed < 5)
      fs::rename(e.path(), inbox + "/cur/" + n.substr(0, n.find(":2,")) + ":2,FRS");
    else if (renamed < 8)
      fs::rename(e.path(), inbox + "/.Trash/cur/" + n);
    else
      break;
    renamed++;
  }
  for (const auto& e :
       fs::directory_iterator(inbox + "/new")) {  // new/ -> cur/ as a client reads it
    std::string n = e.path().filename();
    fs::rename(e.path(), inbox + "/cur/" + n + ":2,S");
    renamed++;
  }
  ASSERT_GT(renamed, 8);
  uint64_t before = DirBytes(repo());
  auto r = Json(Backup(repo(), vol_));
  EXPECT_EQ(r["files_read"], 1) << "only the SQLite database may be read";
  EXPECT_EQ(r["blobs_new"], 0);
  EXPECT_LT(DirBytes(repo()) - before, 64u * 1024) << "only a manifest and an index may be added";
  RunResult rs =
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()});
  ASSERT_EQ(rs.exit_code, 0) << rs.err;
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
}

TEST_F(BackupRestore, PackIsAnOrdinaryZstdTarArchiveNamingBlobs) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  // The largest pack holds content; tree records (docs/FORMAT.md §7.5) have small packs of their
  // own, which are ordinary archives of blobs all the same.
  std::string pack;
  uintmax_t largest = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(repo() + "/packs"))
    if (e.path().string().ends_with(".tar.zst") && e.file_size() > largest) {
      pack = e.path();
      largest = e.file_size();
    }
  ASSERT_FALSE(pack.empty());
  RunResult list = Shell("tar --zstd -tf '" + pack + "'");
  ASSERT_EQ(list.exit_code, 0);
  std::istringstream names(list.out);
  std::string name;
  int n = 0;
  while (std::getline(names, name)) {
    EXPECT_EQ(name.size(), 32u) << name;
    EXPECT_EQ(name.find_first_not_of("0123456789abcdef"), std::string::npos) << name;
    n++;
  }
  EXPECT_GT(n, 0);
  // Extracting an entry gives a message's bytes: one of them is in the source tree.
  TempDir x("mvx");
  ASSERT_EQ(Shell("cd '" + x.path() + "' && tar --zstd -xf '" + pack + "'").exit_code, 0);
  std::set<std::string> extracted;
  for (const auto& e : std::filesystem::directory_iterator(x.path()))
    extracted.insert(ReadFile(e.path()));
  int found = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(vol_ / "mail"))
    if (e.is_regular_file() && extracted.count(ReadFile(e.path()))) found++;
  EXPECT_GT(found, 0);
}

TEST_F(BackupRestore, RestoreOfOneMailboxWritesOnlyThatMailbox) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target",
                              out_.path(), "--include", "mail/" + users_[2]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(out_ / ("mail/" + users_[2] + "/.Sent/cur")));
  EXPECT_FALSE(std::filesystem::exists(out_ / ("mail/" + users_[0])));
  EXPECT_FALSE(std::filesystem::exists(out_ / "data"));
  RunResult bad = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target",
                                out_.path(), "--include", "mail/nobody@example.org"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("matches nothing"), std::string::npos) << bad.err;
}

TEST_F(BackupRestore, RestoreOntoNonEmptyTargetNeverDeletesNorOverwritesWithoutAsking) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()})
          .exit_code,
      0);
  std::string key = out_ / "dkim/example.org.dkim.key";
  std::string extra = out_ / ("mail/" + users_[0] + "/cur/arrived-later:2,S");
  WriteFile(key, "changed by the operator\n");
  WriteFile(extra, "new mail\n");
  RunResult r = RunMailvault(
      {"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << "a kept, differing file is reported, not a failure";
  EXPECT_EQ(ReadFile(key), "changed by the operator\n");
  EXPECT_EQ(ReadFile(extra), "new mail\n");
  auto j = Json(r);
  EXPECT_EQ(j["files_conflict"], 1);
  ASSERT_EQ(j["kept"].size(), 1u);
  EXPECT_EQ(j["kept"][0]["path"], "dkim/example.org.dkim.key");
  EXPECT_EQ(j["files_written"], 0);
  r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path(),
                    "--overwrite"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(key), ReadFile(vol_ / "dkim/example.org.dkim.key"));
  EXPECT_EQ(ReadFile(extra), "new mail\n");
}

TEST_F(BackupRestore, ExactRestoreRemovesWhatTheSnapshotDoesNotHoldAndListsIt) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()})
          .exit_code,
      0);
  std::string extra = out_ / ("mail/" + users_[0] + "/cur/1800000000.M1P1.host:2,S");
  WriteFile(extra, "arrived later\n");
  WriteFile(out_ / "dkim/example.org.dkim.key", "changed\n");
  std::filesystem::create_directories(out_ / "mail/stray@example.org/cur");
  auto dry = Json(RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target",
                                out_.path(), "--exact", "--dry-run", "--json"}));
  EXPECT_EQ(dry["would_remove"].size(), 2u);
  EXPECT_TRUE(std::filesystem::exists(extra)) << "a dry run changes nothing";
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target",
                              out_.path(), "--exact", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["removed"].size(), 2u);
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  auto got = ListTree(out_ / "mail");
  for (auto it = got.begin(); it != got.end();)  // directory mtimes move as entries are removed
    it = it->second[0] == 'd' ? got.erase(it) : std::next(it);
  for (auto it = want.begin(); it != want.end();)
    it = it->second[0] == 'd' ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, got), "");
  EXPECT_EQ(ReadFile(out_ / "dkim/example.org.dkim.key"),
            ReadFile(vol_ / "dkim/example.org.dkim.key"));
}

TEST_F(BackupRestore, RestoreDoesNotDuplicateAMessageWhoseFlagsChangedSince) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()})
          .exit_code,
      0);
  std::string cur = out_ / ("mail/" + users_[0] + "/cur");
  auto first = *std::filesystem::directory_iterator(cur);
  std::string n = first.path().filename();
  std::filesystem::rename(first.path(), cur + "/" + n.substr(0, n.find(":2,")) + ":2,T");
  size_t count = std::distance(std::filesystem::directory_iterator(cur), {});
  RunResult r =
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", out_.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(static_cast<size_t>(std::distance(std::filesystem::directory_iterator(cur), {})),
            count);
}

TEST_F(BackupRestore, DiffShowsFlagChangesAsRenamesAndNewMailAsAdded) {
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  std::string cur = vol_ / ("mail/" + users_[0] + "/cur");
  auto first = *std::filesystem::directory_iterator(cur);
  std::string n = first.path().filename();
  std::filesystem::rename(first.path(), cur + "/" + n.substr(0, n.find(":2,")) + ":2,FS");
  WriteFile(cur + "/1800000000.M1P1.mailu-imap,S=9:2,", "new mail\n");
  ASSERT_EQ(Backup(repo(), vol_).exit_code, 0);
  auto snaps = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  auto d = Json(RunMailvault({"diff", "--repo", repo(), snaps[0]["id"], snaps[1]["id"], "--json"}));
  EXPECT_EQ(d["renamed"].size(), 1u);
  EXPECT_EQ(d["added"].size(), 1u);
  EXPECT_EQ(d["removed"].size(), 0u);
  EXPECT_EQ(d["folders"].size(), 1u);
}

}  // namespace
}  // namespace mv::testing
