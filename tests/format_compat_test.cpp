// Old formats keep reading (docs/FORMAT.md, STYLE.md practice 10): tests/data/repo-v<N> is a
// repository written by format version N (see tests/data/repo-v<N>.md). This build must list
// each, restore it bit for bit, check it, and back up into (a copy of) it.
#include <gtest/gtest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <sys/xattr.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "storage/entry_table.h"
#include "storage/held_mail.h"
#include "storage/repository.h"
#include "storage/snapshot.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

// One committed repository per format version (tests/data/repo-v<N>.md says how each was made;
// tests/data/make-fixture-repo.sh writes them since version 2).
struct Fixture {
  int version;
  std::string first, second;  // short IDs of its two snapshots
  size_t files;               // entries in repo-v<N>.sha256
  std::string repo() const {
    return std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/repo-v" + std::to_string(version);
  }
  std::string sha_file() const { return repo() + ".sha256"; }
};
const Fixture kFixtures[] = {
    {1, "4f72aec8", "c84e6254", 5}, {2, "b9a436fc", "20588273", 7}, {3, "d8c1b939", "646b0701", 7},
    {4, "cb8788bd", "26e3084b", 7}, {5, "988c6cb1", "3b6bb5ab", 7}, {6, "0587690d", "419fd58a", 7},
    {7, "fccb02d0", "1f684c61", 7}, {8, "252fb391", "1ddbe2d4", 7}, {9, "ee4cc71a", "83a5e2da", 7}};

// "./mail/..." -> sha256, as in tests/data/repo-v<N>.sha256.
std::map<std::string, std::string> ExpectedDigests(const Fixture& fx) {
  std::ifstream in(fx.sha_file());
  std::map<std::string, std::string> m;
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.find("  ");
    if (sp != std::string::npos) m[line.substr(sp + 2)] = line.substr(0, sp);
  }
  return m;
}

// sha256 of every expected file below `dir` (by the same relative names).
std::map<std::string, std::string> Digests(const std::string& dir,
                                           const std::map<std::string, std::string>& want) {
  std::map<std::string, std::string> got;
  for (const auto& [rel, _] : want) {
    RunResult r = Shell("cd '" + dir + "' && sha256sum '" + rel + "'");
    if (r.exit_code == 0) got[rel] = r.out.substr(0, 64);
  }
  return got;
}

std::vector<std::string> Users(const std::string& db) {
  SQLite::Database d(db, SQLite::OPEN_READONLY);
  SQLite::Statement q(d, "SELECT email FROM user ORDER BY email");
  std::vector<std::string> v;
  while (q.executeStep()) v.push_back(q.getColumn(0).getString());
  return v;
}

