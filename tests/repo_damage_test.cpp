// A damaged manifest or index file affects only itself; the
// index is rebuilt from the packs; a wrong key is named as such; garbage under packs/ is never
// adopted; the lock takeover is atomic under a race. Real binary, real repositories.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "storage/lock.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

// How a sealed file (docs/FORMAT.md §2) is damaged: each byte class of the framing.
struct Damage {
  const char* name;
  std::function<void(std::string&)> apply;
};

uint32_t HeaderLen(const std::string& d) {
  return static_cast<uint32_t>(static_cast<unsigned char>(d[8])) |
         static_cast<uint32_t>(static_cast<unsigned char>(d[9])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(d[10])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(d[11])) << 24;
}

std::vector<Damage> SealedDamages() {
  return {
      {"magic", [](std::string& d) { d[0] ^= 0x55; }},
      {"header_length", [](std::string& d) { d[11] = '\x7f'; }},
      {"header_json", [](std::string& d) { d[12] = '#'; }},
      {"header_value", [](std::string& d) { d[12 + HeaderLen(d) / 2] ^= 0x01; }},
      {"body",
       [](std::string& d) {
         d[12 + HeaderLen(d) + 8 + (d.size() - 12 - HeaderLen(d) - 8 - 16) / 2] ^= 0x40;
       }},
      {"hash", [](std::string& d) { d[d.size() - 1] ^= 0x01; }},
      {"truncated", [](std::string& d) { d.resize(d.size() / 2); }},
      {"length_0", [](std::string& d) { d.clear(); }},
  };
}

void DamageFile(const std::string& path, const Damage& dmg) {
  std::string d = ReadFile(path);
  dmg.apply(d);
  WriteFile(path, d, 0600);
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : stdfs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

// A repository with three snapshots of a growing mail volume; each backup wrote one index file.
class RepoDamage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new TempDir("mvgolden");
    vol_ = new TempDir("mvvol");
    MakeMailVolume(vol_->path(), {.users = 2, .messages_per_user = 12, .seed = 3});
    std::string repo = golden_->path() + "/r";
    ASSERT_EQ(RunMailvault({"init", "--repo", repo}).exit_code, 0);
    for (int i = 0; i < 3; i++) {
      WriteFile(vol_->path() + "/mail/user0@example.org/new/extra" + std::to_string(i) + ":2,",
                MessageText(1000 + i, 3000));
      RunResult b = RunMailvault(
          {"backup", "--repo", repo, "--json", "--source", "mail=" + vol_->path() + "/mail"});
      ASSERT_EQ(b.exit_code, 0) << b.err;
      ids_.push_back(Json(b)["snapshot"].get<std::string>());
      index_files_.push_back("");
      for (const auto& n : Names(repo + "/index"))
        if (std::find(index_files_.begin(), index_files_.end(), n) == index_files_.end())
          index_files_.back() = n;
      ASSERT_FALSE(index_files_.back().empty());
    }
  }
  static void TearDownTestSuite() {
    delete golden_;
    delete vol_;
  }
  void SetUp() override {
    ASSERT_EQ(Shell("rm -rf '" + repo() + "' && cp -a '" + golden_->path() + "/r' '" + repo() + "'")
                  .exit_code,
              0);
  }
  std::string repo() const { return work_ / "r"; }
  std::string Manifest(int i) const { return repo() + "/snapshots/" + ids_[i]; }
  std::string IndexFile(int i) const { return repo() + "/index/" + index_files_[i]; }

  // Restores snapshot `ref` and checks the message written before backup `i` is there, bit-exact.
  void ExpectRestores(const std::string& ref, int i, const std::string& what) {
    TempDir out("mvout");
    RunResult r =
        RunMailvault({"restore", "--repo", repo(), "--snapshot", ref, "--target", out.path()});
    EXPECT_EQ(r.exit_code, 0) << what << ": restore " << ref << "\n" << r.out << r.err;
    std::string rel = "/mail/user0@example.org/new/extra" + std::to_string(i) + ":2,";
    EXPECT_EQ(ReadFile(out.path() + rel), ReadFile(vol_->path() + rel))
        << what << ": restore " << ref;
    EXPECT_EQ(DiffTrees(ListTree(vol_->path() + "/mail/user1@example.org/cur"),
                        ListTree(out.path() + "/mail/user1@example.org/cur")),
              "")
        << what;
  }
  std::set<std::string> ListedIds(const nlohmann::json& arr, bool damaged) {
    std::set<std::string> s;
    for (const auto& m : arr)
      if (m.value("damaged", false) == damaged) s.insert(m["id"].get<std::string>());
    return s;
  }

  static TempDir* golden_;
  static TempDir* vol_;
  static std::vector<std::string> ids_, index_files_;
  TempDir work_{"mvrepo"};
};
TempDir* RepoDamage::golden_ = nullptr;
TempDir* RepoDamage::vol_ = nullptr;
std::vector<std::string> RepoDamage::ids_, RepoDamage::index_files_;

