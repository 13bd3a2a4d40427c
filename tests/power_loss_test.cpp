// Power loss, full disks and failed renames during a backup, without root (no tmpfs, no mount,
// no kill): the repository is written through storage::FaultEnv (storage/fault_env.h), which
// passes every write to the real file system and can drop what a power cut would lose. It is a
// fake only for the power cut, which nothing real here can do; everything else is real: real
// files, the real backup, check and restore, and the real CLI for `check --read-data`.
//
// The same harness covers prune (tests/prune_test.cpp, PruneTest.PowerLoss...): power loss at
// every sync point of a prune leaves a repository that checks clean with every kept snapshot.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <set>

#include "agent/archiver/backup.h"
#include "agent/restorer/restore.h"
#include "storage/fault_env.h"
#include "storage/fs.h"
#include "storage/repository.h"
#include "test_util.h"
#include "verify/check.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;
using storage::Env;
using storage::FaultEnv;

// --- FaultEnv itself, proven before the backup tests rely on it ---

std::unique_ptr<storage::WritableFile> Create(Env& env, const std::string& path,
                                              std::string_view data, bool sync) {
  auto f = env.NewWritableFile(path, 0600);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE((*f)->Append(data).ok());
  if (sync) {
    EXPECT_TRUE((*f)->Sync().ok());
  }
  return std::move(f).value();
}

TEST(FaultEnv, PowerLossDropsUnsyncedDataAndNamesAndKeepsWhatWasSynced) {
  TempDir d("mvfault");
  FaultEnv env;
  auto a = Create(env, d / "a", "hello", true);
  ASSERT_TRUE(a->Append(" world").ok());  // after the sync: lost
  ASSERT_TRUE(a->Close().ok());
  auto c = Create(env, d / "c", "never synced", false);
  ASSERT_TRUE(c->Close().ok());
  ASSERT_TRUE(env.SyncDir(d.path()).ok());  // a's and c's names are durable
  auto b = Create(env, d / "b", "synced data, unsynced name", true);
  ASSERT_TRUE(b->Close().ok());
  ASSERT_TRUE(env.SimulatePowerLoss().ok());
  EXPECT_EQ(ReadFile(d / "a"), "hello");
  EXPECT_EQ(ReadFile(d / "c"), "");  // the name survived, the data did not
  EXPECT_FALSE(stdfs::exists(d / "b"));
}

TEST(FaultEnv, AnUnsyncedRenameIsUndoneAndTheFileItReplacedComesBack) {
  TempDir d("mvfault");
  WriteFile(d / "m", "old");  // written without the FaultEnv: durable
  FaultEnv env;
  Create(env, d / "m.tmp", "new", true)->Close().ok();
  ASSERT_TRUE(env.Rename(d / "m.tmp", d / "m", storage::RenameMode::kReplace).ok());
  EXPECT_EQ(ReadFile(d / "m"), "new");
  ASSERT_TRUE(env.SimulatePowerLoss().ok());
  EXPECT_EQ(ReadFile(d / "m"), "old");
  EXPECT_FALSE(stdfs::exists(d / "m.tmp"));  // its creation was never synced either

  // The same with the directory synced after the rename: the new file is what survives.
  Create(env, d / "m.tmp", "new", true)->Close().ok();
  ASSERT_TRUE(storage::fs::RenameDurable(d / "m.tmp", d / "m", &env).ok());
  ASSERT_TRUE(env.SimulatePowerLoss().ok());
  EXPECT_EQ(ReadFile(d / "m"), "new");
  EXPECT_FALSE(stdfs::exists(d / "m.tmp"));
}

TEST(FaultEnv, AnUnsyncedRemoveComesBackAndAnUnsyncedDirectoryGoesWithItsFiles) {
  TempDir d("mvfault");
  WriteFile(d / "kept", "durable");
  FaultEnv env;
  ASSERT_TRUE(env.RemoveFile(d / "kept").ok());
  ASSERT_TRUE(env.CreateDir(d / "sub", 0700).ok());
  Create(env, d / "sub/f", "synced", true)->Close().ok();
  ASSERT_TRUE(env.SyncDir(d / "sub").ok());  // f is durable in sub, but sub is not in d
  ASSERT_TRUE(env.SimulatePowerLoss().ok());
  EXPECT_EQ(ReadFile(d / "kept"), "durable");
  EXPECT_FALSE(stdfs::exists(d / "sub"));
}

