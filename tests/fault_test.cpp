// Fault tests: each seeded fault is detected and named by `check` and/or
// `verify`, and a clean repository raises no alarm at all. Real binary, real packs, real SQLite.
#include <sys/stat.h>

#include <fstream>

#include "storage/fs.h"
#include "storage/index.h"
#include "storage/pack.h"
#include "verify_fixture.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class Fault : public VerifyFixture {
 protected:
  // The kinds of the check problems (errors only).
  std::set<std::string> CheckKinds(const nlohmann::json& j) {
    std::set<std::string> k;
    for (const auto& p : j["problems"])
      if (!p["warning"].get<bool>()) k.insert(p["kind"].get<std::string>());
    return k;
  }
  // True when some check problem lists `path` among the files it affects.
  bool Affects(const nlohmann::json& j, const std::string& path) {
    for (const auto& p : j["problems"])
      for (const auto& a : p["affected"])
        if (a["path"] == path) return true;
    return false;
  }
  bool Lost(const nlohmann::json& v, const std::string& unique) {
    for (const auto& m : v["messages_snapshot_vs_restored"]["lost"])
      if (m["unique"] == unique) return true;
    for (const auto& m : v["messages_snapshot_vs_restored"]["changed"])
      if (m["unique"] == unique) return true;
    return false;
  }
};

