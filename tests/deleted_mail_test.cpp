// Mail-aware retention (`forget --keep-deleted-mail`, docs/FORMAT.md §12) through the real
// binary: a message that lived only between kept snapshots is held through forget and prune,
// `check --read-data` passes, `restore --deleted-since` brings it back bit for bit under its path
// (and dovecot reads it there), the period is counted from the last snapshot that had the
// message, expired records go, and bad input or a damaged record changes nothing.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <set>
#include <thread>

#include "storage/held_mail.h"
#include "storage/sealed.h"
#include "tests/test_util.h"

namespace mv::testing {
namespace {

namespace fs = std::filesystem;

// "YYYY-MM-DD HH:MM:SS" (UTC) of now + `offset_s`.
std::string UtcText(int64_t offset_s) {
  time_t t = ::time(nullptr) + offset_s;
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

constexpr int64_t kDay = 86400;

class DeletedMail : public RepoTest {
 protected:
  std::string box() const { return vol_ / "mail/alice@example.org"; }
  // The mailbox's messages: relative path -> content.
  void SetMail(const std::map<std::string, std::string>& msgs) {
    fs::remove_all(vol_ / "mail");
    for (const char* d : {"cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"})
      fs::create_directories(box() + "/" + d);
    WriteFile(box() + "/.Sent/maildirfolder", "");
    for (const auto& [rel, text] : msgs) WriteFile(box() + "/" + rel, text);
  }
  std::string BackupAt(const std::string& time) {
    RunResult r = RunMailvault({"backup", "--repo", repo(), "--json", "--source",
                                "mail=" + vol_ / "mail", "--time", time});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? Json(r)["snapshot"].get<std::string>() : "";
  }
  RunResult Run(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--repo", repo()});
    return RunMailvault(args);
  }
  size_t Snapshots() { return Json(Run({"snapshots", "--json"})).size(); }

  const std::string a_ = MessageText(1, 30000), b_ = MessageText(2, 40000),
                    c_ = MessageText(3, 50000), k_ = MessageText(4, 20000),
                    d_ = MessageText(5, 10000);
  // A in INBOX only on day 1; B in .Sent on days 1-2; C in new/ only on day 2; K every day; D new
  // on day 3. Days are 3, 2 and 1 days ago.
  void ThreeDays() {
    SetMail({{"cur/1700000001.M1P1.host:2,S", a_},
             {".Sent/cur/1700000002.M2P1.host:2,S", b_},
             {"cur/1700000004.M4P1.host:2,S", k_}});
    day1_ = BackupAt(UtcText(-3 * kDay));
    SetMail({{".Sent/cur/1700000002.M2P1.host:2,S", b_},
             {"new/1700000003.M3P1.host", c_},
             {"cur/1700000004.M4P1.host:2,S", k_}});
    day2_time_ = UtcText(-2 * kDay);
    day2_ = BackupAt(day2_time_);
    SetMail({{"cur/1700000004.M4P1.host:2,S", k_}, {"new/1700000005.M5P1.host", d_}});
    day3_ = BackupAt(UtcText(-1 * kDay));
  }
  std::string day1_, day2_, day3_, day2_time_;
};

TEST_F(DeletedMail, AMessageOnlyForgottenSnapshotsHadIsHeldThroughPruneAndRestoresExactly) {
  ThreeDays();
  // The same history forgotten without the option, for comparison.
  TempDir plain("mvheld-plain");
  fs::copy(repo(), plain / "r", fs::copy_options::recursive);

  RunResult f = Run({"forget", "--keep-last", "1", "--keep-deleted-mail", "30d", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err << f.out;
  auto j = Json(f);
  EXPECT_EQ(j["removed"].size(), 2u);
  EXPECT_EQ(j["held_mail"]["messages"], 3) << j.dump() << ": A, B and C, not K (kept)";
  EXPECT_EQ(j["held_mail"]["bytes"], a_.size() + b_.size() + c_.size());
  auto config = nlohmann::json::parse(ReadFile(repo() + "/config"));
  // init wrote the newest version (9), which has held mail: nothing to raise, nothing lowered.
  // Older repositories are raised to 5 (format_compat_test.cpp, repo-v1 to repo-v4).
  EXPECT_EQ(config["version"], 9);

  RunResult p = Run({"prune", "--max-unused", "0%", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  EXPECT_EQ(Json(p)["held_messages"], 3) << p.out;
  RunResult pp = RunMailvault({"forget", "--repo", plain / "r", "--keep-last", "1", "--prune"});
  ASSERT_EQ(pp.exit_code, 0) << pp.err;
  ASSERT_EQ(RunMailvault({"prune", "--repo", plain / "r", "--max-unused", "0%"}).exit_code, 0);
  EXPECT_GT(DirBytes(repo() + "/packs"), DirBytes(plain / "r/packs"))
      << "the held messages' data is still there; without the option it went";

  RunResult c = Run({"check", "--read-data", "--json"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
  EXPECT_EQ(Json(c)["held_messages"], 3) << c.out;
  RunResult s = Run({"snapshots"});
  EXPECT_NE(s.out.find("held deleted mail: 3 message(s)"), std::string::npos) << s.out;

  // All of them, under their paths; nothing that a kept snapshot has.
  TempDir out("mvheld-out");
  RunResult r = Run({"restore", "--deleted-since", UtcText(-4 * kDay).substr(0, 10), "--target",
                     out.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(Json(r)["files_written"], 3) << r.out;
  std::string m = out / "mail/alice@example.org";
  EXPECT_EQ(ReadFile(m + "/cur/1700000001.M1P1.host:2,S"), a_);
  EXPECT_EQ(ReadFile(m + "/.Sent/cur/1700000002.M2P1.host:2,S"), b_);
  EXPECT_EQ(ReadFile(m + "/new/1700000003.M3P1.host"), c_);
  EXPECT_FALSE(fs::exists(m + "/cur/1700000004.M4P1.host:2,S")) << "K is in the kept snapshot";
  // dovecot reads the restored Maildir: one message in INBOX's cur/ and new/, one in Sent.
  ASSERT_EQ(Shell("chmod 755 '" + out.path() + "' && chmod -R a+rX '" + out.path() + "'").exit_code,
            0);
  std::string err;
  auto counts = DoveadmCounts(m, &err);
  EXPECT_EQ(err, "");
  EXPECT_EQ(counts["INBOX"], 2u);
  EXPECT_EQ(counts["Sent"], 1u);

  // Narrowed: B was last seen on day 2, A on day 1.
  TempDir sent("mvheld-sent");
  r = Run({"restore", "--deleted-since", day2_time_, "--mailbox", "alice@example.org", "--folder",
           ".Sent", "--target", sent.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["files_written"], 1) << r.out;
  EXPECT_EQ(ReadFile(sent / "mail/alice@example.org/.Sent/cur/1700000002.M2P1.host:2,S"), b_);
  TempDir one("mvheld-one");
  r = Run({"restore", "--deleted-since", "2020-01-01", "--message", "1700000003.M3P1.host",
           "--target", one.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Json(r)["messages"].size(), 1u) << r.out;
  EXPECT_EQ(Json(r)["messages"][0]["snapshot"], day2_);
  EXPECT_EQ(ReadFile(one / "mail/alice@example.org/new/1700000003.M3P1.host"), c_);

  // Restoring again into the same place writes nothing and overwrites nothing.
  r = Run({"restore", "--deleted-since", "2020-01-01", "--target", out.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["files_written"], 0) << r.out;
  EXPECT_EQ(Json(r)["files_unchanged"], 3) << r.out;

  // Without the option nothing was held.
  RunResult none = RunMailvault(
      {"restore", "--repo", plain / "r", "--deleted-since", "2020-01-01", "--target", out / "x"});
  EXPECT_EQ(none.exit_code, 1) << none.err;
  EXPECT_NE(none.err.find("no held deleted mail matches"), std::string::npos) << none.err;
}

// A message is held per mailbox: alice's deleted copy is held although bob still has the same
// bytes, and a message alice only moved to another folder (and re-flagged) is not held.
TEST_F(DeletedMail, MessagesAreHeldPerMailboxAndAMoveWithinTheMailboxIsNoDeletion) {
  const std::string same = MessageText(30, 30000), moved = MessageText(31, 30000);
  std::string alice = vol_ / "mail/alice@example.org", bob = vol_ / "mail/bob@example.org";
  auto maildirs = [&] {
    for (const std::string& b : {alice, alice + "/.Sent", bob})
      for (const char* d : {"/cur", "/new", "/tmp"}) fs::create_directories(b + d);
  };
  fs::remove_all(vol_ / "mail");
  maildirs();
  WriteFile(alice + "/cur/1.M1P1.h:2,S", same);
  WriteFile(alice + "/cur/3.M3P1.h:2,", moved);
  WriteFile(bob + "/cur/2.M2P1.h:2,S", same);
  BackupAt(UtcText(-2 * kDay));
  fs::remove(alice + "/cur/1.M1P1.h:2,S");
  fs::rename(alice + "/cur/3.M3P1.h:2,", alice + "/.Sent/cur/3.M3P1.h:2,S");
  BackupAt(UtcText(-1 * kDay));
  RunResult f = Run({"forget", "--keep-last", "1", "--keep-deleted-mail", "30d", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(Json(f)["held_mail"]["messages"], 1) << f.out;
  TempDir out("mvheld-per-mailbox");
  RunResult r = Run({"restore", "--deleted-since", "2020-01-01", "--target", out.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Json(r)["messages"].size(), 1u) << r.out;
  EXPECT_EQ(Json(r)["messages"][0]["mailbox"], "alice@example.org");
  EXPECT_EQ(Json(r)["messages"][0]["folder"], "INBOX");
  EXPECT_EQ(ReadFile(out / "mail/alice@example.org/cur/1.M1P1.h:2,S"), same);
}

// The period runs from the last snapshot that had a message: one last seen 40 days ago is not
// held by a 30-day period, one last seen 20 days ago is; the next prune gives the first back.
TEST_F(DeletedMail, ThePeriodCountsFromTheLastSnapshotThatHadTheMessage) {
  const std::string x = MessageText(10, 60000), y = MessageText(11, 60000);
  SetMail({{"cur/1.M1P1.h:2,S", x}, {"cur/9.M9P1.h:2,S", k_}});
  BackupAt(UtcText(-40 * kDay));
  SetMail({{"cur/2.M2P1.h:2,S", y}, {"cur/9.M9P1.h:2,S", k_}});
  BackupAt(UtcText(-20 * kDay));
  SetMail({{"cur/9.M9P1.h:2,S", k_}});
  BackupAt(UtcText(-1 * kDay));
  RunResult f =
      Run({"forget", "--keep-last", "1", "--keep-deleted-mail", "30d", "--prune", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err << f.out;
  auto j = Json(f);
  EXPECT_EQ(j["held_mail"]["messages"], 1) << j.dump();
  EXPECT_EQ(j["held_mail"]["expired"], 1) << j.dump();
  TempDir out("mvheld-period");
  RunResult r = Run({"restore", "--deleted-since", "2000-01-01", "--target", out.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["files_written"], 1) << r.out;
  EXPECT_EQ(ReadFile(out / "mail/alice@example.org/cur/2.M2P1.h:2,S"), y);
  EXPECT_FALSE(fs::exists(out / "mail/alice@example.org/cur/1.M1P1.h:2,S"));
  EXPECT_EQ(Run({"check", "--read-data"}).exit_code, 0);
}

// A record whose messages have all expired is removed by the next prune, and their data goes.
TEST_F(DeletedMail, PruneRemovesARecordOnceEveryMessageInItHasExpired) {
  const std::string x = MessageText(20, 200000);
  SetMail({{"cur/1.M1P1.h:2,S", x}, {"cur/9.M9P1.h:2,S", k_}});
  // Last seen 1 hour minus 3 seconds ago, held for 1 hour: expires 3 seconds from now.
  BackupAt(UtcText(-3600 + 3));
  SetMail({{"cur/9.M9P1.h:2,S", k_}});
  BackupAt(UtcText(0));
  RunResult f = Run({"forget", "--keep-last", "1", "--keep-deleted-mail", "1h", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  ASSERT_EQ(Json(f)["held_mail"]["messages"], 1) << f.out;
  ASSERT_EQ(fs::exists(repo() + "/held"), true);
  size_t records = 0;
  for (const auto& e : fs::directory_iterator(repo() + "/held")) records += e.is_regular_file();
  EXPECT_EQ(records, 1u);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  uint64_t before = DirBytes(repo() + "/packs");
  RunResult p = Run({"prune", "--max-unused", "0%", "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(Json(p)["held_records_expired"], 1) << p.out;
  EXPECT_EQ(Json(p)["held_messages"], 0) << p.out;
  EXPECT_TRUE(fs::is_empty(repo() + "/held"));
  EXPECT_LT(DirBytes(repo() + "/packs"), before) << "the expired message went";
  EXPECT_EQ(Run({"check", "--read-data"}).exit_code, 0);
}

TEST_F(DeletedMail, BadInputIsAUsageErrorNamingTheValueAndRemovesNothing) {
  ThreeDays();
  for (std::string bad : {"thirty", "0d", "30x", "1d1y"}) {
    RunResult f = Run({"forget", "--keep-last", "1", "--keep-deleted-mail", bad});
    EXPECT_EQ(f.exit_code, 2) << bad << ": " << f.err;
    EXPECT_NE(f.err.find("--keep-deleted-mail"), std::string::npos) << f.err;
    EXPECT_NE(f.err.find(bad), std::string::npos) << f.err;
  }
  EXPECT_EQ(Snapshots(), 3u);
  RunResult a = RunMailvault(
      {"agent", "--repo", repo(), "--once", "--keep-daily", "7", "--keep-deleted-mail", "soon"});
  EXPECT_EQ(a.exit_code, 2) << a.err;
  EXPECT_NE(a.err.find("'soon'"), std::string::npos) << a.err;
  TempDir out("mvheld-bad");
  RunResult r = Run({"restore", "--deleted-since", "yesterday", "--target", out.path()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--deleted-since 'yesterday'"), std::string::npos) << r.err;
  r = Run(
      {"restore", "--snapshot", "latest", "--deleted-since", "2026-01-01", "--target", out.path()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = Run({"restore", "--mailbox", "alice@example.org", "--target", out.path()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--deleted-since"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(out.path())) << "nothing was written";
}

// A record that cannot be read would make the mail it holds look unused: prune refuses and
// changes nothing, check names it.
TEST_F(DeletedMail, ADamagedRecordStopsPruneAndCheckNamesIt) {
  ThreeDays();
  ASSERT_EQ(Run({"forget", "--keep-last", "1", "--keep-deleted-mail", "30d"}).exit_code, 0);
  std::string rec;
  for (const auto& e : fs::directory_iterator(repo() + "/held")) rec = e.path();
  ASSERT_FALSE(rec.empty());
  std::string data = ReadFile(rec);
  data[data.size() / 2] ^= 0x20;
  WriteFile(rec, data);
  uint64_t before = DirBytes(repo() + "/packs");
  RunResult p = Run({"prune", "--max-unused", "0%"});
  EXPECT_EQ(p.exit_code, 1) << p.err;
  EXPECT_NE(p.err.find("held mail record"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("mailvault check"), std::string::npos) << p.err;
  EXPECT_EQ(DirBytes(repo() + "/packs"), before);
  RunResult c = Run({"check"});
  EXPECT_NE(c.exit_code, 0) << c.out;
  EXPECT_NE(c.out.find("held-mail-damaged"), std::string::npos) << c.out << c.err;
}

// A record naming a path that leaves its source is not a record this build wrote: refused whole.
TEST(HeldMailRecord, APathWithDotDotOrAnAbsolutePathIsRefused) {
  constexpr std::string_view kMagic{"MVHELDM\x01", 8};
  auto record = [&](const std::string& path) {
    nlohmann::json m = {{"path", path},
                        {"mode", 420},
                        {"uid", 0},
                        {"gid", 0},
                        {"size", 1},
                        {"mtime_ns", 0},
                        {"content", std::string(32, 'a')},
                        {"blobs", {std::string(32, 'a')}},
                        {"mailbox", "a@b"},
                        {"folder", "INBOX"},
                        {"name", "1.M1P1.h"},
                        {"snapshot", std::string(32, 'b')},
                        {"last_seen_ns", 1},
                        {"expires_ns", 2}};
    nlohmann::json h = {{"kind", "held-mail"}, {"version", 1}, {"time_ns", 1}, {"messages", 1}};
    nlohmann::json body = {{"messages", {m}}};
    return storage::Seal(kMagic, h.dump(), body.dump());
  };
  EXPECT_TRUE(storage::DecodeHeldRecord(record("mail/a@b/cur/1.M1P1.h"), "r").ok());
  for (const char* bad : {"../etc/cur/x", "mail/../../x", "/mail/a@b/cur/x", "mail//cur/x",
                          "mail/./cur/x", "mail/a@b/cur/.."}) {
    auto r = storage::DecodeHeldRecord(record(bad), "r");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().ToString();
  }
}

}  // namespace
}  // namespace mv::testing
