// `mailvault verify`: what a person relies on besides the fault tests - the live source is never
// touched, SQLite is only read, the summary comes first, scratch space is cleaned up, and live
// drift is classified by message.
#include <sys/stat.h>

#include "verify/census_diff.h"
#include "verify_fixture.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class Verify : public VerifyFixture {};

TEST_F(Verify, LeavesTheLiveSourceUntouched) {
  auto before = ListTree(vol_.path());
  RunResult v = VerifyFixture::Verify();
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(DiffTrees(before, ListTree(vol_.path())), "") << "verify changed the live source";
}

TEST_F(Verify, HoldsTheLiveDatabaseOnlyInAReadTransaction) {
  // A writer holds the database's write lock with an uncommitted insert for the whole verify.
  // A reader in one read transaction is not blocked by it and does not see the row; anything
  // needing a write lock would fail with SQLITE_BUSY.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((vol_ / "data/main.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO alias VALUES('late@example.org','x');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  RunResult v = VerifyFixture::Verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  auto j = ParseJson(v);
  EXPECT_TRUE(j["databases"][0]["vs_live"]["identical"].get<bool>()) << j["databases"].dump(1);
  EXPECT_EQ(sqlite3_exec(db, "COMMIT;", nullptr, nullptr, nullptr), SQLITE_OK)
      << "verify left a lock behind";
  sqlite3_close(db);
}

TEST_F(Verify, SummaryComesFirstThenDetails) {
  std::vector<std::string> args = {"verify", "--repo", repo(), "--scratch", scratch_.path()};
  for (auto& s : SourceArgs()) args.push_back(s);
  RunResult h = RunMailvault(args);
  ASSERT_EQ(h.exit_code, 0) << h.err;
  std::istringstream lines(h.out);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_EQ(first.rfind("verify snapshot ", 0), 0u) << h.out;
  EXPECT_EQ(second, "RESULT: OK - the snapshot is complete and consistent") << h.out;
  EXPECT_NE(h.out.find("48 messages in 2 mailboxes / 8 folders; 0 messages lost"),
            std::string::npos)
      << h.out;
  EXPECT_LT(h.out.find("RESULT"), h.out.find("Details"));
}

TEST_F(Verify, ScratchIsRemovedUnlessKept) {
  ASSERT_EQ(VerifyFixture::Verify().exit_code, 0);
  EXPECT_TRUE(stdfs::is_empty(scratch_.path()));
  auto j = ParseJson(VerifyFixture::Verify({"--keep"}));
  ASSERT_TRUE(j.contains("scratch"));
  std::string kept = j["scratch"];
  EXPECT_EQ(kept.rfind(scratch_.path(), 0), 0u);
  EXPECT_EQ(ReadFile(kept + "/dkim/example.org.dkim.key"),
            ReadFile(vol_ / "dkim/example.org.dkim.key"));
}

TEST_F(Verify, PicksTheLatestSnapshotOfAStack) {
  EXPECT_EQ(VerifyFixture::Verify({"--stack", "mailu"}).exit_code, 0);
  RunResult none = VerifyFixture::Verify({"--stack", "other"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("--stack other"), std::string::npos) << none.err;
}

TEST_F(Verify, LiveMovesAndDeletionsAreShownButNormal) {
  std::string inbox = vol_ / ("mail/" + users_[0]);
  std::vector<stdfs::path> cur;
  for (const auto& e : stdfs::directory_iterator(inbox + "/cur")) cur.push_back(e.path());
  std::sort(cur.begin(), cur.end());
  ASSERT_GE(cur.size(), 2u);
  stdfs::rename(cur[0], inbox + "/.Trash/cur/" + cur[0].filename().string());
  stdfs::remove(cur[1]);
  RunResult v = VerifyFixture::Verify({"--against", "live"});
  EXPECT_EQ(v.exit_code, 0) << v.out;
  auto j = ParseJson(v);
  for (const auto& l : j["live"]) {
    if (l["source"] != "mail") continue;
    EXPECT_EQ(l["moved_count"], 1);
    EXPECT_EQ(l["moved"][0]["folder"], "INBOX -> .Trash");
    EXPECT_EQ(l["deleted_since_count"], 1);
    EXPECT_EQ(l["deleted_since"][0]["unique"], Unique(cur[1].string()));
  }
}

TEST_F(Verify, LiveMessageWithChangedContentUnderTheSameNameIsAnError) {
  std::string cur = vol_ / ("mail/" + users_[1] + "/cur");
  stdfs::path victim = stdfs::directory_iterator(cur)->path();
  WriteFile(victim.string(), "rewritten behind our back\n", 0600);
  RunResult v = VerifyFixture::Verify();
  EXPECT_EQ(v.exit_code, 1);
  auto j = ParseJson(v);
  bool named = false;
  for (const auto& l : j["live"])
    for (const auto& m : l["changed"]) named |= m["unique"] == Unique(victim.string());
  EXPECT_TRUE(named) << j["live"].dump(1);
}

}  // namespace
}  // namespace mv::testing

namespace mv::verify {
namespace {

MessageRecord Msg(std::string folder, std::string unique, uint8_t content) {
  MessageRecord m{"mail", "a@example.org", folder, unique, "mail/a@example.org/" + unique, 10, {}};
  m.content.bytes[0] = content;
  return m;
}

TEST(MessageDiff, ClassifiesByUniqueNameWithinTheMailbox) {
  std::vector<MessageRecord> snap = {Msg("INBOX", "1.a", 1), Msg("INBOX", "2.b", 2),
                                     Msg("INBOX", "3.c", 3), Msg(".Sent", "4.d", 4)};
  std::vector<MessageRecord> live = {Msg("INBOX", "1.a", 1), Msg(".Trash", "2.b", 2),
                                     Msg("INBOX", "3.c", 9), Msg("INBOX", "5.e", 5)};
  MessageDiff d = DiffMessages(snap, live);
  ASSERT_EQ(d.moved.size(), 1u);
  EXPECT_EQ(d.moved[0].unique, "2.b");
  EXPECT_EQ(d.moved[0].folder, "INBOX -> .Trash");
  ASSERT_EQ(d.changed.size(), 1u);
  EXPECT_EQ(d.changed[0].unique, "3.c");
  ASSERT_EQ(d.only_base.size(), 1u);
  EXPECT_EQ(d.only_base[0].unique, "4.d");
  ASSERT_EQ(d.only_other.size(), 1u);
  EXPECT_EQ(d.only_other[0].unique, "5.e");
  EXPECT_TRUE(DiffMessages(snap, snap).empty());
}

}  // namespace
}  // namespace mv::verify