TEST(FaultEnv, AfterThePowerIsCutNothingReachesTheDisk) {
  TempDir d("mvfault");
  FaultEnv env;
  env.CutPowerAtSync(2);
  auto f = Create(env, d / "f", "one", true);  // sync 1: done
  ASSERT_TRUE(f->Append("two").ok());
  Status st = f->Sync();  // sync 2: the power goes
  EXPECT_EQ(st.sys_errno(), EIO);
  EXPECT_TRUE(env.power_is_cut());
  EXPECT_FALSE(f->Append("three").ok());
  EXPECT_FALSE(env.Rename(d / "f", d / "g", storage::RenameMode::kReplace).ok());
  EXPECT_FALSE(env.NewWritableFile(d / "h", 0600).ok());
  EXPECT_TRUE(stdfs::exists(d / "f"));
  EXPECT_FALSE(stdfs::exists(d / "g"));
  ASSERT_TRUE(f->Close().ok());
  ASSERT_TRUE(env.SimulatePowerLoss().ok());
  EXPECT_FALSE(stdfs::exists(d / "f"));  // its directory was never synced
  EXPECT_FALSE(env.power_is_cut());
}

TEST(FaultEnv, TheNthOperationFailsWithTheChosenErrnoAndAFullDiskKeepsWhatFits) {
  TempDir d("mvfault");
  FaultEnv env;
  env.FailNth(FaultEnv::Op::kWrite, 2, ENOSPC);
  auto f = Create(env, d / "f", "1", false);
  Status st = f->Append("2");
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_EQ(st.path(), d / "f");
  EXPECT_TRUE(f->Append("3").ok());  // only the 2nd one fails
  env.DiskFullAfter(4);
  EXPECT_EQ(f->Append("456789").code(), Code::kNoSpace);
  EXPECT_EQ(f->Append("x").code(), Code::kNoSpace);
  ASSERT_TRUE(f->Close().ok());
  EXPECT_EQ(ReadFile(d / "f"), "134567");
  env.FailNth(FaultEnv::Op::kRename, 1, EIO);
  st = env.Rename(d / "f", d / "g", storage::RenameMode::kReplace);
  EXPECT_EQ(st.sys_errno(), EIO);
  EXPECT_EQ(st.path(), d / "g");
  EXPECT_TRUE(stdfs::exists(d / "f"));
}

// --- A backup under faults ---

std::string Bytes(uint32_t seed, size_t n) {  // incompressible, so the pack outgrows one write
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    s[i] = static_cast<char>(seed >> 16);
  }
  return s;
}

class BackupFaults : public ::testing::Test {
 protected:
  // A repository (base()) with one committed snapshot (first_), and a source tree changed since,
  // so that the next backup writes new packs, an index file and a manifest.
  void SetUp() override {
    AddMessages(0, 3);
    WriteFile(vol_ / "data/notes.txt", "first version\n");
    ASSERT_TRUE(storage::Repository::Init(base()).ok());
    auto r = BackupInto(base(), Env::Default());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    first_ = r->snapshot_id;
    want_first_ = Trees();
    AddMessages(3, 6);
    WriteFile(vol_ / "data/notes.txt", "second version, longer\n");
    WriteFile(vol_ / "data/blob.bin", Bytes(7, 200 << 10));
    want_second_ = Trees();
  }

  void AddMessages(uint32_t from, uint32_t to) {
    for (uint32_t n = from; n < to; n++) {
      std::string text = MessageText(n, 3000);
      WriteFile(vol_ / ("mail/alice@example.org/cur/" + MaildirName(n, text.size(), "S", false)),
                text);
    }
  }

  std::string base() const { return work_ / "base"; }
  std::map<std::string, std::map<std::string, std::string>> Trees() const {
    return {{"mail", ListTree(vol_ / "mail")}, {"data", ListTree(vol_ / "data")}};
  }

  // A fresh copy of base() (one earlier snapshot, nothing else).
  std::string FreshCopy() {
    std::string dst = work_ / ("copy" + std::to_string(copies_++));
    stdfs::copy(base(), dst, stdfs::copy_options::recursive | stdfs::copy_options::copy_symlinks);
    return dst;
  }

