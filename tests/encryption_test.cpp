// Encrypted repositories through the real binary (docs/ENCRYPTION.md, issue #7): what an
// operator checks before trusting one with off-site mail. Nothing it was given appears in any
// repository file, raw or zstd-decompressed, while the same scan of an unencrypted repository
// finds all of it; Debian's `age` opens a pack with the exported identity; backup, restore,
// verify and check --read-data work and the restore is bit-exact; a flipped byte in every kind
// of object is named; every bad key is a clear error, exit 1, and writes nothing; passphrases
// are added, changed and removed; a copy into an encrypted repository restores.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

#include "storage/crypto/encrypted_backend.h"
#include "storage/local_backend.h"
#include "tests/test_util.h"

namespace mv::testing {
namespace {

namespace fs = std::filesystem;

// What must never reach the repository in clear.
const char kBodyToken[] = "ZQXJ-canary-body-4711";
const char kFolder[] = ".Canary-Folder-Q7X";

class Encrypted : public ::testing::Test {
 protected:
  void SetUp() override {
    users_ = MakeMailVolume(vol_.path(), {3, 20, 5, false});
    WriteFile(vol_ / ("mail/" + users_[0] + "/cur/1700000100.M1P1.host:2,S"),
              std::string("Subject: secret\n\nthe token ") + kBodyToken + " is here\n");
    fs::create_directories(vol_ / ("mail/" + users_[1] + "/" + kFolder + "/cur"));
    WriteFile(vol_ / ("mail/" + users_[1] + "/" + kFolder + "/cur/1700000101.M2P1.host:2,S"),
              "Subject: in the canary folder\n\nhello\n");
    std::string dkim = ReadFile(vol_ / "dkim/example.org.dkim.key");
    ASSERT_GT(dkim.size(), 80u);
    dkim_piece_ = dkim.substr(dkim.size() / 2, 24);
    WriteFile(pass_, "correct horse battery\n");
    auto init = Init(repo(), pass_);
    ASSERT_EQ(init.exit_code, 0) << init.err << init.out;
  }
  std::string repo() const { return repo_ / "r"; }
  static RunResult Init(const std::string& r, const std::string& pass) {
    return RunMailvault({"init", "--repo", r, "--encrypt", "--password-file", pass});
  }
  RunResult Run(std::vector<std::string> args, const std::string& pass = "") {
    args.insert(args.end(), {"--repo", repo(), "--password-file", pass.empty() ? pass_ : pass});
    return RunMailvault(args);
  }
  RunResult BackupInto(const std::string& r, std::vector<std::string> key) {
    std::vector<std::string> args = {"backup",   "--repo",
                                     r,          "--json",
                                     "--source", "mail=" + vol_ / "mail",
                                     "--source", "data=" + vol_ / "data",
                                     "--source", "dkim=" + vol_ / "dkim"};
    args.insert(args.end(), key.begin(), key.end());
    return RunMailvault(args);
  }
  RunResult Backup() { return BackupInto(repo(), {"--password-file", pass_}); }
  // Every repository file: relative name -> bytes.
  static std::map<std::string, std::string> Files(const std::string& r) {
    std::map<std::string, std::string> m;
    for (const auto& e : fs::recursive_directory_iterator(r))
      if (e.is_regular_file()) m[fs::relative(e.path(), r).string()] = ReadFile(e.path());
    return m;
  }
  // The needles found in any file of `r`, raw or after `zstd -d` where it decompresses.
  static std::set<std::string> Found(const std::string& r,
                                     const std::vector<std::string>& needles) {
    std::set<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(r)) {
      if (!e.is_regular_file()) continue;
      std::string raw = ReadFile(e.path());
      RunResult z = Shell("zstd -dcq < '" + e.path().string() + "' 2>/dev/null");
      for (const auto& n : needles)
        if (raw.find(n) != std::string::npos ||
            (z.exit_code == 0 && z.out.find(n) != std::string::npos))
          found.insert(n);
    }
    return found;
  }
  std::vector<std::string> Needles() const {
    return {kBodyToken, kFolder, users_[0], users_[2], dkim_piece_};
  }

