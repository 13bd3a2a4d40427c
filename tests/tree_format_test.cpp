// Version-3 snapshots (docs/FORMAT.md §7.5): a snapshot's entries live in per-directory tree
// records shared with the snapshots before it. What an operator sees: a backup in which nothing
// changed adds a manifest and no pack; a day of mail adds the records of the folders it touched;
// a lost record costs the snapshots that use it, never the next backup.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "test_util.h"

namespace mv::testing {
namespace {

namespace fs = std::filesystem;

std::set<std::string> Packs(const std::string& repo) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(repo + "/packs"))
    if (e.is_regular_file()) out.insert(e.path());
  return out;
}

std::set<std::string> NewPacks(const std::set<std::string>& before,
                               const std::set<std::string>& after) {
  std::set<std::string> out;
  for (const auto& p : after)
    if (!before.count(p)) out.insert(p);
  return out;
}

// Blob names in a pack (an ordinary tar.zst, §5).
std::vector<std::string> PackEntries(const std::string& pack) {
  RunResult r = Shell("tar --zstd -tf '" + pack + "'");
  std::vector<std::string> out;
  size_t start = 0;
  while (start < r.out.size()) {
    size_t nl = r.out.find('\n', start);
    if (nl == std::string::npos) nl = r.out.size();
    if (nl > start) out.push_back(r.out.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

class TreeFormat : public RepoTest {
 protected:
  void SetUp() override {
    RepoTest::SetUp();
    users_ = MakeMailVolume(vol_.path(), {.users = 3, .messages_per_user = 60, .seed = 3});
  }
  std::string Mail() const { return "mail=" + vol_ / "mail"; }
  std::string NewMessage(const std::string& user, uint32_t n) {
    std::string p = vol_ / ("mail/" + user + "/new/" + MaildirName(n, 900, "", true));
    WriteFile(p, MessageText(n, 900), 0600);
    return p;
  }
  std::vector<std::string> users_;
};

TEST_F(TreeFormat, ManifestIsVersionThreeAndNamesItsRootTree) {
  auto b = Json(Backup(Mail()));
  std::string m = ReadFile(repo() + "/snapshots/" + b["snapshot"].get<std::string>());
  ASSERT_GE(m.size(), 8u);
  EXPECT_EQ(m.substr(0, 8), std::string("MVSNAPS\x03", 8));
  RunResult rs = Restore("latest", out_.path());
  ASSERT_EQ(rs.exit_code, 0) << rs.err;
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
}

TEST_F(TreeFormat, NoOpBackupAddsNoPackAndOnlyAManifest) {
  auto first = Json(Backup(Mail()));
  auto packs = Packs(repo());
  uint64_t before = DirBytes(repo());
  auto second = Json(Backup(Mail()));
  EXPECT_EQ(second["parent"], first["snapshot"]);
  EXPECT_EQ(second["files_read"], 0);
  EXPECT_EQ(NewPacks(packs, Packs(repo())).size(), 0u)
      << "every tree record of an unchanged tree is shared with the parent";
  uint64_t added = DirBytes(repo()) - before;
  uint64_t manifest = fs::file_size(repo() + "/snapshots/" + second["snapshot"].get<std::string>());
  // The manifest is its header (census of 12 folders, statistics) and one ID; a flat manifest of
  // these ~800 entries was ~45 KB.
  EXPECT_LT(manifest, 8u * 1024);
  EXPECT_LT(added, 8u * 1024) << "a no-op backup may add its manifest, nothing else";
}

TEST_F(TreeFormat, OneNewMessageAddsOneBlobAndTheFourRecordsOnItsPath) {
  ASSERT_EQ(Backup(Mail()).exit_code, 0);
  auto packs = Packs(repo());
  NewMessage(users_[1], 900001);
  auto b = Json(Backup(Mail()));
  EXPECT_EQ(b["files_read"], 1);
  size_t blobs = 0, trees = 0;
  for (const auto& p : NewPacks(packs, Packs(repo()))) {
    size_t n = PackEntries(p).size();
    (n == 1 ? blobs : trees) += n;
  }
  EXPECT_EQ(blobs, 1u) << "the new message";
  // new/ changed; so did the records that name it: the mailbox, the source, the root.
  EXPECT_EQ(trees, 4u);
}

TEST_F(TreeFormat, MessageMovedToAnotherMailboxIsReadAgainButStoresNothing) {
  ASSERT_EQ(Backup(Mail()).exit_code, 0);
  std::string from = vol_ / ("mail/" + users_[0] + "/cur");
  std::string to = vol_ / ("mail/" + users_[2] + "/cur");
  std::string name = fs::directory_iterator(from)->path().filename();
  fs::rename(from + "/" + name, to + "/" + name);
  auto b = Json(Backup(Mail()));
  // Rename detection looks within a mailbox (its folders), not across the store.
  EXPECT_EQ(b["files_read"], 1);
  EXPECT_EQ(b["blobs_new"], 0) << "its content is already in the repository";
}

TEST_F(TreeFormat, LostTreeRecordsCostTheirSnapshotNotTheNextBackup) {
  auto first = Json(Backup(Mail()));
  auto packs = Packs(repo());
  NewMessage(users_[0], 900002);
  auto second = Json(Backup(Mail()));
  std::string tree_pack;
  for (const auto& p : NewPacks(packs, Packs(repo())))
    if (PackEntries(p).size() > 1) tree_pack = p;
  ASSERT_FALSE(tree_pack.empty());
  fs::remove(tree_pack);  // the second snapshot's changed records are gone

  // The next backup is not stopped by the parent's damage: it reads the files again. Its own
  // records for the changed directories are the lost ones (same bytes, same IDs), which the
  // index still names: it says so, as a partial snapshot (exit 3), instead of trusting them.
  RunResult third = Backup(Mail());
  EXPECT_EQ(third.exit_code, 3) << third.err << third.out;
  auto j = Json(third);
  EXPECT_EQ(j["parent"], second["snapshot"]);
  EXPECT_NE(third.out.find("cannot be read"), std::string::npos)
      << "a note says the parent's record was unreadable: " << third.out;

  RunResult check = RunMailvault({"check", "--repo", repo(), "--json"});
  EXPECT_NE(check.exit_code, 0);
  EXPECT_NE(check.out.find(second["snapshot"].get<std::string>()), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("tree record"), std::string::npos) << check.out;
  // The first snapshot restores whole.
  RunResult rs = Restore(first["snapshot"].get<std::string>(), out_.path());
  EXPECT_EQ(rs.exit_code, 0) << rs.err;
}

}  // namespace
}  // namespace mv::testing