  Result<agent::BackupResult> BackupInto(const std::string& repo, Env* env) const {
    MV_ASSIGN_OR_RETURN(auto r, storage::Repository::Open(repo, env));
    agent::BackupOptions o;
    o.sources = {{"mail", vol_ / "mail", {}}, {"data", vol_ / "data", {}}};
    o.host = "powerloss";
    o.threads = 1;  // one order of sync points, the same in every run
    return agent::RunBackup(*r, o);
  }

  // "" when `snap` restores byte-exact to `want`, else what differs.
  std::string RestoreDiff(
      storage::Repository& repo, const std::string& snap,
      const std::map<std::string, std::map<std::string, std::string>>& want) const {
    TempDir out("mvpl-out");
    agent::RestoreOptions o;
    o.snapshot = snap;
    o.target = out.path();
    o.threads = 1;
    o.sync = false;  // read once and removed: nothing to flush
    auto reader = repo.OpenBlobReader();
    if (!reader.ok()) return "cannot read blobs: " + reader.status().ToString();
    auto r = agent::RunRestore(**reader, o);
    if (!r.ok()) return "restore failed: " + r.status().ToString();
    if (!r->problems.empty())
      return "restore problem: " + r->problems[0].path + ": " + r->problems[0].message;
    std::string diff;
    for (const auto& [name, tree] : want) diff += DiffTrees(tree, ListTree(out / name));
    return diff;
  }

  // Opens `repo` with the real Env and checks what a user would: check (every blob re-hashed)
  // finds no error, the first snapshot restores byte-exact, and any other snapshot is the new
  // one and restores byte-exact too. Returns whether the new snapshot is there.
  bool ExpectIntact(const std::string& repo, const std::string& when) {
    SCOPED_TRACE(when);
    auto r = storage::Repository::Open(repo);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return false;
    auto& rp = **r;
    verify::CheckOptions co;
    co.read = verify::PackRead::kData;
    auto checked = verify::CheckRepository(rp, co);
    EXPECT_TRUE(checked.ok()) << checked.status().ToString();
    if (checked.ok()) {
      for (const auto& p : checked->problems)
        EXPECT_TRUE(p.warning) << p.kind << " " << p.where << ": " << p.message;
    }
    std::vector<storage::DamagedFile> damaged;
    auto snaps = rp.ListSnapshots(&damaged);
    EXPECT_TRUE(snaps.ok());
    EXPECT_TRUE(damaged.empty()) << damaged[0].path << ": " << damaged[0].reason;
    if (!snaps.ok()) return false;
    EXPECT_LE(snaps->size(), 2u);
    bool have_first = false, have_second = false;
    for (const auto& s : *snaps) {
      bool first = s.id == first_;
      have_first |= first;
      have_second |= !first;
      EXPECT_EQ(RestoreDiff(rp, s.id, first ? want_first_ : want_second_), "")
          << "snapshot " << s.id;
    }
    EXPECT_TRUE(have_first) << "the earlier snapshot is gone";
    return have_second;
  }

  TempDir vol_{"mvpl-vol"}, work_{"mvpl-work"};
  std::string first_;
  std::map<std::string, std::map<std::string, std::string>> want_first_, want_second_;
  int copies_ = 0;
};

