// A restore that is killed, runs out of disk or meets a sparse file never
// leaves a wrong file under a final name, counts what failed, says why in one line per file, and a
// rerun finishes the job. Through the real binary, on real tmpfs mounts (we are root in CI).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

// A tmpfs of a given size at `dir`, unmounted on destruction.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, const std::string& size) : dir_(dir) {
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0755").c_str()) == 0)
      mounted_ = true;
    else
      error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool Grow(const std::string& size) {
    return ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT, ("size=" + size).c_str()) == 0;
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
  bool mounted_ = false;
};

// A restore's temp file: ".<name>.mv-tmp-<hex>".
bool IsRestoreTemp(const std::string& path) {
  static const std::regex re(R"(\.[^/]*\.mv-tmp-[0-9a-f]+$)");
  return std::regex_search(path, re);
}

// What a user checks after an interrupted or failed restore: every regular file or symlink under
// a name the snapshot has is exactly the snapshot's (content and metadata); anything else is a
// directory of the snapshot or a restore temp file. Returns the offending paths ("" when fine).
std::string WrongFiles(const std::map<std::string, std::string>& want,
                       const std::map<std::string, std::string>& got) {
  std::string bad;
  for (const auto& [path, line] : got) {
    auto it = want.find(path);
    if (line[0] == 'd') {
      if (it == want.end() || it->second[0] != 'd') bad += "unexpected directory " + path + "\n";
    } else if (it == want.end()) {
      if (!IsRestoreTemp(path)) bad += "not in the snapshot: " + path + "\n";
      // A temp file in cur/ or new/ would be a message to dovecot: they go in the Maildir's tmp/.
      else if (path.find("/cur/") != std::string::npos || path.find("/new/") != std::string::npos)
        bad += "temp file among the messages: " + path + "\n";
    } else if (it->second != line) {
      bad += "wrong under its final name: " + path + "\n  want " + it->second + "\n  got  " + line +
             "\n";
    }
  }
  return bad;
}

// Files and symlinks must match exactly; directories must exist (a rerun leaves the metadata of
// directories that already exist alone, as onto any non-empty target).
std::string DiffContent(const std::map<std::string, std::string>& want,
                        const std::map<std::string, std::string>& got) {
  std::string d = WrongFiles(want, got);
  for (const auto& [path, line] : want)
    if (!got.count(path)) d += "missing: " + path + "\n";
  for (const auto& [path, line] : got)
    if (IsRestoreTemp(path)) d += "temp file left behind: " + path + "\n";
  return d;
}

class RestoreSafety : public RepoTest {
 protected:
  std::vector<std::string> RestoreArgs(const std::string& target, bool json = true) {
    std::vector<std::string> a = {"restore", "--repo",   repo(), "--snapshot",
                                  "latest",  "--target", target};
    if (json) a.push_back("--json");
    return a;
  }
};

TEST_F(RestoreSafety, AKilledRestoreLeavesNoWrongFileUnderAFinalNameAndARerunCompletesIt) {
  MakeMailVolume(vol_.path(),
                 {.users = 4, .messages_per_user = 200, .seed = 11, .big_attachment = true});
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  auto want = ListTree(vol_ / "mail");
  for (auto it = want.begin(); it != want.end();)  // Maildir tmp/ contents are never backed up
    it = it->first.find("/tmp/") != std::string::npos ? want.erase(it) : std::next(it);

  // The kills are spread over the restore's duration: the faster of two runs, so that load on
  // the machine makes them land earlier, not after the end.
  auto whole = std::chrono::steady_clock::duration::max();
  for (int run = 0; run < 2; run++) {
    auto t0 = std::chrono::steady_clock::now();
    RunResult full = RunMailvault(RestoreArgs(out_ / "timing"));
    ASSERT_EQ(full.exit_code, 0) << full.err;
    whole = std::min(whole, std::chrono::steady_clock::now() - t0);
    std::filesystem::remove_all(out_ / "timing");
  }

  int landed = 0, temps_left = 0;
  for (int k = 1; k <= 10; k++) {
    std::string target = out_ / ("t" + std::to_string(k));
    auto delay = whole * k / 12;
    {
      BackgroundMailvault run(RestoreArgs(target));
      std::this_thread::sleep_for(delay);
      landed += run.Kill();
    }
    if (stdfs::exists(target + "/mail")) {
      auto got = ListTree(target + "/mail");
      EXPECT_EQ(WrongFiles(want, got), "") << "killed after " << k << "/12 of a restore";
      for (const auto& [p, line] : got) temps_left += IsRestoreTemp(p);
    }
    RunResult rerun = RunMailvault(RestoreArgs(target));
    ASSERT_EQ(rerun.exit_code, 0) << "rerun after kill " << k << ": " << rerun.err;
    EXPECT_EQ(Json(rerun)["kept"].size(), 0u)
        << "nothing half-written is kept as 'differs': " << rerun.out;
    EXPECT_EQ(DiffContent(want, ListTree(target + "/mail")), "")
        << "after kill " << k << " and a rerun";
    std::filesystem::remove_all(target);
  }
  EXPECT_GE(landed, 4) << "kills should land while the restore runs";
  EXPECT_GT(temps_left, 0)
      << "some kill should land mid-file, so that the reruns clean temp files up";
}

