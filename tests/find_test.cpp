// find / history / index-headers (issue "incident restore"): on messages as they come in the real
// world (RFC 2047 subjects in UTF-8 and Latin-1, folded headers, raw 8-bit, no Message-ID, junk),
// find answers by Message-ID, subject substring, sender and date with the mailbox, folder, name
// and the first and last snapshot that held the message; a message deleted on day 2 is reported
// with its last snapshot; history shows the folders across snapshots and what disappeared;
// index-headers fills the index of a repository written before it existed.
#include <sys/stat.h>

#include <filesystem>

#include "storage/header_index.h"
#include "storage/repository.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

const std::string kBox = "alice@example.org";

struct Msg {
  std::string folder, file, text;
};

std::vector<Msg> RealWorldMessages() {
  return {
      {"cur", "1700000001.M1P1.mx:2,S",
       "Return-Path: <bob@example.net>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
       "From: Bob Builder <bob@example.net>\r\nTo: alice@example.org\r\n"
       "Subject: Invoice 2023-117\r\nMessage-ID: <inv-117@example.net>\r\n\r\nPlease pay.\r\n"},
      {"cur", "1700000002.M2P1.mx:2,RS",
       "Date: Wed, 15 Nov 2023 08:00:00 +0100\nFrom: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= "
       "<juergen@example.de>\nTo: alice@example.org\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus?= "
       "=?UTF-8?Q?_M=C3=BCnchen?=\nMessage-ID: <gruesse@example.de>\n\nServus\n"},
      {".Sent/cur", "1700000003.M3P1.mx:2,S",
       "Date: 16 Nov 2023 09:30 -0500\nFrom: alice@example.org\nTo: carol@example.com\n"
       "Cc: Bob <bob@example.net>\nSubject: =?iso-8859-1?q?Caf=E9_tomorrow=3F?=\n"
       "Message-ID: <cafe@example.org>\n\nSee you\n"},
      {"cur", "1700000004.M4P1.mx:2,",
       "Date: Thu, 17 Nov 2023 10:00:00 +0000\nFrom: newsletter@shop.example\n"
       "Subject: This week's offers,\n folded onto a second line\n\tand a third\n\nBuy\n"},
      {"new", "1700000005.M5P1.mx",
       std::string("Date: Fri, 18 Nov 2023 11:00:00 +0000\nFrom: dave@example.com\nSubject: "
                   "Stra\xdf") +
           "e (raw latin-1)\nMessage-ID: dave-raw@example.com\n\nhi\n"},
      {"cur", "1700000006.M6P1.mx:2,S", std::string("\x00\x01\x02 not a message at all \xff", 26)},
      {"cur", "1700000007.M7P1.mx:2,S",
       "Subject: " + std::string(200000, 'x') + "\n\nhuge header line\n"},
  };
}

class Find : public RepoTest {
 protected:
  void SetUp() override {
    RepoTest::SetUp();
    for (const auto& m : RealWorldMessages()) Put(m);
    for (const char* d : {"tmp", ".Sent/tmp", ".Sent/new"})
      stdfs::create_directories(Box() + "/" + d);
  }
  std::string Box() const { return vol_ / ("mail/" + kBox); }
  void Put(const Msg& m) {
    stdfs::create_directories(Box() + "/" + m.folder);
    for (const char* d : {"cur", "new", "tmp"}) stdfs::create_directories(Box() + "/" + d);
    WriteFile(Box() + "/" + m.folder + "/" + m.file, m.text);
  }
  std::string BackupNow() {
    auto b = Backup("mail=" + vol_.path() + "/mail");
    EXPECT_EQ(b.exit_code, 0) << b.err;
    return Json(b)["snapshot"];
  }
  nlohmann::json FindJson(std::vector<std::string> args, int want_exit = 0) {
    std::vector<std::string> a = {"find", "--repo", repo(), "--json"};
    a.insert(a.end(), args.begin(), args.end());
    auto r = RunMailvault(a);
    EXPECT_EQ(r.exit_code, want_exit) << r.err << r.out;
    return Json(r);
  }
};

