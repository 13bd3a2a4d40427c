// Repositories on S3 through the real mailvault binary, against a real Ceph RGW on loopback
// (tests/rgw_fixture.h; not a mock: RGW checks every signature and payload hash). What an
// operator does: init, backup, snapshots, ls, restore bit-exact, a second backup that stores
// nothing new, check --read-data, forget --prune; with a write-only credential (a bucket policy
// that denies s3:DeleteObject) backup works and prune refuses; and the errors for a wrong secret,
// an unknown bucket, an unreachable endpoint and plain http to a remote host.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <filesystem>
#include <iostream>
#include <thread>

#include "storage/s3/backend.h"
#include "tests/child_process.h"
#include "tests/rgw_fixture.h"
#include "tests/test_util.h"

namespace mv::testing {
namespace {

class RgwRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_ = Rgw::Get();
    ASSERT_NE(rgw_, nullptr) << "RGW did not start; see " << (rgw_ ? rgw_->log : "its log");
    ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["AWS_ACCESS_KEY_ID"].c_str(), 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", (*rgw_)["AWS_SECRET_ACCESS_KEY"].c_str(), 1);
    ::setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    ::setenv("XDG_CACHE_HOME", (cache_ / "").c_str(), 1);
    // One bucket per test; the prefix has a space, '+', '=' and UTF-8 (each must be encoded
    // once in the path and the signature).
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    bucket_ = "mv-repo-" + std::string(info->name());
    for (auto& c : bucket_) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
    bucket_ = bucket_.substr(0, 60);  // S3 allows 63
    ASSERT_TRUE(Rgw::MakeBucket(bucket_));
    url_ = "s3:" + (*rgw_)["MV_S3_ENDPOINT"] + "/" + bucket_ + "/mail backups/ü+=x";
  }
  void TearDown() override {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    ::unsetenv("XDG_CACHE_HOME");
  }
  RunResult Mv(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--repo", url_});
    return RunMailvault(args);
  }

  // What an operator checks after trouble: check --read-data passes, and the latest snapshot
  // restores source `name` identical to vol_/`name`.
  void ExpectChecksAndRestores(const std::string& name) {
    auto check = Mv({"check", "--read-data"});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(DiffTrees(ListTree(vol_ / name), ListTree(out_ / name)), "");
  }
  // Runs mailvault `args` in the background and SIGKILLs it as soon as a pack has arrived in
  // the repository at url_ (listed directly); returns how many packs were there.
  // The repository at url_ as the bucket's owner sees it, past mailvault's commands.
  std::unique_ptr<storage::s3::S3Backend> Direct() {
    auto loc = storage::s3::ParseLocation(url_, true);
    EXPECT_TRUE(loc.ok());
    if (!loc.ok()) return nullptr;
    return std::make_unique<storage::s3::S3Backend>(
        *loc,
        storage::s3::Credentials{(*rgw_)["AWS_ACCESS_KEY_ID"], (*rgw_)["AWS_SECRET_ACCESS_KEY"]},
        "us-east-1", cache_ / "peek");
  }
  // The bytes of every pack in the repository at url_, listed directly (0 when it cannot be).
  uint64_t PackBytes() {
    auto direct = Direct();
    if (!direct) return 0;
    auto packs = direct->List("packs");
    EXPECT_TRUE(packs.ok()) << packs.status().ToString();
    uint64_t bytes = 0;
    if (packs.ok())
      for (const auto& p : *packs) bytes += p.size;
    return bytes;
  }
  size_t KillOnceAPackIsUploaded(const std::vector<std::string>& args) {
    auto peek = Direct();
    if (!peek) return 0;
    size_t packs = 0;
    BackgroundMailvault run(args);
    for (int i = 0; i < 600 && packs == 0 && !run.exited(); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto listed = peek->List("packs");
      if (listed.ok()) packs = listed->size();
    }
    EXPECT_TRUE(run.Kill()) << "it ended before a pack was uploaded";
    return packs;
  }

  // A no-op backup transfers only listings; damaged or deleted cache copies are read again.
  void NoOpAndCorruptCache(bool encrypted);

  const Rgw* rgw_ = nullptr;
  std::string bucket_, url_;
  TempDir vol_{"mvvol"}, out_{"mvout"}, cache_{"mvcache"};
};