TEST_F(RepoDamage, DamagedNewestManifestAffectsOnlyItsSnapshotForEveryByteClass) {
  for (const auto& dmg : SealedDamages()) {
    SetUp();
    DamageFile(Manifest(2), dmg);
    RunResult l = RunMailvault({"snapshots", "--repo", repo(), "--json"});
    ASSERT_TRUE(l.exit_code == 0 || l.exit_code == 3) << dmg.name << l.err;
    auto arr = Json(l);
    std::set<std::string> ok = ListedIds(arr, false);
    EXPECT_TRUE(ok.count(ids_[0]) && ok.count(ids_[1])) << dmg.name << arr.dump(1);
    if (!ok.count(ids_[2])) {  // the header does not read: listed as damaged, exit 3
      EXPECT_EQ(ListedIds(arr, true), std::set<std::string>{ids_[2]}) << dmg.name << arr.dump(1);
      EXPECT_EQ(l.exit_code, 3) << dmg.name;
      EXPECT_NE(l.err.find(Manifest(2)), std::string::npos) << dmg.name << l.err;
      RunResult t = RunMailvault({"snapshots", "--repo", repo()});
      EXPECT_NE(t.out.find("DAMAGED"), std::string::npos) << dmg.name << t.out;
      ExpectRestores("latest", 1, dmg.name);  // latest = the newest readable
    }
    ExpectRestores(ids_[1], 1, dmg.name);
    ExpectRestores(ids_[0], 0, dmg.name);
    // The damaged snapshot itself: fails naming its file and `check`.
    TempDir out("mvout");
    RunResult r =
        RunMailvault({"restore", "--repo", repo(), "--snapshot", ids_[2], "--target", out.path()});
    EXPECT_EQ(r.exit_code, 1) << dmg.name << r.err;
    EXPECT_NE(r.err.find(Manifest(2)), std::string::npos) << dmg.name << r.err;
    EXPECT_NE(r.err.find("mailvault check"), std::string::npos) << dmg.name << r.err;
    RunResult v = RunMailvault(
        {"verify", "--repo", repo(), "--snapshot", ids_[1], "--against", "snapshot", "--json"});
    EXPECT_EQ(v.exit_code, 0) << dmg.name << v.out << v.err;
    // A backup picks the newest readable parent and commits.
    RunResult b = RunMailvault(
        {"backup", "--repo", repo(), "--json", "--source", "mail=" + vol_->path() + "/mail"});
    ASSERT_EQ(b.exit_code, 0) << dmg.name << b.out << b.err;
    EXPECT_EQ(Json(b)["parent"], ids_[1]) << dmg.name << b.out;
    EXPECT_LT(Json(b)["files_read"].get<int>(), 5)
        << dmg.name << ": the parent's stat shortcut was used";
    ExpectRestores(Json(b)["snapshot"].get<std::string>(), 2, dmg.name);
  }
}

TEST_F(RepoDamage, DamagedOldestManifestLeavesTheOthersListedAndRestorable) {
  for (const auto& dmg : SealedDamages()) {
    SetUp();
    DamageFile(Manifest(0), dmg);
    auto arr = Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
    std::set<std::string> ok = ListedIds(arr, false);
    EXPECT_TRUE(ok.count(ids_[1]) && ok.count(ids_[2])) << dmg.name << arr.dump(1);
    ExpectRestores(ids_[2], 2, dmg.name);
    ExpectRestores("latest", 2, dmg.name);
    RunResult b = RunMailvault(
        {"backup", "--repo", repo(), "--json", "--source", "mail=" + vol_->path() + "/mail"});
    EXPECT_EQ(b.exit_code, 0) << dmg.name << b.out << b.err;
  }
}