TEST_F(Fault, CleanRepositoryRaisesNoAlarm) {
  RunResult c = Check({"--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  auto cj = ParseJson(c);
  EXPECT_EQ(cj["problems"].size(), 0u) << cj.dump(1);
  EXPECT_GT(cj["blobs_hashed"].get<int>(), 48);
  RunResult v = Verify();
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  auto vj = ParseJson(v);
  EXPECT_TRUE(vj["ok"].get<bool>());
  EXPECT_EQ(vj["errors"].size(), 0u) << vj["errors"].dump();
  EXPECT_EQ(vj["messages"], 48);
  EXPECT_EQ(vj["lost_messages"], 0);
  EXPECT_EQ(vj["damaged_files"].size(), 0u);
  for (const auto& l : vj["live"]) {
    EXPECT_EQ(l["arrived_since_count"], 0) << l.dump();
    EXPECT_EQ(l["deleted_since_count"], 0) << l.dump();
    EXPECT_EQ(l["census"].size(), 0u) << l.dump();
  }
  ASSERT_EQ(vj["databases"].size(), 1u);
  EXPECT_TRUE(vj["databases"][0]["integrity_ok"].get<bool>());
  EXPECT_TRUE(vj["databases"][0]["vs_live"]["identical"].get<bool>());
}

TEST_F(Fault, MessageBlobDroppedFromPackIsNamedByCheckAndLostByVerify) {
  auto r = OpenRepo();
  auto msg = FirstMessage(Latest(*r));
  RewritePack(PackOf(*r, msg.blobs[0]), [&](const std::string& dir) {
    ASSERT_TRUE(stdfs::remove(dir + "/" + msg.blobs[0].Hex()));
  });
  RunResult c = Check();
  EXPECT_EQ(c.exit_code, 1);
  auto cj = ParseJson(c);
  EXPECT_TRUE(CheckKinds(cj).count("pack-damaged") ||
              CheckKinds(cj).count("blob-missing-from-pack"))
      << cj.dump(1);
  EXPECT_TRUE(Affects(cj, msg.path)) << cj.dump(1);
  RunResult v = Verify();
  EXPECT_EQ(v.exit_code, 1);
  auto vj = ParseJson(v);
  EXPECT_TRUE(Lost(vj, Unique(msg.path))) << vj["messages_snapshot_vs_restored"].dump(1);
  EXPECT_EQ(vj["lost_messages"], 1);
}

TEST_F(Fault, TruncatedMessageIsDetectedByBlobHashAndNamed) {
  auto r = OpenRepo();
  auto msg = FirstMessage(Latest(*r), 1);
  RewritePack(PackOf(*r, msg.blobs[0]), [&](const std::string& dir) {
    stdfs::resize_file(dir + "/" + msg.blobs[0].Hex(), msg.size / 2);
  });
  auto cj = ParseJson(Check({"--read-data"}));
  EXPECT_EQ(cj["ok"], false);
  EXPECT_TRUE(CheckKinds(cj).count("blob-hash")) << cj.dump(1);
  EXPECT_TRUE(Affects(cj, msg.path)) << cj.dump(1);
  RunResult v = Verify();
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_TRUE(Lost(ParseJson(v), Unique(msg.path))) << v.out;
}

TEST_F(Fault, OneByteFlippedInAPackIsDetected) {
  auto r = OpenRepo();
  auto msg = FirstMessage(Latest(*r));
  std::string pack = PackOf(*r, msg.blobs[0]);
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    std::streamoff mid = f.tellg() / 2;
    f.seekg(mid);
    char c;
    f.get(c);
    f.seekp(mid);
    f.put(static_cast<char>(c ^ 0x10));
  }
  RunResult c = Check();
  EXPECT_EQ(c.exit_code, 1);
  auto cj = ParseJson(c);
  EXPECT_TRUE(CheckKinds(cj).count("pack-damaged")) << cj.dump(1);
  std::string pack_id = stdfs::path(pack).filename().string().substr(0, 32);
  bool named = false;
  for (const auto& p : cj["problems"]) named |= p.value("pack", "") == pack_id;
  EXPECT_TRUE(named) << cj.dump(1);
  EXPECT_EQ(Verify().exit_code, 1);
}

TEST_F(Fault, DeletedPackIsNamedWithEverySnapshotFileItHeld) {
  Backup();  // a second snapshot sharing every message blob with the first
  auto r = OpenRepo();
  auto snaps = r->ListSnapshots().value();
  ASSERT_EQ(snaps.size(), 2u);
  auto msg = FirstMessage(Latest(*r));
  ASSERT_TRUE(stdfs::remove(PackOf(*r, msg.blobs[0])));
  auto cj = ParseJson(Check());
  EXPECT_EQ(CheckKinds(cj), std::set<std::string>{"pack-missing"}) << cj.dump(1);
  EXPECT_TRUE(Affects(cj, msg.path));
  std::set<std::string> in;
  for (const auto& a : cj["problems"][0]["affected"])
    if (a["path"] == msg.path) in.insert(a["snapshot"].get<std::string>());
  EXPECT_EQ(in, (std::set<std::string>{snaps[0].id, snaps[1].id}));
  auto vj = ParseJson(Verify());
  EXPECT_EQ(vj["ok"], false);
  EXPECT_TRUE(Lost(vj, Unique(msg.path)));
  bool other_named = false;
  for (const auto& d : vj["damaged_files"])
    if (d["path"] == msg.path)
      other_named = d["other_snapshots"] == nlohmann::json::array({snaps[0].id});
  EXPECT_TRUE(other_named) << vj["damaged_files"].dump(1);
}

TEST_F(Fault, IndexEntryPointingToTheWrongPackIsNamed) {
  // A second backup with one new message makes a second pack.
  WriteFile(vol_ / ("mail/" + users_[0] + "/cur/1800000000.M1P1.mailu-imap,S=9:2,S"), "new mail\n",
            0600);
  Backup();
  auto r = OpenRepo();
  auto msg = FirstMessage(Latest(*r));
  auto blobs = r->OpenBlobReader();
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  auto home = (*blobs)->Find(msg.blobs[0])->pack;
  std::vector<storage::PackInfo> packs;  // every index file's packs, as written
  for (const auto& n : stdfs::directory_iterator(repo() + "/index")) {
    auto part = storage::DecodeIndexFile(ReadFile(n.path()), n.path());
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    packs.insert(packs.end(), part->begin(), part->end());
  }
  ASSERT_GE(packs.size(), 2u);
  storage::PackInfo* from = nullptr;
  storage::PackInfo* to = nullptr;
  for (auto& p : packs) (p.pack_id == home ? from : to) = &p;
  auto it = std::find_if(from->entries.begin(), from->entries.end(),
                         [&](const auto& e) { return e.id == msg.blobs[0]; });
  to->entries.push_back(*it);
  from->entries.erase(it);
  for (const auto& n : stdfs::directory_iterator(repo() + "/index")) stdfs::remove(n.path());
  WriteFile(repo() + "/index/00crafted", storage::EncodeIndexFile(packs));
  auto cj = ParseJson(Check());
  EXPECT_TRUE(CheckKinds(cj).count("index-wrong-pack")) << cj.dump(1);
  EXPECT_TRUE(Affects(cj, msg.path));
  auto vj = ParseJson(Verify());
  EXPECT_EQ(vj["ok"], false);
  EXPECT_TRUE(Lost(vj, Unique(msg.path))) << vj.dump(1);
}

TEST_F(Fault, TruncatedManifestIsNamedAndFailsVerify) {
  Backup();  // two snapshots: the damaged one must not hide the other
  auto r = OpenRepo();
  std::string id = r->ResolveSnapshot("latest").value();
  std::string path = repo() + "/snapshots/" + id;
  stdfs::resize_file(path, stdfs::file_size(path) - 40);
  auto cj = ParseJson(Check());
  EXPECT_EQ(CheckKinds(cj), std::set<std::string>{"snapshot-damaged"}) << cj.dump(1);
  EXPECT_EQ(cj["problems"][0]["snapshot"], id);
  EXPECT_EQ(cj["snapshots"], 2);
  RunResult v = Verify({"--snapshot", id});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.err.find(id), std::string::npos) << v.err;
}