TEST_F(RestoreSafety, ARestoreOntoAFullDiskCountsFailedFilesLeavesNoPartialOneAndARerunFinishes) {
  MakeMailVolume(vol_.path(),
                 {.users = 3, .messages_per_user = 60, .seed = 12, .big_attachment = true});
  WriteRandomFile(vol_ / "data/blob.bin", 3u << 20);
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  ASSERT_EQ(RunMailvault({"backup", "--repo", repo(), "--source", "mail=" + vol_ / "mail",
                          "--source", "data=" + vol_ / "data"})
                .exit_code,
            0);
  auto tree = [&](const std::string& root) {
    auto t = ListTree(root);
    for (auto it = t.begin(); it != t.end();)
      it = it->first.find("/tmp/") != std::string::npos ? t.erase(it) : std::next(it);
    return t;
  };
  // What a restore onto a roomy disk gives (main.db is the snapshot's consistent copy, made with
  // SQLite's backup API, so not the live file's bytes).
  RunResult ref = RunMailvault(RestoreArgs(out_ / "ref"));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  auto want_mail = tree(vol_ / "mail"), want_data = tree(out_ / "ref/data");
  EXPECT_EQ(DiffContent(want_mail, ListTree(out_ / "ref/mail")), "");
  ASSERT_TRUE(want_data.count("main.db"));

  TempDir mnt("mvrdisk");
  SmallDisk disk(mnt.path(), "4m");
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error() << "); needs root";
  std::string target = mnt / "t";
  RunResult r = RunMailvault(RestoreArgs(target, false));
  EXPECT_EQ(r.exit_code, 3) << "partial: some files could not be restored\n" << r.out << r.err;
  EXPECT_EQ(WrongFiles(want_mail, ListTree(target + "/mail")), "");
  if (stdfs::exists(target + "/data")) {
    EXPECT_EQ(WrongFiles(want_data, ListTree(target + "/data")), "");
  }
  // One line per failed file, never one per blob, and each says what to do.
  std::map<std::string, int> lines_per_path;
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);) {
    if (line.find("No space left") == std::string::npos &&
        line.find("no space") == std::string::npos)
      continue;
    lines_per_path[line.substr(0, line.find(": "))]++;
    EXPECT_NE(line.find("free space"), std::string::npos) << line;
  }
  EXPECT_FALSE(lines_per_path.empty()) << r.err;
  for (const auto& [path, n] : lines_per_path)
    EXPECT_EQ(n, 1) << path << " reported " << n << " times";
  EXPECT_NE(r.out.find(std::to_string(lines_per_path.size()) + " failed"), std::string::npos)
      << "the summary counts the failed files: " << r.out;

  // The same through --json: restored + failed are true counts.
  std::filesystem::remove_all(target);
  RunResult j = RunMailvault(RestoreArgs(target));
  EXPECT_EQ(j.exit_code, 3) << j.err;
  auto report = Json(j);
  uint64_t present = 0;
  for (const auto& root : {"mail", "data"})
    if (stdfs::exists(target + "/" + root))
      for (const auto& [p, line] : ListTree(target + "/" + root))
        present += line[0] == 'f' && !IsRestoreTemp(p);
  uint64_t total = 0;
  for (const auto* w : {&want_mail, &want_data})
    for (const auto& [p, line] : *w) total += line[0] == 'f';
  EXPECT_GT(report["files_failed"].get<uint64_t>(), 0u) << j.out;
  EXPECT_EQ(report["files_written"].get<uint64_t>(), present)
      << "files_written counts only complete files";
  EXPECT_EQ(report["files_written"].get<uint64_t>() + report["files_failed"].get<uint64_t>(), total)
      << j.out;
  std::set<std::string> paths;
  for (const auto& p : report["problems"])
    EXPECT_TRUE(paths.insert(p["path"]).second) << "twice: " << p;

  ASSERT_TRUE(disk.Grow("64m")) << std::strerror(errno);
  RunResult rerun = RunMailvault(RestoreArgs(target));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_EQ(Json(rerun)["kept"].size(), 0u) << rerun.out;
  EXPECT_EQ(DiffContent(want_mail, ListTree(target + "/mail")), "");
  EXPECT_EQ(DiffContent(want_data, ListTree(target + "/data")), "");
  EXPECT_EQ(
      Shell("cmp '" + out_ / "ref/data/main.db" + "' '" + target + "/data/main.db'").exit_code, 0);
  EXPECT_EQ(Shell("sqlite3 '" + target + "/data/main.db' 'PRAGMA integrity_check'").out, "ok\n");
}