TEST_F(RgwRepoTest, RoundTripDedupCheckAndPrune) {
  MakeMailVolume(vol_.path(),
                 {.users = 3, .messages_per_user = 30, .seed = 7, .big_attachment = true});
  auto init = Mv({"init", "--json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  // A second init finds the repository and refuses, changing nothing.
  auto again = Mv({"init"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already"), std::string::npos) << again.err;

  auto b1 = Mv({"backup", "--json", "--source", "mail=" + vol_ / "mail", "--source",
                "data=" + vol_ / "data", "--source", "dkim=" + vol_ / "dkim"});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  auto j1 = Json(b1);
  EXPECT_GT(j1["blobs_new"].get<int64_t>(), 0);
  // Nothing changed: the second backup stores no blob.
  auto b2 = Mv({"backup", "--json", "--source", "mail=" + vol_ / "mail", "--source",
                "data=" + vol_ / "data", "--source", "dkim=" + vol_ / "dkim"});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_EQ(Json(b2)["blobs_new"].get<int64_t>(), 0);
  EXPECT_EQ(Json(b2)["bytes_packed"].get<int64_t>(), 0);

  auto snaps = Mv({"snapshots", "--json"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_EQ(Json(snaps).size(), 2u);

  auto ls = Mv({"ls", "--snapshot", "latest"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("main.db"), std::string::npos) << ls.out.substr(0, 2000);

  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // tmp/ holds half-delivered mail, which is not backed up; the database is an online-backup
  // image: the same rows, not the same bytes.
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "dkim"), ListTree(out_ / "dkim")), "");
  auto dump = [](const std::string& db) { return Shell("sqlite3 '" + db + "' .dump").out; };
  EXPECT_FALSE(dump(vol_ / "data/main.db").empty());
  EXPECT_EQ(dump(vol_ / "data/main.db"), dump(out_ / "data/main.db"));

  auto check = Mv({"check", "--read-data", "--json"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // forget --prune removes the older snapshot; what is left restores and checks.
  auto forget = Mv({"forget", "--keep-last", "1", "--prune", "--json"});
  ASSERT_EQ(forget.exit_code, 0) << forget.out << forget.err;
  auto snaps2 = Mv({"snapshots", "--json"});
  EXPECT_EQ(Json(snaps2).size(), 1u);
  auto check2 = Mv({"check", "--read-data"});
  EXPECT_EQ(check2.exit_code, 0) << check2.out << check2.err;
}

// check lists every object once and names those that are not part of the format.
TEST_F(RgwRepoTest, CheckNamesObjectsThatAreNotPartOfTheFormat) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  WriteFile(vol_ / "data/a", "mail\n");
  ASSERT_EQ(Mv({"backup", "--source", "data=" + vol_ / "data"}).exit_code, 0);
  auto direct = Direct();
  ASSERT_NE(direct, nullptr);
  ASSERT_TRUE(direct->Put("stray/junk.txt", "junk").ok());
  ASSERT_TRUE(direct->Put("packs/zz/notapack", "junk").ok());
  auto c = Mv({"check", "--json"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  std::set<std::string> named;
  auto j = Json(c);
  for (const auto& p : j["problems"]) {
    EXPECT_EQ(p["kind"], "foreign-object") << p.dump();
    named.insert(p["where"].get<std::string>());
  }
  EXPECT_EQ(named, (std::set<std::string>{url_ + "/stray/junk.txt", url_ + "/packs/zz/notapack"}))
      << c.out;
}

TEST_F(RgwRepoTest, WriteOnlyCredentialBacksUpButCannotPrune) {
  // The owner lets the agent user get, put and list, and denies it every delete.
  std::string user = "arn:aws:iam:::user/" + (*rgw_)["MV_S3_AGENT_USER"];
  std::string policy = R"({"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Principal":{"AWS":[")" +
                       user + R"("]},
     "Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],
     "Resource":["arn:aws:s3:::)" +
                       bucket_ + R"(","arn:aws:s3:::)" + bucket_ + R"(/*"]},
    {"Effect":"Deny","Principal":{"AWS":[")" +
                       user + R"("]},
     "Action":["s3:DeleteObject"],"Resource":["arn:aws:s3:::)" +
                       bucket_ + R"(/*"]}]})";
  ASSERT_TRUE(Rgw::PutBucketPolicy(bucket_, policy));
  ASSERT_EQ(Mv({"init"}).exit_code, 0);  // as the owner
  ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["MV_S3_AGENT_ACCESS_KEY_ID"].c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", (*rgw_)["MV_S3_AGENT_SECRET_ACCESS_KEY"].c_str(), 1);
  WriteFile(vol_ / "data/a", "first\n");
  auto b1 = Mv({"backup", "--json", "--source", "data=" + vol_ / "data"});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  WriteFile(vol_ / "data/a", "second\n");
  auto b2 = Mv({"backup", "--json", "--source", "data=" + vol_ / "data"});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_EQ(Mv({"check", "--read-data"}).exit_code, 0);
  // verify writes its verification record: a put, allowed.
  auto v = Mv({"verify", "--snapshot", "latest", "--json"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  // copy into the bucket (another prefix, made by the owner) works with the same credential.
  TempDir local("mvlocal");
  std::string src = local / "r";
  ASSERT_EQ(RunMailvault({"init", "--repo", src}).exit_code, 0);
  ASSERT_EQ(RunMailvault({"backup", "--repo", src, "--source", "data=" + vol_ / "data"}).exit_code,
            0);
  std::string copy_url = url_ + "-copy";
  ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["AWS_ACCESS_KEY_ID"].c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", (*rgw_)["AWS_SECRET_ACCESS_KEY"].c_str(), 1);
  ASSERT_EQ(RunMailvault({"init", "--repo", copy_url, "--copy-key-from", src}).exit_code, 0);
  ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["MV_S3_AGENT_ACCESS_KEY_ID"].c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", (*rgw_)["MV_S3_AGENT_SECRET_ACCESS_KEY"].c_str(), 1);
  auto c = RunMailvault({"copy", "--from", src, "--to", copy_url, "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_EQ(Json(c)["copied"].size(), 1u);
  EXPECT_EQ(RunMailvault({"check", "--repo", copy_url, "--read-data"}).exit_code, 0);
  // prune needs delete: it refuses, says which permission, and no snapshot is lost.
  auto prune = Mv({"forget", "--keep-last", "1", "--prune"});
  EXPECT_EQ(prune.exit_code, 1) << prune.out << prune.err;
  EXPECT_NE(prune.err.find("DeleteObject"), std::string::npos) << prune.err;
  EXPECT_EQ(prune.err.find((*rgw_)["MV_S3_AGENT_SECRET_ACCESS_KEY"]), std::string::npos);
  auto snaps = Mv({"snapshots", "--json"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_EQ(Json(snaps).size(), 2u);
  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(out_ / "data/a"), "second\n");
}

TEST_F(RgwRepoTest, ClearErrorsNameTheEndpointAndTheFix) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  std::string secret = (*rgw_)["AWS_SECRET_ACCESS_KEY"];
  // A wrong secret: exit 1, says what to check, never prints the secret.
  ::setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-0123456789", 1);
  auto wrong = Mv({"snapshots"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("credentials"), std::string::npos) << wrong.err;
  EXPECT_NE(wrong.err.find(bucket_), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("wrong-secret-value"), std::string::npos) << wrong.err;
  ::setenv("AWS_SECRET_ACCESS_KEY", secret.c_str(), 1);
  // No credentials at all: says what to set.
  ::unsetenv("AWS_ACCESS_KEY_ID");
  auto none = Mv({"snapshots"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("AWS_ACCESS_KEY_ID"), std::string::npos) << none.err;
  ::setenv("AWS_ACCESS_KEY_ID", (*rgw_)["AWS_ACCESS_KEY_ID"].c_str(), 1);
  // An unknown bucket.
  auto nob = RunMailvault(
      {"snapshots", "--repo", "s3:" + (*rgw_)["MV_S3_ENDPOINT"] + "/no-such-bucket-here"});
  EXPECT_EQ(nob.exit_code, 1);
  EXPECT_NE(nob.err.find("no-such-bucket-here"), std::string::npos) << nob.err;
  EXPECT_NE(nob.err.find("NoSuchBucket"), std::string::npos) << nob.err;
  // Plain http to a host that is not loopback is refused before any request.
  auto http = RunMailvault({"snapshots", "--repo", "s3:http://s3.example.net/b3t/x"});
  EXPECT_NE(http.exit_code, 0);
  EXPECT_NE(http.err.find("--s3-insecure-http"), std::string::npos) << http.err;
}

// Random bytes (incompressible, so packs fill): `n` files of `size` bytes under `dir`.
void WriteRandomFiles(const std::string& dir, int n, size_t size, uint32_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < n; i++) {
    std::string data(size, '\0');
    for (auto& c : data) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c = static_cast<char>(x);
    }
    WriteFile(dir + "/f" + std::to_string(i), data);
  }
}

// The fault-injecting proxy (tests/s3/fault_proxy.py) between mailvault and RGW: every 2nd
// request is answered 503 SlowDown, cut off mid-upload (a reset), stalled, or answered 500, in
// turn (its retry goes through). The backup completes, counting its retries, and a direct check
// proves nothing is lost.
TEST_F(RgwRepoTest, ABackupThroughResetsStallsAndSlowDownsCompletesAndChecks) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  WriteRandomFiles(vol_ / "data", 8, 5u << 20, 3);  // 40 MiB: more than one pack
  MakeMailVolume(vol_ / "m", {.users = 2, .messages_per_user = 20, .seed = 9});
  std::string upstream = (*rgw_)["MV_S3_ENDPOINT"].substr(std::string("http://").size());
  std::string stats = cache_ / "proxy.json";
  TempDir pd("mvproxy");
  std::string port_file = pd / "port";
  std::string cmd = "python3 " + std::string(MAILVAULT_SOURCE_DIR) +
                    "/tests/s3/fault_proxy.py --upstream " + upstream +
                    " --every 2 --stall 1 --stats " + stats + " >" + port_file + " 2>&1 & echo $!";
  auto started = Shell(cmd);
  int proxy_pid = std::atoi(started.out.c_str());
  ASSERT_GT(proxy_pid, 0);
  std::string port;
  for (int i = 0; i < 100 && port.empty(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream f(port_file);
    std::getline(f, port);
  }
  ASSERT_FALSE(port.empty());
  std::string direct = url_;
  url_ = "s3:http://127.0.0.1:" + port + "/" + bucket_ + "/mail backups/ü+=x";
  auto b = Mv({"backup", "--json", "--source", "data=" + vol_ / "data", "--source",
               "mail=" + vol_ / "m/mail"});
  ::kill(proxy_pid, SIGTERM);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  auto j = Json(b);
  ASSERT_TRUE(j.contains("storage")) << b.out;
  EXPECT_GT(j["storage"]["retries"].get<int64_t>(), 0) << b.out;
  EXPECT_GE(j["storage"]["bytes_up"].get<int64_t>(), int64_t{40} << 20);
  std::ifstream sf(stats);
  nlohmann::json injected = nlohmann::json::parse(sf, nullptr, false);
  ASSERT_TRUE(injected.is_object()) << "the proxy wrote no stats";
  for (const char* f : {"slowdown", "reset", "stall", "error500"})
    EXPECT_GT(injected["injected"][f].get<int>(), 0) << f << ": " << injected.dump();
  url_ = direct;
  ExpectChecksAndRestores("data");
}

// SIGKILL in the middle of an S3 backup: the lock of the killed process (same host, pid gone)
// is taken over, the packs it uploaded are adopted, not uploaded again, and check passes.
TEST_F(RgwRepoTest, ABackupKilledMidUploadIsResumedWithoutUploadingAgain) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  WriteRandomFiles(vol_ / "data", 24, 6u << 20, 5);  // 144 MiB: several packs
  size_t packs_before_kill =
      KillOnceAPackIsUploaded({"backup", "--repo", url_, "--source", "data=" + vol_ / "data"});
  ASSERT_GT(packs_before_kill, 0u);
  auto snaps = Mv({"snapshots", "--json"});
  EXPECT_EQ(Json(snaps).size(), 0u);  // nothing was committed
  auto b = Mv({"backup", "--json", "--source", "data=" + vol_ / "data"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  auto j = Json(b);
  std::string notes = j["notes"].dump();
  EXPECT_NE(notes.find("stale lock"), std::string::npos) << notes;
  // What the killed run uploaded is reused: less than the whole goes up again.
  EXPECT_LT(j["storage"]["bytes_up"].get<int64_t>(), int64_t{144} << 20) << b.out;
  ExpectChecksAndRestores("data");
}

// The cache (storage/cached_backend.h): a backup in which nothing changed downloads no index
// file, manifest or tree pack, only listings; a cache that is damaged or deleted is rebuilt
// from S3 and never trusted.
// The same for an encrypted repository (docs/ENCRYPTION.md): the cache holds age files, which
// the decrypting backend authenticates; a damaged copy is evicted and read again from S3.
TEST_F(RgwRepoTest, ANoOpBackupTransfersOnlyListingsAndACorruptCacheIsRebuilt) {
  NoOpAndCorruptCache(false);
}
TEST_F(RgwRepoTest, ANoOpBackupOfAnEncryptedRepositoryIsServedFromTheCacheAndACorruptOneRebuilt) {
  WriteFile(vol_ / "noop.pass", "noop passphrase\n");
  ::setenv("MAILVAULT_PASSWORD_FILE", (vol_ / "noop.pass").c_str(), 1);
  NoOpAndCorruptCache(true);
  ::unsetenv("MAILVAULT_PASSWORD_FILE");
}

void RgwRepoTest::NoOpAndCorruptCache(bool encrypted) {
  ASSERT_EQ(Mv(encrypted ? std::vector<std::string>{"init", "--encrypt"}
                         : std::vector<std::string>{"init"})
                .exit_code,
            0);
  MakeMailVolume(vol_.path(), {.users = 4, .messages_per_user = 40, .seed = 11});
  std::vector<std::string> backup = {
      "backup", "--json", "--source", "mail=" + vol_ / "mail", "--source", "data=" + vol_ / "data"};
  auto b1 = Mv(backup);
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  auto first = Json(b1)["storage"];
  // The first backup of a new cache fills it as it uploads.
  auto b2 = Mv(backup);
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  auto j2 = Json(b2);
  EXPECT_EQ(j2["blobs_new"].get<int64_t>(), 0);
  auto noop = j2["storage"];
  // Up: the manifest (and the lock); down: listings and the lock's HEAD. 64 KiB is far more
  // than those, far less than one manifest and tree pack per backup.
  EXPECT_GT(noop["cache_hits"].get<int64_t>(), 0) << noop.dump();
  EXPECT_LT(noop["bytes_down"].get<int64_t>(), 64 << 10) << noop.dump();
  EXPECT_LT(noop["requests"].get<int64_t>(), 20) << noop.dump();

  // Damage every cached file: each is caught by its hash, read again from S3 and replaced.
  std::string objects;
  for (const auto& [path, kind] : ListTree(cache_.path()))
    if (path.find("/objects/") != std::string::npos && kind[0] == 'f') {
      std::string full = cache_ / path;
      std::string data = ReadFile(full);
      data[data.size() / 2] ^= 0x40;
      WriteFile(full, data);
      objects += path + "\n";
    }
  ASSERT_FALSE(objects.empty()) << "nothing was cached under " << cache_.path();
  auto b3 = Mv(backup);
  ASSERT_EQ(b3.exit_code, 0) << b3.out << b3.err;
  auto j3 = Json(b3);
  EXPECT_EQ(j3["blobs_new"].get<int64_t>(), 0);
  // No damaged copy was used: fewer hits than the no-op had (what hits remain are files this
  // run wrote itself, such as its own new manifest, read back), and more downloaded.
  // (An encrypted copy is counted as a hit before it fails to authenticate above the cache.)
  if (!encrypted) {
    EXPECT_LT(j3["storage"]["cache_hits"].get<int64_t>(), noop["cache_hits"].get<int64_t>())
        << j3["storage"].dump() << " vs " << noop.dump();
  }
  EXPECT_GT(j3["storage"]["bytes_down"].get<int64_t>(), noop["bytes_down"].get<int64_t>());
  // Rebuilt: the next no-op is served from the cache again.
  auto b4 = Mv(backup);
  ASSERT_EQ(b4.exit_code, 0) << b4.err;
  EXPECT_GT(Json(b4)["storage"]["cache_hits"].get<int64_t>(), 0);
  EXPECT_LT(Json(b4)["storage"]["bytes_down"].get<int64_t>(), 64 << 10);

  // A deleted cache: the same.
  ASSERT_EQ(Shell("rm -rf '" + cache_.path() + "'/*").exit_code, 0);
  auto b5 = Mv(backup);
  ASSERT_EQ(b5.exit_code, 0) << b5.err;
  EXPECT_EQ(Json(b5)["blobs_new"].get<int64_t>(), 0);
  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto check = Mv({"check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// `mailvault copy` from a local repository to S3 (the off-site copy): cut off by SIGKILL while
// it uploads, the next copy takes over the dead process's lock, sends only what did not arrive,
// and the copy restores exactly as the source does and passes check --read-data. A second copy
// sends nothing; with a day of new data it sends that day's packs only.
TEST_F(RgwRepoTest, ACopyToS3KilledMidUploadResumesAndTheCopyRestoresAndChecks) {
  TempDir local("mvlocal");
  std::string src = local / "r";
  ASSERT_EQ(RunMailvault({"init", "--repo", src}).exit_code, 0);
  WriteRandomFiles(vol_ / "data", 24, 6u << 20, 7);  // 144 MiB: several packs
  MakeMailVolume(vol_ / "m", {.users = 2, .messages_per_user = 20, .seed = 12});
  auto b = RunMailvault({"backup", "--repo", src, "--json", "--source", "data=" + vol_ / "data",
                         "--source", "mail=" + vol_ / "m/mail"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto init = Mv({"init", "--copy-key-from", src});
  ASSERT_EQ(init.exit_code, 0) << init.err;

  size_t packs_before_kill = KillOnceAPackIsUploaded({"copy", "--from", src, "--to", url_});
  ASSERT_GT(packs_before_kill, 0u);
  EXPECT_EQ(Json(Mv({"snapshots", "--json"})).size(), 0u);  // nothing committed

  auto c = RunMailvault({"copy", "--from", src, "--to", url_, "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  auto j = Json(c);
  EXPECT_EQ(j["copied"].size(), 1u);
  EXPECT_NE(j["notes"].dump().find("stale lock"), std::string::npos) << c.out;
  EXPECT_GT(j["packs_resumed"].get<int64_t>(), 0) << c.out;
  // What the killed run uploaded is not sent again: less than all of the source's packs.
  EXPECT_LT(j["storage"]["bytes_up"].get<uint64_t>(), DirBytes(src + "/packs")) << c.out;

  // check --read-data reads every pack from S3 (never from the cache), and says so.
  auto check = Mv({"check", "--read-data", "--json"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_GE(Json(check)["storage"]["bytes_down"].get<uint64_t>(), DirBytes(src + "/packs"));
  EXPECT_EQ(Json(check)["storage"]["cache_hits"].get<uint64_t>(), 0u);
  TempDir a("mvsrc");
  ASSERT_EQ(RunMailvault({"restore", "--repo", src, "--snapshot", "latest", "--target", a.path()})
                .exit_code,
            0);
  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(ListTree(a.path()), ListTree(out_.path())), "");

  auto again = RunMailvault({"copy", "--from", src, "--to", url_, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json(again)["packs_sent"].get<int64_t>(), 0);
  EXPECT_LT(Json(again)["storage"]["bytes_up"].get<int64_t>(), 4096);  // the lock only
  WriteRandomFiles(vol_ / "data2", 1, 1u << 20, 8);
  ASSERT_EQ(RunMailvault({"backup", "--repo", src, "--source", "data=" + vol_ / "data", "--source",
                          "mail=" + vol_ / "m/mail", "--source", "more=" + vol_ / "data2"})
                .exit_code,
            0);
  auto day = RunMailvault({"copy", "--from", src, "--to", url_, "--json"});
  ASSERT_EQ(day.exit_code, 0) << day.err;
  EXPECT_EQ(Json(day)["copied"].size(), 1u);
  EXPECT_LT(Json(day)["bytes_sent"].get<int64_t>(), int64_t{4} << 20) << day.out;
}

// The nightly report against S3 does not download the repository: it checks structure and
// tonight's share of packs, says how much it read, and marks the stack "checked, not restored"
// without a verify_ok sample (an absent proof is not a failed one). --full-verify restores and
// verifies, reading more.
TEST_F(RgwRepoTest, TheNightlyReportOnS3ReadsAShareNotTheRepositoryAndFullVerifyProves) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  WriteRandomFiles(vol_ / "data", 12, 6u << 20, 21);  // 72 MiB: a few packs
  MakeMailVolume(vol_ / "m", {.users = 2, .messages_per_user = 20, .seed = 22});
  ASSERT_EQ(Mv({"backup", "--tag", "stack=mailu", "--source", "data=" + vol_ / "data", "--source",
                "mail=" + vol_ / "m/mail"})
                .exit_code,
            0);
  TempDir rep("mvreport");
  // Tonight's share is 1/366 of the packs (which ones depends on the pack names, and those on
  // the repository's random key): usually none of the data packs.
  auto r = Mv({"report", "--out", rep.path(), "--rotate-nights", "366"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(ReadFile(rep / "mailvault-report.json"));
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_FALSE(j["groups"][0]["verified"].get<bool>());
  EXPECT_NE(j["groups"][0]["verify_skipped"].get<std::string>(), "");
  EXPECT_FALSE(j["damage"].get<bool>());
  int64_t light = j["downloaded_bytes"].get<int64_t>();
  EXPECT_LT(light, int64_t{72} << 20) << "the report downloaded the repository";
  std::string prom = ReadFile(rep / "mailvault.prom");
  EXPECT_EQ(prom.find("mailvault_verify_ok{"), std::string::npos) << prom;
  EXPECT_NE(prom.find("mailvault_report_downloaded_bytes " + std::to_string(light)),
            std::string::npos)
      << prom;
  EXPECT_NE(ReadFile(rep / "mailvault-report.md").find("checked, not restored"), std::string::npos);

  auto full = Mv({"report", "--out", rep.path(), "--full-verify"});
  ASSERT_EQ(full.exit_code, 0) << full.out << full.err;
  auto f = nlohmann::json::parse(ReadFile(rep / "mailvault-report.json"));
  EXPECT_TRUE(f["groups"][0]["verified"].get<bool>());
  EXPECT_TRUE(f["groups"][0]["verify_ok"].get<bool>());
  // The restore read the snapshot's data: most of the 72 MiB more than the light report (blobs
  // in a cached tree pack come from the cache).
  auto full_bytes = f["downloaded_bytes"].get<int64_t>();
  EXPECT_GT(full_bytes - light, int64_t{50} << 20) << full_bytes << " vs " << light;
  EXPECT_NE(ReadFile(rep / "mailvault.prom").find("mailvault_verify_ok{stack=\"mailu\"} 1"),
            std::string::npos);
}

// A full restore reads its files in batches of at most 16,384 (agent/restorer/restore.cpp), and
// the backup's two workers each fill a pack with every other file, so both packs hold files of
// both batches. The restore keeps the packs it downloads for the run (KeepReadPacks): it
// downloads the repository once, not once per batch (bench/README.md "On S3" measured 1.76x
// before), and leaves no copy behind.
TEST_F(RgwRepoTest, AFullRestoreDownloadsEachPackOnceAcrossItsBatches) {
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  WriteRandomFiles(vol_ / "many", 20000, 2048, 31);  // 20,000 files: two restore batches
  ASSERT_EQ(Mv({"backup", "--source", "many=" + vol_ / "many"}).exit_code, 0);
  const uint64_t pack_bytes = PackBytes();
  ASSERT_GT(pack_bytes, uint64_t{40} << 20);

  auto r = Mv({"restore", "--snapshot", "latest", "--target", out_.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "many"), ListTree(out_ / "many")), "");
  auto j = Json(r);
  auto down = j["storage"]["bytes_down"].get<uint64_t>();
  std::cout << "restore downloaded " << down << " bytes for " << pack_bytes << " bytes of packs\n";
  // The packs once, plus the index and the manifest (a few hundred KiB).
  EXPECT_LT(down, pack_bytes + pack_bytes / 20)
      << "downloaded " << down << " bytes for " << pack_bytes << " bytes of packs";
  EXPECT_GT(j["storage"]["cache_hits"].get<uint64_t>(), 0u) << r.out;
  // Nothing of the run's copies is left in the cache.
  auto left = Shell("find '" + cache_.path() + "' -path '*spill-*' | head -3");
  EXPECT_EQ(left.out, "");
}

// Incident restores read what they restore (docs/FORMAT.md §5.1): restoring one mailbox of
// four fetches the frames that hold its messages, not the whole packs (each of the backup's two
// workers wrote a pack with half of every mailbox). The bound is the issue's: at most twice what
// the mailbox alone takes compressed (in a fresh repository), the index and trees included.
TEST_F(RgwRepoTest, RestoringOneMailboxDownloadsAtMostTwiceItsCompressedSize) {
  auto users = MakeMailVolume(vol_.path(), {.users = 4, .messages_per_user = 1500, .seed = 41});
  ASSERT_EQ(Mv({"init"}).exit_code, 0);
  ASSERT_EQ(Mv({"backup", "--source", "mail=" + vol_ / "mail"}).exit_code, 0);
  const std::string mailbox = users[2];
  const uint64_t pack_bytes = PackBytes();

  // What the mailbox alone takes, compressed: a backup of only it into a fresh local repository.
  TempDir alone("mvalone");
  std::filesystem::create_directories(alone / ("src/mail/" + mailbox));
  std::filesystem::copy(vol_ / ("mail/" + mailbox), alone / ("src/mail/" + mailbox),
                        std::filesystem::copy_options::recursive);
  ASSERT_EQ(RunMailvault({"init", "--repo", alone / "r"}).exit_code, 0);
  auto b = RunMailvault(
      {"backup", "--repo", alone / "r", "--json", "--source", "mail=" + alone / "src/mail"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  uint64_t packed = Json(b)["bytes_packed"].get<uint64_t>();
  ASSERT_GT(packed, uint64_t{1} << 20);

  // As on a new host after the incident: nothing cached.
  TempDir fresh("mvcache-new-host");
  auto r = Mv({"restore", "--snapshot", "latest", "--include", "mail/" + mailbox, "--target",
               out_.path(), "--cache-dir", fresh.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = ListTree(vol_ / ("mail/" + mailbox));
  std::erase_if(want, [](const auto& kv) { return kv.first.rfind("tmp/", 0) == 0; });
  ASSERT_GT(want.size(), 1500u);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / ("mail/" + mailbox))), "")
      << "every message of the mailbox (Maildir tmp/ is not restored)";
  EXPECT_FALSE(std::filesystem::exists(out_ / ("mail/" + users[1])))
      << "only the mailbox asked for";
  uint64_t down = Json(r)["storage"]["bytes_down"].get<uint64_t>();
  std::cout << "one mailbox of 4: downloaded " << down << " bytes; it takes " << packed
            << " alone (" << static_cast<double>(down) / static_cast<double>(packed)
            << "x); the repository's packs " << pack_bytes << " bytes\n";
  EXPECT_LE(down, 2 * packed) << "downloaded " << down << " for a mailbox of " << packed
                              << " compressed, in " << pack_bytes << " bytes of packs";
}

// An encrypted repository on S3 (docs/ENCRYPTION.md): the bucket holds no user address or
// message text in any object; restoring one mailbox of four still fetches only the age chunks
// that hold its frames (within half again what the same restore from an unencrypted repository
// downloads); the whole restores bit-exact and check --read-data passes.
TEST_F(RgwRepoTest,
       AnEncryptedRepositoryLeaksNothingToTheBucketAndStillRestoresOneMailboxByRanges) {
  auto users = MakeMailVolume(vol_.path(), {.users = 4, .messages_per_user = 1500, .seed = 43});
  WriteFile(cache_ / "pass", "s3 passphrase\n");
  ::setenv("MAILVAULT_PASSWORD_FILE", (cache_ / "pass").c_str(), 1);
  ASSERT_EQ(Mv({"init", "--encrypt"}).exit_code, 0);
  auto b = Mv({"backup", "--json", "--source", "mail=" + vol_ / "mail"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  uint64_t packed = Json(b)["bytes_packed"].get<uint64_t>();
  const std::string mailbox = users[2];

  auto direct = Direct();
  ASSERT_NE(direct, nullptr);
  auto objects = direct->List("");
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  ASSERT_GT(objects->size(), 5u);
  for (const auto& o : *objects) {
    auto data = direct->Read(o.name);
    ASSERT_TRUE(data.ok()) << o.name;
    for (const auto& u : users)
      EXPECT_EQ(data->find(u), std::string::npos) << u << " in " << o.name;
    EXPECT_EQ(data->find("Subject:"), std::string::npos) << o.name;
  }

  TempDir fresh("mvcache-new-host");
  auto r = Mv({"restore", "--snapshot", "latest", "--include", "mail/" + mailbox, "--target",
               out_.path(), "--cache-dir", fresh.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto want = ListTree(vol_ / ("mail/" + mailbox));
  std::erase_if(want, [](const auto& kv) { return kv.first.rfind("tmp/", 0) == 0; });
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / ("mail/" + mailbox))), "");
  uint64_t down = Json(r)["storage"]["bytes_down"].get<uint64_t>();

  // The same restore from an unencrypted repository of the same mail, in the same bucket.
  ::unsetenv("MAILVAULT_PASSWORD_FILE");
  std::string plain = "s3:" + (*rgw_)["MV_S3_ENDPOINT"] + "/" + bucket_ + "/plain";
  ASSERT_EQ(RunMailvault({"init", "--repo", plain}).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"backup", "--repo", plain, "--source", "mail=" + vol_ / "mail"}).exit_code, 0);
  TempDir fresh2("mvcache-new-host2"), out2("mvout-plain");
  auto r2 = RunMailvault({"restore", "--repo", plain, "--snapshot", "latest", "--include",
                          "mail/" + mailbox, "--target", out2.path(), "--cache-dir", fresh2.path(),
                          "--json"});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  uint64_t plain_down = Json(r2)["storage"]["bytes_down"].get<uint64_t>();
  ::setenv("MAILVAULT_PASSWORD_FILE", (cache_ / "pass").c_str(), 1);
  std::cout << "one mailbox of 4: encrypted downloaded " << down << " bytes, unencrypted "
            << plain_down << ", of " << packed << " packed\n";
  EXPECT_LE(down, plain_down + plain_down / 2 + (256 << 10))
      << "encryption keeps ranged reads: whole 64 KiB age chunks and one header per pack more";
  EXPECT_LT(down, packed * 3 / 4) << "not every pack";

  TempDir all("mvout-all");
  auto full = Mv({"restore", "--snapshot", "latest", "--target", all.path()});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  auto want_all = ListTree(vol_ / "mail");
  std::erase_if(want_all,
                [](const auto& kv) { return kv.first.find("/tmp/") != std::string::npos; });
  EXPECT_EQ(DiffTrees(want_all, ListTree(all / "mail")), "");
  auto check = Mv({"check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  ::unsetenv("MAILVAULT_PASSWORD_FILE");
  // Whoever holds only the bucket proves every pack whole (FORMAT.md §14.2): one GET per pack.
  auto keyless = Mv({"check", "--without-key", "--json"});
  ASSERT_EQ(keyless.exit_code, 0) << keyless.out << keyless.err;
  auto kj = Json(keyless);
  size_t pack_objects = 0;
  for (const auto& o : *objects) pack_objects += o.name.rfind("packs/", 0) == 0;
  EXPECT_EQ(kj["packs"].get<size_t>(), pack_objects);
  EXPECT_EQ(kj["without_key"], true);
}

}  // namespace
}  // namespace mv::testing