TEST_F(RepoDamage, DamagedIndexFileIsSkippedWithOneWarningAndEverySnapshotStillRestores) {
  for (const auto& dmg : SealedDamages()) {
    SetUp();
    DamageFile(IndexFile(0), dmg);  // names the packs every snapshot uses
    TempDir out("mvout");
    RunResult r =
        RunMailvault({"restore", "--repo", repo(), "--snapshot", ids_[2], "--target", out.path()});
    EXPECT_EQ(r.exit_code, 0) << dmg.name << r.out << r.err;
    EXPECT_NE(r.err.find(IndexFile(0)), std::string::npos) << dmg.name << r.err;
    EXPECT_NE(r.err.find("mailvault repair index"), std::string::npos) << dmg.name << r.err;
    ExpectRestores(ids_[0], 0, dmg.name);
    RunResult v = RunMailvault(
        {"verify", "--repo", repo(), "--snapshot", ids_[1], "--against", "snapshot", "--json"});
    EXPECT_EQ(v.exit_code, 0) << dmg.name << v.out << v.err;
    // The next backup adopts the packs the damaged file named.
    RunResult b = RunMailvault(
        {"backup", "--repo", repo(), "--json", "--source", "mail=" + vol_->path() + "/mail"});
    ASSERT_EQ(b.exit_code, 0) << dmg.name << b.out << b.err;
    std::string notes = Json(b)["notes"].dump();
    EXPECT_NE(notes.find("adopted"), std::string::npos) << dmg.name << notes;
    EXPECT_NE(notes.find(IndexFile(0)), std::string::npos) << dmg.name << notes;
    // repair index replaces it; afterwards the repository checks clean.
    RunResult rep = RunMailvault({"repair", "index", "--repo", repo(), "--json"});
    ASSERT_EQ(rep.exit_code, 0) << dmg.name << rep.out << rep.err;
    EXPECT_FALSE(stdfs::exists(IndexFile(0))) << dmg.name;
    RunResult c = RunMailvault({"check", "--repo", repo(), "--read-data"});
    EXPECT_EQ(c.exit_code, 0) << dmg.name << c.out << c.err;
    ExpectRestores("latest", 2, dmg.name);
  }
}