void ExpectRestoresFixtureContent(const Fixture& fx, const std::string& repo,
                                  const std::string& snap) {
  TempDir out("mvcompat-out");
  RunResult r =
      RunMailvault({"restore", "--repo", repo, "--snapshot", snap, "--target", out.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto want = ExpectedDigests(fx);
  ASSERT_EQ(want.size(), fx.files);
  EXPECT_EQ(Digests(out.path(), want), want);
  EXPECT_EQ(Users(out / "data/main.db"), std::vector<std::string>{"alice@example.org"});
  struct stat st;
  ASSERT_EQ(::lstat((out / "mail/alice@example.org/link-to-cur").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::stat((out / "mail/alice@example.org/cur/1700000000.M1P1.host:2,S").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1796032800) << "mtime 2026-11-30 10:00:00 UTC, as recorded";
  if (fx.version < 2) return;
  // Version 2 records hard links and extended attributes (docs/FORMAT.md §7).
  struct stat key, link;
  ASSERT_EQ(::stat((out / "data/dkim/example.org.key").c_str(), &key), 0);
  ASSERT_EQ(::stat((out / "data/dkim/example.org.key.link").c_str(), &link), 0);
  EXPECT_EQ(key.st_ino, link.st_ino) << "the hard link comes back as a hard link";
  char value[16] = {};
  ssize_t n =
      ::getxattr((out / "data/dkim/example.org.key").c_str(), "user.fixture", value, sizeof value);
  EXPECT_EQ(std::string(value, n > 0 ? n : 0), "dkim") << "the user xattr comes back";
}

// Versions 7 and 9 are encrypted: every command opens them with the passphrase of
// repo-v<N>.pass, from the environment as an operator's sidecar would have it.
class FormatCompat : public ::testing::TestWithParam<Fixture> {
 protected:
  void SetUp() override {
    if (GetParam().version == 7 || GetParam().version == 9)
      ::setenv("MAILVAULT_PASSWORD_FILE", (GetParam().repo() + ".pass").c_str(), 1);
  }
  void TearDown() override { ::unsetenv("MAILVAULT_PASSWORD_FILE"); }
};

TEST_P(FormatCompat, ListsBothSnapshots) {
  const Fixture& fx = GetParam();
  RunResult r = RunMailvault({"snapshots", "--repo", fx.repo(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  ASSERT_EQ(j.size(), 2u) << r.out;
  EXPECT_EQ(j[0]["short_id"], fx.first);
  EXPECT_EQ(j[1]["short_id"], fx.second);
  EXPECT_EQ(j[1]["parent"].get<std::string>().substr(0, 8), fx.first);
}

TEST_P(FormatCompat, RestoresBitForBit) {
  ExpectRestoresFixtureContent(GetParam(), GetParam().repo(), "latest");
}

TEST_P(FormatCompat, PassesCheckWithData) {
  RunResult r = RunMailvault({"check", "--repo", GetParam().repo(), "--read-data"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
}

TEST_P(FormatCompat, NewBackupIntoACopyWorks) {
  const Fixture& fx = GetParam();
  TempDir copy("mvcompat-repo"), src("mvcompat-src");
  stdfs::copy(fx.repo(), copy / "r", stdfs::copy_options::recursive);
  WriteFile(src / "mail/alice@example.org/cur/1700000009.M9P1.host:2,S", "Subject: new\n\nhello\n");
  RunResult b =
      RunMailvault({"backup", "--repo", copy / "r", "--json", "--source", "mail=" + src / "mail"});
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  std::string id = Json(b)["snapshot"];
  auto snaps = Json(RunMailvault({"snapshots", "--repo", copy / "r", "--json"}));
  EXPECT_EQ(snaps.size(), 3u);
  TempDir out("mvcompat-out");
  ASSERT_EQ(
      RunMailvault({"restore", "--repo", copy / "r", "--snapshot", id, "--target", out.path()})
          .exit_code,
      0);
  EXPECT_EQ(ReadFile(out / "mail/alice@example.org/cur/1700000009.M9P1.host:2,S"),
            "Subject: new\n\nhello\n");
  ExpectRestoresFixtureContent(fx, copy / "r",
                               fx.second);  // the old snapshots still restore from the copy
  RunResult c = RunMailvault({"check", "--repo", copy / "r", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
}

// A prune may delete packs, which builds before version 4 cannot follow, and keeps held mail,
// which version-4 builds do not (docs/FORMAT.md §8 "Prune", §12): it raises an old repository's
// config to version 5 and the kept snapshot still restores and checks.
TEST_P(FormatCompat, ForgetAndPruneOfACopyRaiseItToTheCurrentVersionAndKeepTheRest) {
  const Fixture& fx = GetParam();
  TempDir copy("mvcompat-prune");
  stdfs::copy(fx.repo(), copy / "r", stdfs::copy_options::recursive);
  RunResult f = RunMailvault({"forget", "--repo", copy / "r", fx.first});
  ASSERT_EQ(f.exit_code, 0) << f.err << f.out;
  RunResult p = RunMailvault({"prune", "--repo", copy / "r", "--max-unused", "0%"});
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  auto config = nlohmann::json::parse(ReadFile(copy / "r/config"));
  EXPECT_EQ(config["version"], std::max(fx.version, storage::kHeldMailFormatVersion))
      << "raised to version 5 (not higher: version-5 builds still read it) before any pack was "
         "deleted";
  EXPECT_EQ(config["id"], nlohmann::json::parse(ReadFile(fx.repo() + "/config"))["id"])
      << "every other field as it was";
  ExpectRestoresFixtureContent(fx, copy / "r", fx.second);
  RunResult c = RunMailvault({"check", "--repo", copy / "r", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
}

INSTANTIATE_TEST_SUITE_P(EveryFormatVersion, FormatCompat, ::testing::ValuesIn(kFixtures),
                         [](const auto& info) {
                           return "Version" + std::to_string(info.param.version);
                         });

// Version 8 added header records (docs/FORMAT.md §15): find answers from the committed ones,
// with the snapshots that hold the message.
TEST(FormatCompatV8, FindReadsTheCommittedHeaderRecords) {
  std::string repo = std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/repo-v8";
  RunResult r = RunMailvault({"find", "--repo", repo, "--subject", "later", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto j = Json(r);
  EXPECT_EQ(j["indexed"], 4);
  ASSERT_EQ(j["messages"].size(), 1u) << r.out;
  EXPECT_EQ(j["messages"][0]["from"], "dave@example.org");
  EXPECT_EQ(j["messages"][0]["first_snapshot"].get<std::string>().substr(0, 8), "1ddbe2d4");
  auto sent = Json(RunMailvault({"find", "--repo", repo, "--to", "bob@", "--json"}));
  ASSERT_EQ(sent["messages"].size(), 1u);
  EXPECT_EQ(sent["messages"][0]["folder"], ".Sent");
  EXPECT_EQ(sent["messages"][0]["snapshots"], 2);
}

// Version 4 added verification records (docs/FORMAT.md §11): the one committed with repo-v4 (a
// `verify` of its second snapshot) is still read and shown.
TEST(FormatCompatV4, TheVerificationRecordOfAVersion4RepositoryIsShown) {
  std::string repo = std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/repo-v4";
  RunResult r = RunMailvault({"snapshots", "--repo", repo, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  ASSERT_EQ(j.size(), 2u) << r.out;
  EXPECT_TRUE(j[0]["verification"].is_null()) << r.out;
  ASSERT_TRUE(j[1]["verification"].is_object()) << r.out;
  EXPECT_EQ(j[1]["verification"]["ok"], true) << r.out;
}

// Version 2 fields (docs/FORMAT.md §7) survive encoding; the compact table used for change
// detection skips them and still reads every following record.
TEST(FormatFields, Version2FieldsRoundTripAndTheEntryTableSkipsThem) {
  using namespace mv::storage;
  Snapshot snap;
  snap.meta.id = std::string(32, 'a');
  auto file = [](std::string path, uint32_t flags) {
    FileEntry f;
    f.path = std::move(path);
    f.flags = flags;
    f.size = 3;
    f.content.bytes[0] = 7;
    f.blobs = {f.content};
    return f;
  };
  FileEntry dir;
  dir.path = "m";
  dir.type = FileType::kDirectory;
  dir.xattrs = {{"system.posix_acl_default", std::string("\x02\0\0\0", 4)}};
  snap.files.push_back(dir);
  snap.files.push_back(file("m/a", kFlagSqliteRaw | kFlagChangedWhileRead));
  snap.files.back().xattrs = {{"user.x", std::string("v\0w", 3)}, {"user.empty", ""}};
  snap.files.push_back(file("m/b", kFlagHardLink));
  snap.files.back().link_target = "m/a";
  snap.files.push_back(file("m/c", 0));
  std::string data = EncodeSnapshot(snap);
  EXPECT_EQ(data.substr(0, 8), std::string("MVSNAPS\x02", 8));
  auto back = DecodeSnapshot(data, "mem");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->files.size(), 4u);
  EXPECT_EQ(back->files[0].xattrs, dir.xattrs);
  EXPECT_EQ(back->files[0].flags, kFlagXattrs);
  EXPECT_EQ(back->files[1].xattrs, snap.files[1].xattrs);
  EXPECT_EQ(back->files[1].flags, kFlagSqliteRaw | kFlagChangedWhileRead | kFlagXattrs);
  EXPECT_EQ(back->files[2].link_target, "m/a");
  EXPECT_EQ(back->files[2].flags, kFlagHardLink);
  EXPECT_EQ(back->files[2].blobs, snap.files[2].blobs) << "a hard link keeps its blobs";
  EXPECT_EQ(back->files[3].flags, 0u);
  auto table = EntryTable::Decode(data, "mem");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->size(), 4u);
  EXPECT_EQ(table->path(table->row(3)), "m/c");
  EXPECT_EQ(table->row(1).flags, kFlagSqliteRaw | kFlagChangedWhileRead | kFlagXattrs);
}

// Version 9 names an encrypted repository's packs by the hash of their age files (docs/FORMAT.md
// §14.2): the committed one checks without a key, and a flipped byte in a copy's pack is named.
TEST(FormatCompatV9, TheCommittedRepositoryChecksWithoutAKeyAndADamagedPackIsNamed) {
  std::string repo = std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/repo-v9";
  RunResult r = RunMailvault({"check", "--repo", repo, "--without-key", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto j = Json(r);
  EXPECT_EQ(j["packs"], 5);
  EXPECT_EQ(j["snapshots"], 2);
  TempDir copy("mvcompat-v9");
  stdfs::copy(repo, copy / "r", stdfs::copy_options::recursive);
  std::string pack = copy / "r/packs/14/14f3be57a0292c9ceefca01c8788734b.tar.zst";
  std::string bytes = ReadFile(pack);
  bytes[bytes.size() - 20] ^= 0x40;
  WriteFile(pack, bytes, 0600);
  RunResult d = RunMailvault({"check", "--repo", copy / "r", "--without-key"});
  EXPECT_EQ(d.exit_code, 1) << d.err << d.out;
  EXPECT_NE(d.out.find("pack-damaged"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("14f3be57a0292c9ceefca01c8788734b"), std::string::npos) << d.out;
}

}  // namespace
}  // namespace mv::testing
