// restore --into-folder (issue "incident restore"): a deleted folder comes back as a NEW folder of
// the live mailbox, and real Dovecot (doveadm, as the mail user, its index and control files kept
// between calls as a live server keeps them) sees exactly that: the new folder with the
// snapshot's messages, every other folder as it was, mail delivered since still there, nothing
// logged about duplicates or reappearing messages. Bad folder names and selections are refused
// before anything is written.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class IntoFolder : public RepoTest {
 protected:
  void SetUp() override {
    RepoTest::SetUp();
    VolumeSpec spec;
    spec.users = 2;
    spec.messages_per_user = 48;
    users_ = MakeMailVolume(vol_.path(), spec);
    // As in a Mailu volume: the mail belongs to the mail user (uid 8), who can read it all.
    ASSERT_EQ(Shell("chown -R 8:8 '" + vol_.path() + "/mail' && chmod 755 '" + vol_.path() +
                    "' && chmod -R a+rX '" + vol_.path() + "/mail'")
                  .exit_code,
              0);
    auto b = Backup("mail=" + vol_.path() + "/mail");
    ASSERT_EQ(b.exit_code, 0) << b.err;
    snap_ = Json(b)["snapshot"];
  }
  std::string Mailbox(int u = 0) const { return vol_.path() + "/mail/" + users_[u]; }
  RunResult IntoFolderRestore(std::vector<std::string> extra) {
    std::vector<std::string> args = {"restore",   "--repo",  repo(),     "--snapshot", snap_,
                                     "--mailbox", users_[0], "--target", vol_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunMailvault(args);
  }
  uint64_t FilesIn(const std::string& dir) {
    uint64_t n = 0;
    for (const char* sub : {"/cur", "/new"})
      if (stdfs::exists(dir + sub))
        for (const auto& e : stdfs::directory_iterator(dir + sub)) n += e.is_regular_file();
    return n;
  }
  std::vector<std::string> users_;
  std::string snap_;
};