TEST_F(Find, FindsByMessageIdSubjectSenderAndDateAcrossSnapshotsWithFirstAndLast) {
  const std::string s1 = BackupNow();
  // Day 2: the invoice is deleted, a new message arrives. Day 3: nothing changes.
  stdfs::remove(Box() + "/cur/1700000001.M1P1.mx:2,S");
  Put({"new", "1700000008.M8P1.mx",
       "Date: Sat, 19 Nov 2023 12:00:00 +0000\nFrom: Bob <bob@example.net>\nSubject: Invoice "
       "2023-118\nMessage-ID: <inv-118@example.net>\n\nAgain.\n"});
  const std::string s2 = BackupNow();
  const std::string s3 = BackupNow();

  // By Message-ID, with or without <>: the deleted invoice, last held by day 1.
  for (const std::string id : {"<inv-117@example.net>", "inv-117@example.net"}) {
    auto j = FindJson({"--message-id", id});
    ASSERT_EQ(j["messages"].size(), 1u) << j.dump(1);
    const auto& m = j["messages"][0];
    EXPECT_EQ(m["mailbox"], kBox);
    EXPECT_EQ(m["folder"], "INBOX");
    EXPECT_EQ(m["name"], "1700000001.M1P1.mx");
    EXPECT_EQ(m["subject"], "Invoice 2023-117");
    EXPECT_EQ(m["from"], "Bob Builder <bob@example.net>");
    EXPECT_EQ(m["first_snapshot"], s1);
    EXPECT_EQ(m["last_snapshot"], s1) << "deleted before day 2";
    EXPECT_EQ(m["snapshots"], 1);
  }
  // By subject substring, any case: both invoices; the new one from day 2 to day 3.
  auto inv = FindJson({"--subject", "INVOICE"});
  ASSERT_EQ(inv["messages"].size(), 2u) << inv.dump(1);
  EXPECT_EQ(inv["messages"][1]["message_id"], "inv-118@example.net");
  EXPECT_EQ(inv["messages"][1]["first_snapshot"], s2);
  EXPECT_EQ(inv["messages"][1]["last_snapshot"], s3);
  // RFC 2047, UTF-8 B and Q (adjacent words joined) and ISO-8859-1 Q.
  auto gr = FindJson({"--subject", "grüße aus münchen"});
  ASSERT_EQ(gr["messages"].size(), 1u);
  EXPECT_EQ(gr["messages"][0]["from"], "Jürgen Müller <juergen@example.de>");
  auto cafe = FindJson({"--subject", "café tomorrow?"});
  ASSERT_EQ(cafe["messages"].size(), 1u);
  EXPECT_EQ(cafe["messages"][0]["folder"], ".Sent");
  EXPECT_EQ(cafe["messages"][0]["snapshots"], 3);
  // Cc counts as a recipient; a folded subject is one line; raw Latin-1 becomes UTF-8.
  EXPECT_EQ(FindJson({"--to", "bob@example.net"})["messages"].size(), 1u);
  auto folded = FindJson({"--subject", "second line and a third"});
  ASSERT_EQ(folded["messages"].size(), 1u);
  EXPECT_EQ(folded["messages"][0]["message_id"], "") << "no Message-ID: found all the same";
  auto raw = FindJson({"--subject", "straße"});
  ASSERT_EQ(raw["messages"].size(), 1u);
  EXPECT_EQ(raw["messages"][0]["folder"], "INBOX");
  EXPECT_EQ(raw["messages"][0]["name"], "1700000005.M5P1.mx");
  // By sender and by date.
  EXPECT_EQ(FindJson({"--from", "BOB@example.net"})["messages"].size(), 2u);
  auto dated = FindJson({"--since", "2023-11-16", "--until", "2023-11-18"});
  EXPECT_EQ(dated["messages"].size(), 2u) << dated.dump(1);  // the café (16th, -0500) and the 17th
  // Narrowed to a folder; nothing found is exit 1.
  EXPECT_EQ(FindJson({"--from", "alice", "--folder", "Sent"})["messages"].size(), 1u);
  EXPECT_EQ(FindJson({"--from", "alice", "--folder", "INBOX"}, 1)["messages"].size(), 0u);
  // No header filter is a usage error that says what to give.
  auto none = RunMailvault({"find", "--repo", repo(), "--mailbox", kBox});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("--message-id"), std::string::npos) << none.err;
  auto bad_date = RunMailvault({"find", "--repo", repo(), "--since", "yesterday-ish"});
  EXPECT_EQ(bad_date.exit_code, 2) << bad_date.err;
  EXPECT_NE(bad_date.err.find("yesterday-ish"), std::string::npos) << bad_date.err;

  // history: the folders of each snapshot, and the message that disappeared, with its headers.
  auto h = RunMailvault({"history", "--repo", repo(), "--mailbox", kBox, "--json"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  auto hj = Json(h);
  ASSERT_EQ(hj["snapshots"].size(), 3u);
  EXPECT_EQ(hj["snapshots"][0]["messages"], 7);
  EXPECT_EQ(hj["snapshots"][1]["messages"], 7);  // one deleted, one new
  auto d =
      RunMailvault({"history", "--repo", repo(), "--mailbox", kBox, "--diff", s1, s3, "--json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto dj = Json(d);
  ASSERT_EQ(dj["disappeared"].size(), 1u) << dj.dump(1);
  EXPECT_EQ(dj["disappeared"][0]["subject"], "Invoice 2023-117");
  EXPECT_EQ(dj["appeared"], 1);
}

TEST_F(Find, MalformedMessagesNeverFailABackupAndTheIndexHoldsEveryMessageOnce) {
  BackupNow();
  BackupNow();  // a no-op: reads nothing, records nothing
  std::set<std::string> files;
  for (const auto& e : stdfs::directory_iterator(repo() + "/headers")) files.insert(e.path());
  EXPECT_EQ(files.size(), 1u) << "one record: the second backup read no message";
  auto all = FindJson({"--since", "1970-01-02"});
  EXPECT_EQ(all["indexed"], 7) << "every message once, the junk ones included";
  auto config = nlohmann::json::parse(ReadFile(repo() + "/config"));
  EXPECT_EQ(config["version"], 9) << "init writes the newest version, which has header records";

  // A damaged record loses no mail: check names it as a warning, find says so and goes on.
  const std::string rec = *files.begin();
  std::string bytes = ReadFile(rec);
  bytes[bytes.size() / 2] ^= 0x40;
  WriteFile(rec, bytes);
  auto c = RunMailvault({"check", "--repo", repo()});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_NE((c.out + c.err).find("headers-damaged"), std::string::npos) << c.out << c.err;
  auto f = RunMailvault({"find", "--repo", repo(), "--subject", "invoice"});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_NE(f.err.find(rec.substr(rec.rfind('/') + 1)), std::string::npos) << f.err;
}

// Hostile records: entries whose content no snapshot holds (a crash leaves such entries; a
// tampered record may name anything) are never reported, and an entry that claims the content of
// a real message with other fields does not move that message out of its mailbox or folder.
TEST_F(Find, AnEntryForContentNoSnapshotHoldsIsNeverReported) {
  BackupNow();
  auto opened = storage::Repository::Open(repo());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  storage::MessageHeaders phantom;
  ASSERT_TRUE(storage::BlobId::FromHex(std::string(32, 'e'), &phantom.content));
  phantom.size = 42;
  phantom.subject = "Phantom invoice";
  phantom.message_id = "phantom@example.net";
  phantom.from = "mallory@example.net";
  auto real = FindJson({"--message-id", "inv-117@example.net"});
  ASSERT_EQ(real["messages"].size(), 1u) << real.dump(1);
  storage::MessageHeaders twin;
  ASSERT_TRUE(
      storage::BlobId::FromHex(real["messages"][0]["content"].get<std::string>(), &twin.content));
  twin.size = 1;
  twin.subject = "Invoice 2023-117";
  twin.message_id = "inv-117@example.net";
  twin.from = "../../etc/passwd";
  ASSERT_TRUE(storage::RecordHeaders(**opened, 1, {phantom, twin}).ok());

  FindJson({"--subject", "phantom"}, 1);
  FindJson({"--message-id", "phantom@example.net"}, 1);
  FindJson({"--from", "mallory"}, 1);
  auto again = FindJson({"--message-id", "<inv-117@example.net>"});
  ASSERT_EQ(again["messages"].size(), 1u) << "the content is reported once: " << again.dump(1);
  EXPECT_EQ(again["messages"][0]["mailbox"], kBox);
  EXPECT_EQ(again["messages"][0]["folder"], "INBOX");
  auto c = RunMailvault({"check", "--repo", repo(), "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
}

// A repository written before header records: find says how to fill the index; index-headers
// does, once; find then answers from snapshots older than the index. Version 6 holds tree
// records (docs/FORMAT.md §7.5), version 2 one flat list per snapshot: both are walked.
class FindIndexHeaders : public ::testing::TestWithParam<const char*> {};

TEST_P(FindIndexHeaders, BackfillsARepositoryWrittenBeforeTheIndex) {
  TempDir copy("mvfind-old");
  stdfs::copy(std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/" + GetParam(), copy / "r",
              stdfs::copy_options::recursive);
  auto before = RunMailvault({"find", "--repo", copy / "r", "--subject", "a"});
  EXPECT_EQ(before.exit_code, 1);
  EXPECT_NE(before.out.find("index-headers"), std::string::npos) << before.out;
  auto idx = RunMailvault({"index-headers", "--repo", copy / "r", "--json"});
  ASSERT_EQ(idx.exit_code, 0) << idx.err;
  auto ij = Json(idx);
  EXPECT_GT(ij["indexed"].get<int>(), 0);
  EXPECT_EQ(ij["already_indexed"], 0);
  auto again = Json(RunMailvault({"index-headers", "--repo", copy / "r", "--json"}));
  EXPECT_EQ(again["indexed"], 0);
  EXPECT_EQ(again["already_indexed"], ij["indexed"]);
  // The fixture's messages (tests/data/make-fixture-repo.sh): "later" came in the second snapshot.
  auto found = RunMailvault({"find", "--repo", copy / "r", "--subject", "LATER", "--json"});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  auto fj = Json(found);
  ASSERT_EQ(fj["messages"].size(), 1u) << fj.dump(1);
  EXPECT_EQ(fj["messages"][0]["from"], "dave@example.org");
  EXPECT_EQ(fj["messages"][0]["snapshots"], 1);
  EXPECT_EQ(Json(RunMailvault(
                {"find", "--repo", copy / "r", "--from", "example.org", "--json"}))["messages"]
                .size(),
            3u)
      << "bob's, carol's and dave's (the sent one has no From)";
  auto c = RunMailvault({"check", "--repo", copy / "r", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FindIndexHeaders, ::testing::Values("repo-v2", "repo-v6"),
                         [](const auto& info) { return std::string(info.param).substr(5); });

}  // namespace
}  // namespace mv::testing