TEST_F(RestoreSafety, ASparseFileIsRestoredWithItsHolesEvenOntoADiskSmallerThanItsSize) {
  std::string src = vol_ / "data/sparse.img";
  stdfs::create_directories(vol_ / "data");
  {
    int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    const uint64_t size = (1ull << 30) + 100;  // not a multiple of the block size
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    for (uint64_t off : {uint64_t{0}, uint64_t{300} << 20, uint64_t{700} << 20, size - 3000}) {
      std::string data = MessageText(static_cast<uint32_t>(off % 977), 3000).substr(0, 3000);
      ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)),
                static_cast<ssize_t>(data.size()));
    }
    ::close(fd);
  }
  ASSERT_EQ(Backup("data=" + vol_ / "data").exit_code, 0);

  TempDir mnt("mvsparse");
  SmallDisk disk(mnt.path(), "16m");
  if (!disk.mounted())
    GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error() << "); needs root";
  RunResult r = RunMailvault(RestoreArgs(mnt / "t"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json(r)["files_written"], 1);
  std::string got = mnt / "t/data/sparse.img";
  struct stat st;
  ASSERT_EQ(::stat(got.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (1ll << 30) + 100);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "holes come back as holes";
  EXPECT_EQ(Shell("cmp '" + src + "' '" + got + "'").exit_code, 0) << "identical content";
}

TEST_F(RestoreSafety, RefusalsThroughASymlinkSayWhatWasRefusedAndWhyNotAnErrnoText) {
  MakeMailVolume(vol_.path(), {.users = 1, .messages_per_user = 4, .seed = 13});
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  std::string user;
  for (const auto& e : stdfs::directory_iterator(vol_ / "mail")) user = e.path().filename();
  TempDir outside("mvrs-outside");
  std::string target = out_ / "t";
  stdfs::create_directories(target + "/mail");
  // The mailbox is a symlink someone planted: what would be written through it is refused.
  stdfs::create_directory_symlink(outside.path(), target + "/mail/" + user);
  RunResult r = Restore("latest", target);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto report = Json(r);
  size_t refused = 0;
  for (const auto& p : report["problems"]) {
    std::string m = p["message"];
    EXPECT_EQ(m.find("Invalid cross-device link"), std::string::npos) << m;
    EXPECT_EQ(m.find("Too many levels of symbolic links"), std::string::npos) << m;
    if (p["path"].get<std::string>().find("mail/" + user + "/") == 0) {
      refused++;
      EXPECT_EQ(m.rfind("refused", 0), 0u) << m;
      EXPECT_NE(m.find("symlink"), std::string::npos) << m;
    }
  }
  EXPECT_GT(refused, 0u) << report.dump(1);
  EXPECT_TRUE(ListTree(outside.path()).empty()) << "nothing written through the symlink";
}

TEST_F(RestoreSafety, ATargetWithoutWriteAccessSaysWriteAccessIsMissing) {
  MakeMailVolume(vol_.path(), {.users = 1, .messages_per_user = 4, .seed = 14});
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  // The restore runs as nobody (65534): it may read the repository but not write the target.
  ASSERT_EQ(
      Shell("chmod -R a+rwX '" + repo_.path() + "' && chmod 755 '" + out_.path() + "'").exit_code,
      0);
  std::string t1 = out_ / "t1", t2 = out_ / "t2";
  stdfs::create_directories(t1);
  stdfs::create_directories(t2 + "/mail");
  ::chmod(t1.c_str(), 0755);
  ::chmod(t2.c_str(), 0755);
  ::chmod((t2 + "/mail").c_str(), 0755);
  for (const auto& target : {t1, t2}) {
    BackgroundMailvault run(
        {"restore", "--repo", repo(), "--snapshot", "latest", "--target", target}, 65534);
    int code = run.Wait();
    ASSERT_NE(code, 126) << "cannot drop privileges to uid 65534";
    EXPECT_NE(code, 0);
    std::string err = run.err();
    EXPECT_NE(err.find("write access"), std::string::npos) << err;
    EXPECT_EQ(err.find("read access"), std::string::npos) << err;
    EXPECT_NE(err.find(target), std::string::npos) << "names the directory: " << err;
  }
}

// A --target inside one of the snapshot's sources would make the next backup record the
// restored copy as mail of that source (a phantom mailbox): refused, naming the source, unless
// --force. A live restore (the sources' parent) is not inside and goes on as before (issue #11).
TEST_F(RestoreSafety, ARestoreIntoADirectoryInsideASourceIsRefusedUnlessForced) {
  WriteFile(vol_ / "mail/alice@example.org/cur/1700000000.M1P1.host:2,S", "Subject: x\n\nhi\n");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  std::string inside = vol_ / "mail/restored";
  RunResult r = Restore("latest", inside);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("inside source 'mail' (" + vol_ / "mail" + ")"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_FALSE(stdfs::exists(inside)) << "nothing written";

  RunResult live = Restore("latest", vol_.path());
  EXPECT_EQ(live.exit_code, 0) << live.err;

  RunResult forced = RunMailvault(
      {"restore", "--repo", repo(), "--snapshot", "latest", "--target", inside, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(stdfs::exists(inside + "/mail/alice@example.org/cur/1700000000.M1P1.host:2,S"));
}

// Restoring over a live mailbox leaves the Dovecot state files it has as they are (an old
// dovecot-uidlist renumbers the folder for every client, an old maildirsize is a wrong quota):
// one summary line, not a "kept (differs)" line each; missing ones (a folder the restore creates,
// a deleted quota file) are restored; --exact restores them all (issue #11).
TEST_F(RestoreSafety, RestoringOverALiveMailboxLeavesDovecotsStateOfLiveFoldersAlone) {
  const std::string box = vol_ / "mail/amy@example.org";
  WriteFile(box + "/cur/1700000000.M1P1.host:2,S", "Subject: a\n\nhello\n");
  WriteFile(box + "/dovecot-uidlist", "3 V1 N2 Gsnap\n1 1700000000.M1P1.host\n");
  WriteFile(box + "/dovecot.index", "snapshot index");
  WriteFile(box + "/maildirsize", "0S\n17 1\n");
  WriteFile(box + "/.Sent/maildirfolder", "");
  WriteFile(box + "/.Sent/cur/1700000001.M2P1.host:2,S", "Subject: s\n\nsent\n");
  WriteFile(box + "/.Sent/dovecot-uidlist", "3 V2 N2 Gsent\n1 1700000001.M2P1.host\n");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  // Live since: Dovecot rewrote its uidlist, the message and .Sent were deleted, the quota
  // file is gone.
  WriteFile(box + "/dovecot-uidlist", "3 V1 N3 Glive\n");
  stdfs::remove(box + "/cur/1700000000.M1P1.host:2,S");
  stdfs::remove(box + "/maildirsize");
  stdfs::remove_all(box + "/.Sent");

  RunResult r = Restore("latest", vol_.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  EXPECT_EQ(j["dovecot_files_left"], 2) << j.dump();  // the root's uidlist and index
  EXPECT_EQ(ReadFile(box + "/dovecot-uidlist"), "3 V1 N3 Glive\n") << "the live one stays";
  EXPECT_EQ(ReadFile(box + "/maildirsize"), "0S\n17 1\n") << "a missing one is restored";
  EXPECT_EQ(ReadFile(box + "/cur/1700000000.M1P1.host:2,S"), "Subject: a\n\nhello\n");
  EXPECT_EQ(ReadFile(box + "/.Sent/dovecot-uidlist"), "3 V2 N2 Gsent\n1 1700000001.M2P1.host\n")
      << "a folder the restore creates gets its own state back";
  EXPECT_EQ(r.err.find("dovecot"), std::string::npos) << "no line per file: " << r.err;

  RunResult human =
      RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", vol_.path()});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  // Now maildirsize and .Sent's uidlist are there too: left alone as well.
  EXPECT_NE(human.out.find("4 Dovecot index/control file(s)"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("doveadm quota recalc"), std::string::npos) << human.out;

  RunResult exact = RunMailvault(
      {"restore", "--repo", repo(), "--snapshot", "latest", "--target", vol_.path(), "--exact"});
  EXPECT_EQ(exact.exit_code, 0) << exact.err;
  EXPECT_EQ(ReadFile(box + "/dovecot-uidlist"), "3 V1 N2 Gsnap\n1 1700000000.M1P1.host\n");
}

// --to SOURCE=DIR restores a source into DIR itself: a mail volume outside a stack gets a
// folder back at the place it had in that volume, not one level deeper (--target puts sources in
// TARGET/<source>). The dry run names every destination as an absolute path (issue #11).
TEST_F(RestoreSafety, ToPutsASourceIntoTheLiveVolumeItselfAndTheDryRunShowsAbsolutePaths) {
  const std::string volume = vol_ / "volumes/mailu_mail/_data";
  const std::string msg = "amy@example.org/.Sent/cur/1700000001.M2P1.host:2,S";
  WriteFile(volume + "/" + msg, "Subject: s\n\nsent\n");
  WriteFile(volume + "/amy@example.org/cur/1700000000.M1P1.host:2,S", "Subject: a\n\nhi\n");
  WriteFile(vol_ / "data/main.db.txt", "not a database");
  ASSERT_EQ(RunMailvault({"backup", "--repo", repo(), "--source", "mail=" + volume, "--source",
                          "data=" + vol_ / "data"})
                .exit_code,
            0);
  stdfs::remove_all(volume + "/amy@example.org/.Sent");
  WriteFile(volume + "/amy@example.org/cur/1700000002.M3P1.host:2,", "Subject: new\n\nlive\n");

  // A relative --to directory, run from the volume's parent: the dry run still prints absolute
  // destinations, each inside the volume itself.
  RunResult dry =
      Shell("cd '" + vol_ / "volumes/mailu_mail" + "' && '" + MAILVAULT_BIN + "' restore --repo '" +
            repo() + "' --include mail/amy@example.org/.Sent --to mail=_data --dry-run");
  ASSERT_EQ(dry.exit_code, 0) << dry.err << dry.out;
  EXPECT_NE(dry.out.find("would restore " + volume + "/" + msg + "\n"), std::string::npos)
      << dry.out;
  EXPECT_EQ(dry.out.find("would restore mail/"), std::string::npos) << "no snapshot paths";
  EXPECT_FALSE(stdfs::exists(volume + "/amy@example.org/.Sent")) << "a dry run writes nothing";

  RunResult r = RunMailvault({"restore", "--repo", repo(), "--include",
                              "mail/amy@example.org/.Sent", "--to", "mail=" + volume, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(ReadFile(volume + "/" + msg), "Subject: s\n\nsent\n");
  EXPECT_FALSE(stdfs::exists(volume + "/mail")) << "not one level too deep";
  EXPECT_EQ(ReadFile(volume + "/amy@example.org/cur/1700000002.M3P1.host:2,"),
            "Subject: new\n\nlive\n")
      << "mail that arrived since stays";
  EXPECT_FALSE(stdfs::exists(vol_ / "data/mail")) << "sources not named are not restored";

  // Bad mappings name the value and the fix; --to and --target exclude each other; a --to into
  // a subdirectory of a source is the phantom-mailbox case --target refuses too.
  RunResult bad = RunMailvault({"restore", "--repo", repo(), "--to", "mail"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--to 'mail': expected SOURCE=DIR"), std::string::npos) << bad.err;
  RunResult both = RunMailvault(
      {"restore", "--repo", repo(), "--to", "mail=" + volume, "--target", out_.path()});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.err.find("exclude each other"), std::string::npos) << both.err;
  RunResult unknown = RunMailvault({"restore", "--repo", repo(), "--to", "mial=" + out_.path()});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("source 'mial' is not in snapshot"), std::string::npos) << unknown.err;
  RunResult inside =
      RunMailvault({"restore", "--repo", repo(), "--to", "mail=" + volume + "/amy@example.org"});
  EXPECT_EQ(inside.exit_code, 2) << inside.err;
  EXPECT_NE(inside.err.find("inside source 'mail'"), std::string::npos) << inside.err;
  EXPECT_NE(inside.err.find("--to mail=" + volume), std::string::npos)
      << "names the fix: " << inside.err;
}

}  // namespace
}  // namespace mv::testing