TEST_F(Fault, MaildirFolderRenamedInTheSnapshotDataFailsTheCensus) {
  auto r = OpenRepo();
  storage::Snapshot s = Latest(*r);
  std::string from = "mail/" + users_[1] + "/.Sent", to = "mail/" + users_[1] + "/.Sant";
  for (auto& f : s.files)
    if (f.path == from || f.path.rfind(from + "/", 0) == 0)
      f.path = to + f.path.substr(from.size());
  std::sort(s.files.begin(), s.files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  s.meta.id.clear();
  s.meta.time_ns += 1;
  ASSERT_TRUE(r->CommitSnapshot(s).ok());
  EXPECT_EQ(Check().exit_code, 0) << "the repository itself is sound";
  RunResult v = Verify({"--snapshot", s.meta.id});
  EXPECT_EQ(v.exit_code, 1);
  auto vj = ParseJson(v);
  std::set<std::string> folders;
  for (const auto& f : vj["census_recorded_vs_restored"])
    folders.insert(f["folder"].get<std::string>());
  EXPECT_EQ(folders, (std::set<std::string>{".Sent", ".Sant"})) << vj.dump(1);
  EXPECT_EQ(vj["census_recorded_vs_manifest"].size(), 2u);
}

TEST_F(Fault, UserRowMissingFromTheSnapshotsDatabaseCopyIsLoss) {
  auto r = OpenRepo();
  storage::Snapshot s = Latest(*r);
  // A consistent-looking snapshot whose database image lacks a user the live database still has.
  TempDir t("mvdb");
  stdfs::copy_file(vol_ / "data/main.db", t / "main.db");
  Sql(t / "main.db", "DELETE FROM user WHERE email='" + users_[1] + "'");
  std::string img = ReadFile(t / "main.db");
  storage::BlobId id = r->hasher().Hash(img.data(), img.size());
  auto w = storage::PackWriter::Create(r->TmpDir(), 3);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Add(id, img.data(), img.size()).ok());
  auto info = (*w)->Finish(r->backend());
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(r->WriteIndex({*info}).ok());
  for (auto& f : s.files)
    if (f.path == "data/main.db") f.blobs = {id}, f.content = id, f.size = img.size();
  s.meta.id.clear();
  s.meta.time_ns += 1;
  ASSERT_TRUE(r->CommitSnapshot(s).ok());
  RunResult v = Verify();
  EXPECT_EQ(v.exit_code, 1) << v.out;
  auto db = ParseJson(v)["databases"][0];
  EXPECT_TRUE(db["loss"].get<bool>()) << db.dump(1);
  EXPECT_TRUE(db["live_unchanged_since_snapshot"].get<bool>());
  bool named = false;
  for (const auto& tb : db["vs_live"]["tables"])
    if (tb["table"] == "user") named = tb["added"].dump().find(users_[1]) != std::string::npos;
  EXPECT_TRUE(named) << db.dump(1);
  EXPECT_EQ(db.dump().find("SHA512-CRYPT"), std::string::npos)
      << "password values must never be printed";
}

TEST_F(Fault, UserRowDeletedLiveAfterTheSnapshotIsDriftNotLoss) {
  Sql(vol_ / "data/main.db", "DELETE FROM user WHERE email='" + users_[0] + "'");
  RunResult v = Verify();
  EXPECT_EQ(v.exit_code, 0) << v.out;
  auto db = ParseJson(v)["databases"][0];
  EXPECT_FALSE(db["loss"].get<bool>());
  EXPECT_FALSE(db["live_unchanged_since_snapshot"].get<bool>());
  bool named = false;
  for (const auto& tb : db["vs_live"]["tables"])
    if (tb["table"] == "user")
      named = tb["removed_count"] == 1 && tb["removed"].dump().find(users_[0]) != std::string::npos;
  EXPECT_TRUE(named) << db.dump(1);
  // The human summary says it is drift.
  std::vector<std::string> args = {"verify", "--repo", repo(), "--scratch", scratch_.path()};
  for (auto& s : SourceArgs()) args.push_back(s);
  RunResult h = RunMailvault(args);
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("RESULT: OK"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("drift"), std::string::npos) << h.out;
}

TEST_F(Fault, MailDeliveredAfterTheSnapshotIsDriftNotLoss) {
  std::string name = "1800000001.M7P7.mailu-imap,S=9";
  WriteFile(vol_ / ("mail/" + users_[1] + "/new/" + name), "new mail\n", 0600);
  RunResult v = Verify();
  EXPECT_EQ(v.exit_code, 0) << v.out;
  auto vj = ParseJson(v);
  const nlohmann::json* mail = nullptr;
  for (const auto& l : vj["live"])
    if (l["source"] == "mail") mail = &l;
  ASSERT_NE(mail, nullptr);
  EXPECT_EQ((*mail)["arrived_since_count"], 1);
  EXPECT_EQ((*mail)["arrived_since"][0]["unique"], name);
  EXPECT_EQ((*mail)["arrived_since"][0]["mailbox"], users_[1]);
  EXPECT_EQ(vj["lost_messages"], 0);
}

}  // namespace
}  // namespace mv::testing