TEST_F(BackupFaults,
       PowerLossAtEverySyncPointLeavesACleanRepositoryAndTheNewSnapshotWholeOrAbsent) {
  // A clean run counts the sync points (file and directory fsyncs).
  FaultEnv counter;
  std::string counted = FreshCopy();
  auto clean = BackupInto(counted, &counter);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  const uint64_t syncs = counter.syncs();
  // The order docs/FORMAT.md §8 documents: lock, the content pack and its directories, the tree
  // records' pack and its directories, index, header record (§15), manifest.
  std::vector<std::string> order;
  for (const auto& p : counter.sync_log()) {
    std::string rel = p.substr(counted.size() + 1);
    auto tmp = rel.find(".tmp-");
    if (tmp != std::string::npos) rel = rel.substr(0, rel.find('/')) + "/<file>";
    if (rel.rfind("tmp/pack-", 0) == 0) rel = "tmp/<pack>";
    if (rel.rfind("packs/", 0) == 0 && rel.size() == 8) rel = "packs/XX";
    order.push_back(rel);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"locks/<file>", "locks", "tmp/<pack>", "packs/XX",
                                             "packs", "tmp/<pack>", "packs/XX", "packs",
                                             "index/<file>", "index", "headers/<file>", "headers",
                                             "snapshots/<file>", "snapshots"}));
  EXPECT_TRUE(ExpectIntact(counted, "clean run"));

  // Cut n = 1..syncs: the power goes at that sync (it is not done) and the backup fails. Cut
  // syncs+1 never comes: the backup succeeds, and the power goes right after it returned.
  auto t0 = std::chrono::steady_clock::now();
  std::set<uint64_t> cli_runs = {1, syncs / 2, syncs, syncs + 1};
  for (uint64_t n = 1; n <= syncs + 1; n++) {
    std::string repo = FreshCopy();
    std::string when = "power cut at sync " + std::to_string(n) + " of " + std::to_string(syncs);
    FaultEnv env;
    env.CutPowerAtSync(n);
    auto r = BackupInto(repo, &env);
    EXPECT_EQ(r.ok(), n > syncs) << when << ": " << r.status().ToString();
    EXPECT_EQ(env.power_is_cut(), n <= syncs) << when;
    ASSERT_TRUE(env.SimulatePowerLoss().ok()) << when;
    bool committed = ExpectIntact(repo, when);
    // A backup that reported success survives the power cut; one that did not has no snapshot.
    EXPECT_EQ(committed, r.ok()) << when;
    if (cli_runs.count(n)) {
      RunResult c = RunMailvault({"check", "--repo", repo, "--read-data"});
      EXPECT_EQ(c.exit_code, 0) << when << "\n" << c.out << c.err;
      // The next backup runs on what is left, and the repository still checks clean.
      RunResult b = RunMailvault({"backup", "--repo", repo, "--json", "--source",
                                  "mail=" + vol_ / "mail", "--source", "data=" + vol_ / "data"});
      EXPECT_EQ(b.exit_code, 0) << when << "\n" << b.out << b.err;
      c = RunMailvault({"check", "--repo", repo, "--read-data"});
      EXPECT_EQ(c.exit_code, 0) << when << " then a backup\n" << c.out << c.err;
    }
    stdfs::remove_all(repo);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ power loss ] %llu sync points, %llu power cuts checked in %.2f s\n",
              static_cast<unsigned long long>(syncs), static_cast<unsigned long long>(syncs + 1),
              secs);
}

TEST_F(BackupFaults,
       AFailedWriteOrRenameFailsTheBackupNamingThePathAndLeavesARepositoryThatChecksClean) {
  FaultEnv counter;
  ASSERT_TRUE(BackupInto(FreshCopy(), &counter).ok());
  const uint64_t writes = counter.writes(), renames = counter.renames();
  ASSERT_GE(writes, 4u);
  ASSERT_GE(renames, 4u);
  struct Case {
    FaultEnv::Op op;
    uint64_t count;
    int err;
    Code code;
  };
  for (const Case& c : {Case{FaultEnv::Op::kWrite, writes, ENOSPC, Code::kNoSpace},
                        Case{FaultEnv::Op::kRename, renames, EIO, Code::kIOError}}) {
    for (uint64_t n = 1; n <= c.count; n++) {
      std::string repo = FreshCopy();
      std::string when =
          std::string(c.op == FaultEnv::Op::kWrite ? "write " : "rename ") + std::to_string(n);
      FaultEnv env;
      env.FailNth(c.op, n, c.err);
      auto r = BackupInto(repo, &env);
      ASSERT_FALSE(r.ok()) << when;
      EXPECT_EQ(r.status().code(), c.code) << when << ": " << r.status().ToString();
      EXPECT_EQ(r.status().path().rfind(repo + "/", 0), 0u)
          << when << ": " << r.status().ToString();
      EXPECT_FALSE(ExpectIntact(repo, when));  // nothing committed, nothing damaged
      stdfs::remove_all(repo);
    }
  }
  // A disk that fills up mid-pack.
  std::string repo = FreshCopy();
  FaultEnv env;
  env.DiskFullAfter(64 << 10);
  auto r = BackupInto(repo, &env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNoSpace) << r.status().ToString();
  EXPECT_NE(r.status().ToString().find(repo + "/tmp/pack-"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(ExpectIntact(repo, "disk full after 64 KiB"));
  EXPECT_EQ(ListTree(repo + "/tmp").size(), 0u) << "the partial pack is left in tmp/";
}

}  // namespace
}  // namespace mv::testing