TEST_F(IntoFolder, ADeletedSentFolderComesBackAsANewFolderThatDovecotListsAndNothingElseChanges) {
  ASSERT_EQ(Shell("command -v doveadm").exit_code, 0) << "doveadm missing: install dovecot-core";
  TempDir state("mvdovestate");
  std::string err;
  // The server has seen the mailbox as it was (its uidlist and indexes are in `state`).
  auto before = DoveadmCountsKeepingState(Mailbox(), state.path(), &err, nullptr);
  ASSERT_EQ(err, "");
  ASSERT_GT(before["Sent"], 0u);
  const uint64_t sent = before["Sent"];
  const auto live_before = ListTree(Mailbox());

  // Alice deletes her Sent folder; a new message is delivered to her INBOX.
  stdfs::remove_all(Mailbox() + "/.Sent");
  WriteFile(Mailbox() + "/new/" + MaildirName(900001, 300, "", true), MessageText(900001, 300));
  auto after_delete = DoveadmCountsKeepingState(Mailbox(), state.path(), &err, nullptr);
  ASSERT_EQ(err, "");
  ASSERT_EQ(after_delete.count("Sent"), 0u);

  auto r = IntoFolderRestore({"--folder", ".Sent", "--into-folder", "Restored", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto j = Json(r);
  EXPECT_EQ(j["files_written"], sent);
  ASSERT_EQ(j["folders"].size(), 1u);
  EXPECT_EQ(j["folders"][0]["name"], "Restored");
  EXPECT_EQ(j["subscribed"], true);

  std::vector<std::string> subscribed;
  auto seen = DoveadmCountsKeepingState(Mailbox(), state.path(), &err, &subscribed);
  EXPECT_EQ(err, "") << "Dovecot logged something about the restored messages";
  EXPECT_EQ(err.find("uplicate"), std::string::npos);
  EXPECT_EQ(err.find("reappeared"), std::string::npos);
  auto expected = before;
  expected.erase("Sent");
  expected["Restored"] = sent;
  expected["INBOX"] += 1;  // the message delivered after the snapshot is still there
  EXPECT_EQ(seen, expected);
  EXPECT_NE(std::find(subscribed.begin(), subscribed.end(), "Restored"), subscribed.end())
      << "the new folder is not subscribed";

  // The restored messages keep their names (flags) and mtimes (received dates), and belong to
  // the mailbox's owner; the folder has its maildirfolder marker; Dovecot's state files and the
  // other folders are as they were.
  const auto live_after = ListTree(Mailbox());
  for (const auto& [path, line] : live_before) {
    bool sent = path == ".Sent" || path.rfind(".Sent/", 0) == 0;
    if (sent &&
        (path.find("/cur/") != std::string::npos || path.find("/new/") != std::string::npos)) {
      std::string moved = ".Restored/" + path.substr(6);
      ASSERT_TRUE(live_after.count(moved)) << moved;
      EXPECT_EQ(live_after.at(moved), line) << moved;
    }
    if (sent) continue;
    ASSERT_EQ(live_after.count(path), 1u) << path << " vanished";
    if (line[0] == 'f' && path != "subscriptions") {
      EXPECT_EQ(live_after.at(path), line) << path << " changed";
    }
  }
  struct stat st;
  ASSERT_EQ(::stat((Mailbox() + "/.Restored/maildirfolder").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 8u);
  EXPECT_TRUE(stdfs::is_directory(Mailbox() + "/.Restored/tmp"));
  for (const auto& e : stdfs::directory_iterator(Mailbox() + "/tmp"))
    if (e.path().filename().string().rfind(".mailvault", 0) == 0)
      ADD_FAILURE() << "staging left in the mailbox's tmp/: " << e.path();

  // The same restore again adds nothing, and says so.
  auto again = IntoFolderRestore({"--folder", ".Sent", "--into-folder", "Restored"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("nothing to restore"), std::string::npos) << again.out;
  auto again2 = IntoFolderRestore({"--folder", ".Sent", "--into-folder", "Restored again"});
  EXPECT_EQ(again2.exit_code, 0) << again2.err;
  EXPECT_NE(again2.out.find("nothing to restore"), std::string::npos) << again2.out;
  EXPECT_FALSE(stdfs::exists(Mailbox() + "/.Restored again"));
  EXPECT_EQ(FilesIn(Mailbox() + "/.Restored"), sent);
}

TEST_F(IntoFolder, SeveralFoldersLandInSubfoldersWithNonAsciiNamesThatDovecotDecodes) {
  ASSERT_EQ(Shell("command -v doveadm").exit_code, 0) << "doveadm missing: install dovecot-core";
  std::string err;
  auto before = DoveadmCounts(Mailbox(), &err);
  ASSERT_EQ(err, "");
  // Lose INBOX's cur/ and the Trash; a dry run first writes nothing.
  Shell("rm -f '" + Mailbox() + "'/cur/* && rm -rf '" + Mailbox() + "/.Trash'");
  const auto tree = ListTree(vol_.path());
  auto dry = IntoFolderRestore({"--into-folder", "Zurück & vor", "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(DiffTrees(tree, ListTree(vol_.path())), "");
  EXPECT_FALSE(Json(dry)["would_write"].empty());

  auto r = IntoFolderRestore({"--into-folder", "Zurück & vor"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  // On disk in modified UTF-7, '&' as "&-".
  EXPECT_TRUE(stdfs::is_directory(Mailbox() + "/.Zur&APw-ck &- vor"));
  EXPECT_TRUE(stdfs::is_directory(Mailbox() + "/.Zur&APw-ck &- vor.Trash"));
  std::vector<std::string> subscribed;
  TempDir state("mvdovestate");
  auto seen = DoveadmCountsKeepingState(Mailbox(), state.path(), &err, &subscribed);
  EXPECT_EQ(err, "");
  uint64_t inbox_new = FilesIn(Mailbox());
  EXPECT_EQ(seen["Zurück & vor"], before["INBOX"] - inbox_new);
  EXPECT_EQ(seen["Zurück & vor.Trash"], before["Trash"]);
  EXPECT_EQ(seen.count("Zurück & vor.Sent"), 0u) << "Sent was live and complete: nothing to add";
  EXPECT_EQ(seen["Sent"], before["Sent"]);
  EXPECT_NE(std::find(subscribed.begin(), subscribed.end(), "Zurück & vor.Trash"),
            subscribed.end());
}

TEST_F(IntoFolder, BadNamesAndSelectionsAreRefusedNamingTheValueAndNothingIsWritten) {
  struct Case {
    std::vector<std::string> args;
    int exit;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"--into-folder", "a/b"}, 2, "'/'"},
      {{"--into-folder", "../../etc"}, 2, "'/'"},
      {{"--into-folder", ".hidden"}, 2, "empty level"},
      {{"--into-folder", "a..b"}, 2, "empty level"},
      {{"--into-folder", "INBOX.x"}, 2, "INBOX"},
      {{"--into-folder", std::string(300, 'x')}, 2, "300 bytes"},
      {{"--into-folder", "bad\xff"}, 2, "UTF-8"},
      {{"--into-folder", "tab\there"}, 2, "control character"},
      {{"--into-folder", "Sent"},
       2,
       "exists in the live mailbox"},  // every folder: INBOX's go to .Sent
      {{"--folder", ".Nope", "--into-folder", "R"}, 1, ".Sent"},  // lists the folders
      {{"--message", "no-such-message", "--into-folder", "R"}, 1, "no-such-message"},
  };
  // Make something to add, so "exists" is the reason and not "nothing to restore".
  Shell("rm -f '" + Mailbox() + "'/cur/*");
  const auto tree2 = ListTree(vol_.path());
  for (const auto& c : cases) {
    auto r = IntoFolderRestore(c.args);
    EXPECT_EQ(r.exit_code, c.exit) << c.args[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args[1] << ": " << r.err;
    EXPECT_EQ(DiffTrees(tree2, ListTree(vol_.path())), "") << c.args[1];
  }
  auto nobody = RunMailvault({"restore", "--repo", repo(), "--mailbox", "nobody@example.org",
                              "--into-folder", "R", "--target", vol_.path()});
  EXPECT_EQ(nobody.exit_code, 1);
  EXPECT_NE(nobody.err.find(users_[1]), std::string::npos) << "lists the mailboxes: " << nobody.err;
  auto no_mailbox =
      RunMailvault({"restore", "--repo", repo(), "--into-folder", "R", "--target", vol_.path()});
  EXPECT_EQ(no_mailbox.exit_code, 2);
  EXPECT_NE(no_mailbox.err.find("--mailbox"), std::string::npos) << no_mailbox.err;
  // A live mailbox that is gone: --into-folder does not recreate it, and says what does.
  stdfs::remove_all(Mailbox(1));
  auto gone = RunMailvault({"restore", "--repo", repo(), "--mailbox", users_[1], "--into-folder",
                            "R", "--target", vol_.path()});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("--include mail/" + users_[1]), std::string::npos) << gone.err;
  EXPECT_FALSE(stdfs::exists(Mailbox(1)));
}

}  // namespace
}  // namespace mv::testing