TEST_F(RepoDamage, RepairIndexRebuildsALostIndexFromThePacks) {
  RunResult dry = RunMailvault({"repair", "index", "--repo", repo(), "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  EXPECT_EQ(Names(repo() + "/index").size(), 3u) << "dry run changes nothing";
  EXPECT_EQ(Json(dry)["would_remove"].size(), 3u) << dry.out;
  for (const auto& n : Names(repo() + "/index")) stdfs::remove(repo() + "/index/" + n);
  RunResult rep = RunMailvault({"repair", "index", "--repo", repo()});
  ASSERT_EQ(rep.exit_code, 0) << rep.out << rep.err;
  EXPECT_NE(rep.out.find("index rebuilt"), std::string::npos) << rep.out;
  EXPECT_EQ(Names(repo() + "/index").size(), 1u);
  ExpectRestores(ids_[0], 0, "index rebuilt");
  ExpectRestores(ids_[2], 2, "index rebuilt");
  RunResult c = RunMailvault({"check", "--repo", repo(), "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
}

TEST_F(RepoDamage, RepairIndexKeepsTheEntriesOfADamagedPackAndListsIt) {
  std::string pack;
  for (const auto& e : stdfs::recursive_directory_iterator(repo() + "/packs"))
    if (e.is_regular_file() && (pack.empty() || e.file_size() > stdfs::file_size(pack)))
      pack = e.path().string();
  std::string d = ReadFile(pack);
  d[d.size() / 2] ^= 0x20;
  WriteFile(pack, d, 0600);
  RunResult rep = RunMailvault({"repair", "index", "--repo", repo(), "--json"});
  EXPECT_EQ(rep.exit_code, 3) << rep.out << rep.err;
  auto j = Json(rep);
  ASSERT_EQ(j["bad_packs"].size(), 1u) << rep.out;
  EXPECT_EQ(j["bad_packs"][0]["path"], pack);
  EXPECT_EQ(j["kept_from_old_index"], nlohmann::json::array({pack})) << rep.out;
  // The pack is still indexed, so `check` names it (and what it affects) rather than losing it.
  RunResult c = RunMailvault({"check", "--repo", repo(), "--json"});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.out.find(pack), std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("blob-not-indexed"), std::string::npos) << c.out;
}

TEST_F(RepoDamage, GarbageUnderPacksIsNeverAdoptedAndIsLeftInPlace) {
  std::string garbage = repo() + "/packs/ab/ab0123456789abcdef0123456789abcd.tar.zst";
  WriteFile(garbage, "this is not a pack\n", 0600);
  RunResult b = RunMailvault(
      {"backup", "--repo", repo(), "--json", "--source", "mail=" + vol_->path() + "/mail"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  std::string notes = Json(b)["notes"].dump();
  EXPECT_EQ(notes.find("adopted 1"), std::string::npos) << notes;
  EXPECT_NE(notes.find(garbage), std::string::npos) << notes;
  EXPECT_NE(notes.find("not a valid pack"), std::string::npos) << notes;
  EXPECT_TRUE(stdfs::exists(garbage));
  // `check` reports it as an error, not as a pack the next backup adopts.
  RunResult c = RunMailvault({"check", "--repo", repo(), "--json"});
  EXPECT_EQ(c.exit_code, 1) << c.out;
  bool named = false;
  auto cj = Json(c);
  for (const auto& p : cj["problems"])
    if (p["where"] == garbage) {
      named = true;
      EXPECT_FALSE(p["warning"].get<bool>()) << p.dump();
      EXPECT_EQ(p["message"].get<std::string>().find("adopts"), std::string::npos) << p.dump();
    }
  EXPECT_TRUE(named) << c.out;
}

TEST_F(RepoDamage, KeyOfAnotherRepositoryIsNamedAsSuch) {
  TempDir other("mvother");
  ASSERT_EQ(RunMailvault({"init", "--repo", other / "r"}).exit_code, 0);
  // A fresh repository stands in for this one (the golden one is format 1 with a key_id too).
  TempDir mine("mvmine");
  ASSERT_EQ(RunMailvault({"init", "--repo", mine / "r"}).exit_code, 0);
  stdfs::copy_file(other / "r/keys/default", mine / "r/keys/default",
                   stdfs::copy_options::overwrite_existing);
  for (const auto& verb : {"snapshots", "check"}) {
    RunResult r = RunMailvault({verb, "--repo", mine / "r"});
    EXPECT_EQ(r.exit_code, 1) << verb;
    EXPECT_NE(r.err.find("keys/default does not belong to this repository"), std::string::npos)
        << verb << r.err;
  }
}

TEST_F(RepoDamage, CorruptKeyFileIsNamedNotTheConfig) {
  WriteFile(repo() + "/keys/default", "{\"kdf\":\"none\", \"secret\": ", 0600);
  RunResult r = RunMailvault({"snapshots", "--repo", repo()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("keys/default"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("config"), std::string::npos) << r.err;
  stdfs::remove(repo() + "/keys/default");
  r = RunMailvault({"snapshots", "--repo", repo()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("keys/default"), std::string::npos) << r.err;
}

TEST(RepoFormatV1, RepositoryWithoutKeyIdStillOpens) {
  TempDir t("mvv1");
  ASSERT_EQ(Shell(std::string("cp -a '") + MAILVAULT_SOURCE_DIR + "/tests/data/repo-v1' '" +
                  t.path() + "/r'")
                .exit_code,
            0);
  RunResult r = RunMailvault({"snapshots", "--repo", t / "r", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r).size(), 2u);
}

// Twenty processes race on one stale lock (its pid is gone); each that gets the lock records
// itself in a shared file for a moment. At no time may two hold it.
TEST(RepoLockRace, TwentyProcessesOnOneStaleLockNeverHoldItTogether) {
  TempDir t("mvlock");
  std::string repo = t.path(), log = t / "holders";
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  int total_holds = 0;
  for (int round = 0; round < 15; round++) {
    stdfs::create_directories(repo + "/locks");
    nlohmann::json stale = {
        {"host", host}, {"pid", dead}, {"purpose", "backup"}, {"started", "then"}};
    WriteFile(repo + "/locks/exclusive", stale.dump(), 0600);
    std::string go = t / ("go" + std::to_string(round));
    std::vector<pid_t> kids;
    for (int k = 0; k < 20; k++) {
      pid_t p = ::fork();
      if (p == 0) {
        while (!stdfs::exists(go)) ::usleep(200);
        auto lock = storage::RepoLock::AcquireExclusive(repo, "race");
        if (!lock.ok()) ::_exit(lock.status().code() == Code::kBusy ? 3 : 4);
        auto held = std::move(lock).value();
        FILE* f = std::fopen(log.c_str(), "a");
        std::fprintf(f, "+%d\n", ::getpid());
        std::fflush(f);
        ::usleep(20000);
        std::fprintf(f, "-%d\n", ::getpid());
        std::fclose(f);
        held.reset();
        ::_exit(0);
      }
      kids.push_back(p);
    }
    WriteFile(go, "");
    for (pid_t p : kids) {
      int st = 0;
      ::waitpid(p, &st, 0);
      EXPECT_TRUE(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3))
          << "status " << st;
    }
  }
  std::ifstream in(log);
  std::string line, holder;
  while (std::getline(in, line)) {
    if (line[0] == '+') {
      EXPECT_EQ(holder, "") << "pid " << line.substr(1) << " took the lock while " << holder
                            << " held it";
      holder = line.substr(1);
      total_holds++;
    } else {
      EXPECT_EQ(holder, line.substr(1));
      holder = "";
    }
  }
  EXPECT_GE(total_holds, 15) << "every round someone takes the stale lock over";
}

}  // namespace
}  // namespace mv::testing