  TempDir vol_{"mvencvol"}, repo_{"mvencrepo"}, out_{"mvencout"}, keys_{"mvenckeys"};
  std::string pass_ = keys_ / "pass";
  std::vector<std::string> users_;
  std::string dkim_piece_;
};

TEST_F(Encrypted, KnownPlaintextNeverReachesTheRepositoryButDoesReachAPlainOne) {
  ASSERT_EQ(Backup().exit_code, 0);
  WriteFile(vol_ / ("mail/" + users_[2] + "/new/1700000102.M3P1.host"), "Subject: later\n\nx\n");
  auto second = Backup();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  auto v = Run({"verify"});
  ASSERT_EQ(v.exit_code, 0) << v.err << v.out;
  EXPECT_EQ(Found(repo(), Needles()), std::set<std::string>{})
      << "a message body, a folder name, user emails from the mailboxes and main.db, DKIM key "
         "bytes: none may appear in any file of an encrypted repository";

  // Blob IDs are secret too: take those of one pack (decrypted with the exported identity) and
  // look for each, as hex and as its 16 bytes, in every file.
  ASSERT_EQ(Run({"key", "export-identity", "--output", keys_ / "id.txt"}).exit_code, 0);
  std::string pack;
  for (const auto& e : fs::recursive_directory_iterator(repo() + "/packs"))
    if (e.is_regular_file() && (pack.empty() || e.file_size() > fs::file_size(pack)))
      pack = e.path();
  RunResult ids = Shell("age -d -i '" + keys_ / "id.txt" + "' '" + pack + "' | tar --zstd -tf -");
  ASSERT_EQ(ids.exit_code, 0);
  std::vector<std::string> blob_ids;
  std::istringstream in(ids.out);
  for (std::string line; std::getline(in, line);)
    if (line.size() == 32) blob_ids.push_back(line);
  ASSERT_GT(blob_ids.size(), 3u) << ids.out;
  std::vector<std::string> id_needles;
  for (const auto& h : blob_ids) {
    id_needles.push_back(h);
    std::string bin;
    for (size_t i = 0; i < 32; i += 2)
      bin.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    id_needles.push_back(bin);
  }
  EXPECT_EQ(Found(repo(), id_needles).size(), 0u) << "no blob ID, as text or bytes, in any file";

  // The same scan finds everything in an unencrypted repository: it would catch a leak.
  TempDir plain("mvencplain");
  ASSERT_EQ(RunMailvault({"init", "--repo", plain / "r"}).exit_code, 0);
  ASSERT_EQ(BackupInto(plain / "r", {}).exit_code, 0);
  auto needles = Needles();
  EXPECT_EQ(Found(plain / "r", needles), std::set<std::string>(needles.begin(), needles.end()));
}

TEST_F(Encrypted, AgeOpensAPackWithTheExportedIdentityAndTheIdentityOpensTheRepository) {
  ASSERT_EQ(Backup().exit_code, 0);
  auto exp = Run({"key", "export-identity", "--output", keys_ / "id.txt"});
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  EXPECT_EQ(fs::status(keys_ / "id.txt").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto again = Run({"key", "export-identity", "--output", keys_ / "id.txt"});
  EXPECT_EQ(again.exit_code, 1) << "never written over an existing file";
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  int packs = 0;
  for (const auto& e : fs::recursive_directory_iterator(repo() + "/packs")) {
    if (!e.is_regular_file()) continue;
    RunResult t = Shell("age -d -i '" + keys_ / "id.txt" + "' '" + e.path().string() +
                        "' | tar --zstd -tvf - | wc -l");
    EXPECT_EQ(t.exit_code, 0);
    EXPECT_GT(std::stoi(t.out), 0) << e.path();
    packs++;
  }
  EXPECT_GT(packs, 0);
  // The identity alone (no passphrase) opens the repository for every command.
  auto ls =
      RunMailvault({"snapshots", "--repo", repo(), "--identity-file", keys_ / "id.txt", "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(Json(ls).size(), 1u);
  auto r = RunMailvault(
      {"restore", "--repo", repo(), "--identity-file", keys_ / "id.txt", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(out_ / ("mail/" + users_[0] + "/cur/1700000100.M1P1.host:2,S")),
            std::string("Subject: secret\n\nthe token ") + kBodyToken + " is here\n");
}

TEST_F(Encrypted, BackupRestoreVerifyAndCheckWorkAndTheRestoreIsBitExact) {
  auto b1 = Backup();
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  WriteFile(vol_ / ("mail/" + users_[2] + "/new/1700000102.M3P1.host"), "Subject: later\n\nx\n");
  auto b2 = Backup();
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  auto j = Json(b2);
  EXPECT_LE(j["files_read"].get<int>(), 2)
      << "the second backup reads only the new message and main.db: " << b2.out;
  auto r = Run({"restore", "--target", out_.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"mail", "data", "dkim"}) {
    auto want = ListTree(vol_ / part);
    for (auto it = want.begin(); it != want.end();)
      it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
    if (std::string(part) == "data") continue;  // main.db is an online copy, compared below
    EXPECT_EQ(DiffTrees(want, ListTree(out_ / part)), "") << part;
  }
  EXPECT_EQ(Shell("sqlite3 '" + out_ / "data/main.db" + "' 'select count(*) from user'").out,
            Shell("sqlite3 '" + vol_ / "data/main.db" + "' 'select count(*) from user'").out);
  auto v = Run({"verify"});
  EXPECT_EQ(v.exit_code, 0) << v.err << v.out;
  auto c = Run({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
  auto config = nlohmann::json::parse(ReadFile(repo() + "/config"));
  EXPECT_EQ(config["version"], 9) << "the newest version; encrypted as its config says";
  EXPECT_EQ(config["encryption"]["algorithm"], "age-x25519");
  EXPECT_FALSE(fs::exists(repo() + "/keys/default")) << "no content key in clear";
}

// A flipped byte in each kind of object is detected by the command that reads it, and named.
TEST_F(Encrypted, AFlippedByteInEveryKindOfObjectIsDetectedAndNamed) {
  ASSERT_EQ(Backup().exit_code, 0);
  ASSERT_EQ(Run({"verify"}).exit_code, 0);
  auto first = [&](const std::string& dir) {
    for (const auto& e : fs::recursive_directory_iterator(repo() + "/" + dir))
      if (e.is_regular_file() && e.path().filename() != "secrets")
        return fs::relative(e.path(), repo()).string();
    return std::string();
  };
  struct Case {
    std::string rel;
    std::vector<std::string> cmd;
    int exit_code = 1;
  };
  std::vector<Case> cases = {
      {first("packs"), {"check", "--read-data"}},
      {first("index"), {"check"}},
      {first("snapshots"), {"check"}},
      // A damaged record loses only its proof: `snapshots` warns, naming it, and goes on.
      {first("verifications"), {"snapshots"}, 0},
      {"keys/secrets", {"snapshots"}},
      {first("keys"), {"snapshots"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.rel);
    ASSERT_FALSE(c.rel.empty());
    TempDir copy("mvencflip");
    fs::copy(repo(), copy / "r", fs::copy_options::recursive);
    std::string path = copy / ("r/" + c.rel);
    std::string bytes = ReadFile(path);
    bytes[bytes.size() / 2] ^= 0x20;
    WriteFile(path, bytes, 0600);
    std::vector<std::string> args = c.cmd;
    args.insert(args.end(), {"--repo", copy / "r", "--password-file", pass_});
    auto r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err << r.out;
    std::string name = fs::path(c.rel).filename();
    EXPECT_NE((r.err + r.out).find(name), std::string::npos)
        << "the damaged file is named: " << r.err << r.out;
  }
}

TEST_F(Encrypted, EveryBadKeyIsAClearErrorWithExitOneAndWritesNothing) {
  ASSERT_EQ(Backup().exit_code, 0);
  auto before = Files(repo());
  auto expect_refused = [&](std::vector<std::string> key, const std::string& says) {
    SCOPED_TRACE(says);
    auto r = BackupInto(repo(), key);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(Files(repo()), before) << "nothing written";
  };
  WriteFile(keys_ / "wrong", "correct horse battery staple\n");
  expect_refused({"--password-file", keys_ / "wrong"}, "wrong passphrase");
  WriteFile(keys_ / "empty", "");
  expect_refused({"--password-file", keys_ / "empty"}, "empty");
  WriteFile(keys_ / "newline", "\n");
  expect_refused({"--password-file", keys_ / "newline"}, "empty");
  expect_refused({"--password-file", keys_ / "missing"}, "cannot read the passphrase file");
  expect_refused({}, "--password-file");
  // Another repository's identity, and a key file copied in from another repository.
  TempDir other("mvencother");
  ASSERT_EQ(Init(other / "r", pass_).exit_code, 0);
  ASSERT_EQ(RunMailvault({"key", "export-identity", "--repo", other / "r", "--password-file", pass_,
                          "--output", keys_ / "other.txt"})
                .exit_code,
            0);
  expect_refused({"--identity-file", keys_ / "other.txt"}, "is not this repository's");
  WriteFile(keys_ / "garbage.txt", "AGE-SECRET-KEY-1NOTAKEY\n");
  expect_refused({"--identity-file", keys_ / "garbage.txt"}, "garbage.txt");
  // One trailing newline is dropped: the passphrase without it opens the repository too.
  WriteFile(keys_ / "nonl", "correct horse battery");
  auto ok = BackupInto(repo(), {"--password-file", keys_ / "nonl"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  // A key file from another repository (same passphrase) opens an identity that is not this
  // repository's: named, not used.
  TempDir lone("mvenclone");
  fs::copy(repo(), lone / "r", fs::copy_options::recursive);
  for (const auto& e : fs::directory_iterator(lone / "r/keys"))
    if (e.path().filename() != "secrets") fs::remove(e.path());
  for (const auto& e : fs::directory_iterator(other / "r/keys"))
    if (e.path().filename() != "secrets")
      fs::copy(e.path(), lone / ("r/keys/" + e.path().filename().string()));
  auto foreign = RunMailvault({"snapshots", "--repo", lone / "r", "--password-file", pass_});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_NE(foreign.err.find("another repository's identity"), std::string::npos) << foreign.err;
}

TEST_F(Encrypted, PassphrasesAreAddedChangedAndRemovedWithoutRewritingData) {
  ASSERT_EQ(Backup().exit_code, 0);
  auto data_before = Files(repo() + "/packs");
  WriteFile(keys_ / "second", "a second passphrase\n");
  auto add = Run({"key", "add", "--new-password-file", keys_ / "second", "--json"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  std::string second_id = Json(add)["added"];
  EXPECT_EQ(Run({"snapshots"}, keys_ / "second").exit_code, 0) << "the new passphrase opens it";
  EXPECT_EQ(Run({"snapshots"}).exit_code, 0) << "and the first still does";
  auto list = Json(Run({"key", "list", "--json"}));
  EXPECT_EQ(list["keys"].size(), 2u);

  WriteFile(keys_ / "third", "the changed passphrase\n");
  auto passwd = Run({"key", "passwd", "--new-password-file", keys_ / "third", "--json"});
  ASSERT_EQ(passwd.exit_code, 0) << passwd.err;
  EXPECT_EQ(Run({"snapshots"}).exit_code, 1) << "the old passphrase no longer opens it";
  EXPECT_EQ(Run({"snapshots"}, keys_ / "third").exit_code, 0);
  EXPECT_EQ(Run({"snapshots"}, keys_ / "second").exit_code, 0);

  auto unknown = Run({"key", "remove", "0123456789abcdef"}, keys_ / "third");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.err;
  auto rm = Run({"key", "remove", second_id}, keys_ / "third");
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(Run({"snapshots"}, keys_ / "second").exit_code, 1);
  std::string last = Json(Run({"key", "list", "--json"}, keys_ / "third"))["keys"][0]["id"];
  auto only = Run({"key", "remove", last}, keys_ / "third");
  EXPECT_EQ(only.exit_code, 2) << "the last passphrase is never removed";
  EXPECT_NE(only.err.find("only passphrase"), std::string::npos) << only.err;
  EXPECT_EQ(Files(repo() + "/packs"), data_before) << "no pack was rewritten";
  auto plain = RunMailvault({"key", "list", "--repo", out_ / "none"});
  EXPECT_NE(plain.exit_code, 0);
}

TEST_F(Encrypted, ACopyFromAPlainRepositoryIntoAnEncryptedOneRestores) {
  TempDir plain("mvencsrc");
  ASSERT_EQ(RunMailvault({"init", "--repo", plain / "r"}).exit_code, 0);
  ASSERT_EQ(BackupInto(plain / "r", {}).exit_code, 0);
  TempDir dst("mvencdst");
  auto init = RunMailvault({"init", "--repo", dst / "r", "--encrypt", "--password-file", pass_,
                            "--copy-key-from", plain / "r"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  auto copy = RunMailvault(
      {"copy", "--from", plain / "r", "--to", dst / "r", "--password-file", pass_, "--json"});
  ASSERT_EQ(copy.exit_code, 0) << copy.err << copy.out;
  auto r = RunMailvault(
      {"restore", "--repo", dst / "r", "--password-file", pass_, "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(ListTree(vol_ / "dkim"), ListTree(out_ / "dkim")), "");
  auto c = RunMailvault({"check", "--repo", dst / "r", "--password-file", pass_, "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
  EXPECT_EQ(Found(dst / "r", Needles()), std::set<std::string>{});
}

// Public-key mode (init --recipient): the agent backs up with a write-only key and no identity;
// its second backup finds its parent in its own cache and reads only what changed; it can read
// nothing back; the identity restores bit-exact, verifies and checks; a lost agent cache costs a
// full upload and nothing else; an agent key of another repository or a damaged one is refused.
TEST_F(Encrypted, PublicKeyModeBacksUpWithoutTheIdentityAndOnlyTheIdentityReads) {
  TempDir cache("mvenccache");
  ::setenv("XDG_CACHE_HOME", cache.path().c_str(), 1);
  ASSERT_EQ(Shell("age-keygen -o '" + keys_ / "operator.txt" + "' 2>/dev/null").exit_code, 0);
  std::string recipient = Shell("age-keygen -y '" + keys_ / "operator.txt" + "'").out;
  recipient.erase(recipient.find_last_not_of("\n") + 1);
  TempDir pk("mvencpk");
  std::string r = pk / "r", agent = keys_ / "agent.key";
  auto init =
      RunMailvault({"init", "--repo", r, "--recipient", recipient, "--agent-key-out", agent});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_NE(init.out.find("every backup in the repository is lost"), std::string::npos) << init.out;
  EXPECT_EQ(fs::status(agent).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(Shell("cat '" + agent + "' $(find '" + r + "' -type f) | grep -c AGE-SECRET-KEY").out,
            "0\n")
      << "no identity is stored anywhere";

  auto b1 = BackupInto(r, {"--agent-key-file", agent});
  ASSERT_EQ(b1.exit_code, 0) << b1.err << b1.out;
  WriteFile(vol_ / ("mail/" + users_[2] + "/new/1700000102.M3P1.host"), "Subject: later\n\nx\n");
  auto b2 = BackupInto(r, {"--agent-key-file", agent});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_EQ(Json(b2)["parent"], Json(b1)["snapshot"]) << "the parent, from the agent's own cache";
  EXPECT_LE(Json(b2)["files_read"].get<int>(), 2) << "only the new message and main.db: " << b2.out;
  EXPECT_EQ(Found(r, Needles()), std::set<std::string>{});

  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"snapshots"}, {"restore", "--target", out_ / "no"}}) {
    cmd.insert(cmd.end(), {"--repo", r, "--agent-key-file", agent});
    auto denied = RunMailvault(cmd);
    EXPECT_EQ(denied.exit_code, 1) << cmd[0] << ": " << denied.err;
    EXPECT_NE(denied.err.find("can only back up"), std::string::npos) << denied.err;
  }
  EXPECT_FALSE(fs::exists(out_ / "no/mail"));
  // The agent can still prove its packs arrived whole (FORMAT.md §14.2): check without a key.
  auto agent_check = RunMailvault({"check", "--repo", r, "--agent-key-file", agent});
  EXPECT_EQ(agent_check.exit_code, 0) << agent_check.err << agent_check.out;
  EXPECT_NE(agent_check.out.find("check (without a key): OK"), std::string::npos)
      << agent_check.out;

  auto restore = RunMailvault(
      {"restore", "--repo", r, "--identity-file", keys_ / "operator.txt", "--target", out_.path()});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);
  EXPECT_EQ(DiffTrees(want, ListTree(out_ / "mail")), "");
  EXPECT_EQ(
      RunMailvault({"verify", "--repo", r, "--identity-file", keys_ / "operator.txt"}).exit_code,
      0);

  // The agent's cache lost: the next backup uploads everything again, and all still checks.
  fs::remove_all(cache.path() + "/mailvault");
  auto b3 = BackupInto(r, {"--agent-key-file", agent});
  ASSERT_EQ(b3.exit_code, 0) << b3.err;
  EXPECT_GT(Json(b3)["files_read"].get<int>(), 20);
  auto check = RunMailvault(
      {"check", "--repo", r, "--identity-file", keys_ / "operator.txt", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.err << check.out;

  // Another repository's agent key, and a damaged one.
  TempDir other("mvencpk2");
  ASSERT_EQ(RunMailvault({"init", "--repo", other / "r", "--recipient", recipient,
                          "--agent-key-out", keys_ / "other.key"})
                .exit_code,
            0);
  auto wrong = BackupInto(r, {"--agent-key-file", keys_ / "other.key"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("belongs to repository"), std::string::npos) << wrong.err;
  std::string text = ReadFile(agent);
  WriteFile(keys_ / "damaged.key", text.substr(0, text.size() / 2), 0600);
  auto damaged = BackupInto(r, {"--agent-key-file", keys_ / "damaged.key"});
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_NE(damaged.err.find("damaged.key"), std::string::npos) << damaged.err;
  ::unsetenv("XDG_CACHE_HOME");
}

// A passphrase repository can hand a write-only key to its sidecar too.
TEST_F(Encrypted, APassphraseRepositoryExportsAWriteOnlyAgentKey) {
  TempDir cache("mvenccache");
  ::setenv("XDG_CACHE_HOME", cache.path().c_str(), 1);
  ASSERT_EQ(Backup().exit_code, 0);
  auto exp = Run({"key", "export-agent-key", "--output", keys_ / "agent.key"});
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  WriteFile(vol_ / ("mail/" + users_[1] + "/new/1700000103.M4P1.host"), "Subject: new\n\ny\n");
  auto b = BackupInto(repo(), {"--agent-key-file", keys_ / "agent.key"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto snaps = Json(Run({"snapshots", "--json"}));
  EXPECT_EQ(snaps.size(), 2u);
  auto r = Run({"restore", "--target", out_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(out_ / ("mail/" + users_[1] + "/new/1700000103.M4P1.host")),
            "Subject: new\n\ny\n");
  auto keys =
      RunMailvault({"key", "list", "--repo", repo(), "--agent-key-file", keys_ / "agent.key"});
  EXPECT_EQ(keys.exit_code, 1) << "an agent key cannot manage keys";
  ::unsetenv("XDG_CACHE_HOME");
}

// Version 9 (docs/FORMAT.md §14.2): a pack's name is the SHA-256/128 of its age file, which
// Python's hashlib computes independently; whoever holds only the bucket can check every pack
// without a key, and a damaged pack or manifest is found and named.
TEST_F(Encrypted, PacksAreNamedByTheHashOfTheirAgeFileSoCheckWithoutAKeyFindsDamage) {
  ASSERT_EQ(Backup().exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(ReadFile(repo() + "/config"))["version"], 9);
  RunResult names = Shell("cd '" + repo() +
                          "' && python3 -c 'import hashlib,pathlib\n"
                          "bad=[p.name for p in pathlib.Path(\"packs\").rglob(\"*.tar.zst\") if "
                          "hashlib.sha256(p.read_bytes()).hexdigest()[:32]+\".tar.zst\"!=p.name]\n"
                          "n=len(list(pathlib.Path(\"packs\").rglob(\"*.tar.zst\")))\n"
                          "print(n, len(bad))'");
  ASSERT_EQ(names.exit_code, 0);
  int packs = 0, bad = -1;
  std::istringstream(names.out) >> packs >> bad;
  EXPECT_GT(packs, 0);
  EXPECT_EQ(bad, 0) << "every pack is named by the SHA-256/128 of its file";

  auto clean = RunMailvault({"check", "--repo", repo(), "--without-key", "--json"});
  ASSERT_EQ(clean.exit_code, 0) << clean.err << clean.out;
  auto j = Json(clean);
  EXPECT_EQ(j["without_key"], true);
  EXPECT_EQ(j["packs"], packs);
  EXPECT_EQ(j["snapshots"], 1);
  EXPECT_EQ(j["ok"], true);
  // No key and no terminal to ask on (a cron job): the same check, and it says so.
  auto nokey = RunMailvault({"check", "--repo", repo()});
  EXPECT_EQ(nokey.exit_code, 0) << nokey.err;
  EXPECT_NE(nokey.out.find("check (without a key): OK"), std::string::npos) << nokey.out;
  EXPECT_NE(nokey.out.find("--password-file"), std::string::npos) << "says what a key adds";

  auto refused = RunMailvault({"check", "--repo", repo(), "--without-key", "--read-data"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("needs the key"), std::string::npos) << refused.err;

  // A flipped byte in a pack, and a manifest cut short, in a copy.
  TempDir copy("mvenckeyless");
  fs::copy(repo(), copy / "r", fs::copy_options::recursive);
  std::string pack, manifest;
  for (const auto& e : fs::recursive_directory_iterator(copy / "r/packs"))
    if (e.is_regular_file() && (pack.empty() || e.file_size() > fs::file_size(pack)))
      pack = e.path();
  for (const auto& e : fs::directory_iterator(copy / "r/snapshots")) manifest = e.path();
  std::string bytes = ReadFile(pack);
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(pack, bytes, 0600);
  WriteFile(manifest, ReadFile(manifest).substr(0, 30), 0600);
  auto damaged = RunMailvault({"check", "--repo", copy / "r", "--without-key", "--json"});
  EXPECT_EQ(damaged.exit_code, 1) << damaged.err;
  auto d = Json(damaged);
  EXPECT_EQ(d["ok"], false);
  std::map<std::string, std::string> kinds;  // kind -> where
  for (const auto& p : d["problems"]) kinds[p["kind"]] = p["where"];
  EXPECT_EQ(kinds["pack-damaged"], pack) << damaged.out;
  EXPECT_EQ(kinds["snapshot-damaged"], manifest) << damaged.out;
  // With the key, the pack is refused by its name too (no --read-data needed: check reads packs).
  auto keyed_copy =
      RunMailvault({"check", "--repo", copy / "r", "--password-file", pass_, "--json"});
  EXPECT_EQ(keyed_copy.exit_code, 1);
  EXPECT_NE(keyed_copy.out.find(fs::path(pack).filename().string()), std::string::npos)
      << keyed_copy.out;

  // An unencrypted repository needs no key: --without-key says so.
  TempDir plain("mvencplain");
  ASSERT_EQ(RunMailvault({"init", "--repo", plain / "r"}).exit_code, 0);
  auto p = RunMailvault({"check", "--repo", plain / "r", "--without-key"});
  EXPECT_EQ(p.exit_code, 2) << p.err;
  EXPECT_NE(p.err.find("not encrypted"), std::string::npos) << p.err;
}

// A version-7 repository names packs by their plaintext: without a key, check says it cannot.
TEST(EncryptedV7, CheckWithoutAKeySaysTheVersionNeedsTheKey) {
  std::string repo = std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/repo-v7";
  auto r = RunMailvault({"check", "--repo", repo, "--without-key"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("format version 7"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--password-file"), std::string::npos) << r.err;
}

// docs/FORMAT.md §14.3: the lock of an encrypted repository names no host, yet this host still
// finds its own stale lock at once, while a holder with another key (another host's label) is
// left alone until it goes stale by age.
TEST(EncryptedLock, NamesNoHostButItsOwnHostStillTakesOverItsStaleLock) {
  TempDir dir("mvenclock");
  auto open = [&](uint8_t key_byte) {
    storage::crypto::ObjectKeys keys;
    keys.recipient = storage::crypto::RecipientOf(storage::crypto::GenerateAgeIdentity());
    keys.auth.fill(key_byte);
    keys.repository = "fixture";
    return storage::crypto::NewEncryptedBackend(std::make_unique<storage::LocalBackend>(dir.path()),
                                                keys);
  };
  auto backend = open(7);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  nlohmann::json written;
  {
    auto lock = backend->LockExclusive("backup", {}, nullptr);
    ASSERT_TRUE(lock.ok()) << lock.status().ToString();
    written = nlohmann::json::parse(ReadFile(dir / "locks/exclusive"));
  }
  std::string label = written["host"];
  EXPECT_EQ(label.rfind("keyed-", 0), 0u) << label;
  EXPECT_EQ(ReadFile(dir / "locks/exclusive").find(host), std::string::npos)
      << "the host name is nowhere in the lock";
  EXPECT_FALSE(fs::exists(dir / "locks/exclusive")) << "released";

  // The same lock left behind by a process of this host that is gone.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  written["pid"] = dead;
  written.erase("pid_start");
  WriteFile(dir / "locks/exclusive", written.dump(), 0600);
  auto other_key = open(8);
  auto busy = other_key->LockExclusive("backup", {}, nullptr);
  ASSERT_FALSE(busy.ok()) << "another key's label is another host: not judged by its pid";
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  std::string why;
  auto taken = open(7)->LockExclusive("backup", {}, &why);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_NE(why.find("on this host, which is gone"), std::string::npos) << why;
}

}  // namespace
}  // namespace mv::testing
