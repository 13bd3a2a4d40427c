// What a backup records, and restore gives back (docs/FORMAT.md §7, §10):
// hard links, extended attributes and POSIX ACLs, files that change while they are read, and
// files that look like SQLite but cannot be opened as a database. Through the real binary.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

// path -> message of the entries in `key` ("problems" or "warnings") of a backup's --json.
std::map<std::string, std::string> Reports(const nlohmann::json& backup, const char* key) {
  std::map<std::string, std::string> m;
  if (!backup.contains(key)) return m;
  for (const auto& p : backup[key]) m[p["path"].get<std::string>()] = p["message"];
  return m;
}

class BackupRecords : public RepoTest {
 protected:
  nlohmann::json Ls(const std::string& path) {
    return Json(RunMailvault({"ls", "--repo", repo(), "--json", path}));
  }
  RunResult RestoreLatest() { return Restore("latest", out_.path()); }
};

struct stat Stat(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

uint64_t DiskUsageKiB(const std::string& dir) {  // du counts a hard-linked inode once
  return std::stoull(Shell("du -sk '" + dir + "' | cut -f1").out);
}

TEST_F(BackupRecords, HardLinkedMessagesAcrossFoldersRestoreAsOneInode) {
  std::string box = vol_ / "mail/alice@example.org";
  for (const char* d : {"cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"})
    stdfs::create_directories(box + "/" + d);
  std::string big(512u << 10, 'm');  // big enough that a second copy shows in du
  for (int i = 0; i < 4; i++) {
    std::string name = "17000000" + std::to_string(i) + ".M1P1.host:2,S";
    WriteFile(box + "/cur/" + name, "Subject: " + std::to_string(i) + "\n\n" + big);
    // dovecot's maildir_copy_with_hardlinks: a copy to another folder is a link.
    ASSERT_EQ(::link((box + "/cur/" + name).c_str(), (box + "/.Sent/cur/" + name).c_str()), 0);
  }
  RunResult b = Backup("mail=" + vol_ / "mail");
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  RunResult r = RestoreLatest();
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  std::string rbox = out_ / "mail/alice@example.org";
  for (int i = 0; i < 4; i++) {
    std::string name = "17000000" + std::to_string(i) + ".M1P1.host:2,S";
    struct stat a = Stat(rbox + "/cur/" + name), s = Stat(rbox + "/.Sent/cur/" + name);
    EXPECT_EQ(a.st_ino, s.st_ino) << name << " restored as one inode";
    EXPECT_EQ(a.st_nlink, 2u) << name;
    EXPECT_EQ(ReadFile(rbox + "/.Sent/cur/" + name), ReadFile(box + "/cur/" + name));
  }
  EXPECT_LE(DiskUsageKiB(out_ / "mail"), DiskUsageKiB(vol_ / "mail") + 64)
      << "restored tree not doubled";
  EXPECT_EQ(ListTree(out_ / "mail"), ListTree(vol_ / "mail"));

  // The next backup reads nothing: links change no content and the stat shortcut still applies.
  RunResult again = Backup("mail=" + vol_ / "mail");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json(again)["files_read"], 0) << again.out;
  TempDir out2("mvrec-out2");
  ASSERT_EQ(Restore("latest", out2.path()).exit_code, 0);
  EXPECT_EQ(Stat(out2 / "mail/alice@example.org/cur/170000000.M1P1.host:2,S").st_nlink, 2u);
}

TEST_F(BackupRecords, HardLinkToAFileOutsideTheRestoredSubsetIsRestoredAsAFile) {
  WriteFile(vol_ / "data/a/one", "same inode\n");
  stdfs::create_directories(vol_ / "data/b");
  ASSERT_EQ(::link((vol_ / "data/a/one").c_str(), (vol_ / "data/b/two").c_str()), 0);
  ASSERT_EQ(Backup("data=" + vol_ / "data").exit_code, 0);
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target",
                              out_.path(), "--include", "data/b"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(ReadFile(out_ / "data/b/two"), "same inode\n");
  EXPECT_FALSE(stdfs::exists(out_ / "data/a/one"));
}

TEST_F(BackupRecords, UserXattrAndPosixAclSurviveARoundTrip) {
  ASSERT_EQ(Shell("command -v setfacl getfacl").exit_code, 0)
      << "setfacl missing: deploy/install-deps.sh --test installs acl";
  std::string f = vol_ / "data/shared.txt";
  WriteFile(f, "shared\n", 0640);
  ASSERT_EQ(::setxattr(f.c_str(), "user.x", "value\0bin", 9, 0), 0) << std::strerror(errno);
  ASSERT_EQ(
      Shell("setfacl -m u:65534:rw '" + f + "' && setfacl -d -m g:65534:rx '" + vol_ / "data" + "'")
          .exit_code,
      0);
  RunResult b = Backup("data=" + vol_ / "data");
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  ASSERT_EQ(RestoreLatest().exit_code, 0);
  std::string rf = out_ / "data/shared.txt";
  char buf[64];
  ssize_t n = ::getxattr(rf.c_str(), "user.x", buf, sizeof buf);
  ASSERT_EQ(n, 9) << "user.x restored";
  EXPECT_EQ(std::string(buf, 9), std::string("value\0bin", 9));
  auto acl = [](const std::string& p) { return Shell("getfacl -cpn '" + p + "'").out; };
  EXPECT_NE(acl(rf).find("user:65534:rw-"), std::string::npos) << acl(rf);
  EXPECT_EQ(acl(rf), acl(f));
  EXPECT_EQ(acl(out_ / "data"), acl(vol_ / "data")) << "the default ACL of the directory";
  EXPECT_EQ(Stat(rf).st_mode & 07777, Stat(f).st_mode & 07777);
}

// A backup reads a file's xattrs only when its ctime moved (setting or removing one moves it);
// otherwise the parent snapshot's are recorded. Each later snapshot must restore the xattrs the
// file had at its backup: unchanged, changed, removed, and on a message a client renamed.
TEST_F(BackupRecords, XattrsOfEachSnapshotAreTheFilesAtItsBackup) {
  std::string f = vol_ / "data/shared.txt";
  WriteFile(f, "shared\n");
  std::string box = vol_ / "data/bob@example.org";
  for (const char* d : {"cur", "new", "tmp"}) stdfs::create_directories(box + "/" + d);
  std::string msg = box + "/cur/1700000001.M1P1.host:2,";
  WriteFile(msg, "Subject: x\n\nbody\n");
  auto set = [](const std::string& p, const std::string& v) {
    ASSERT_EQ(::setxattr(p.c_str(), "user.x", v.data(), v.size(), 0), 0) << std::strerror(errno);
  };
  auto get = [](const std::string& p) -> std::string {
    char buf[64];
    ssize_t n = ::getxattr(p.c_str(), "user.x", buf, sizeof buf);
    return n < 0 ? "<none>" : std::string(buf, static_cast<size_t>(n));
  };
  // Backs up, checks how many files were read, and restores the snapshot into a fresh `out`.
  auto backup_and_restore = [&](const TempDir& out, const char* label, int files_read) {
    RunResult b = Backup("data=" + vol_ / "data");
    ASSERT_EQ(b.exit_code, 0) << label << b.err << b.out;
    EXPECT_EQ(Json(b)["files_read"], files_read) << label << b.out;
    ASSERT_EQ(Restore("latest", out.path()).exit_code, 0) << label;
  };
  set(f, "one");
  set(msg, "m1");
  {
    TempDir out("mvrec-xattr");
    backup_and_restore(out, "first", 2);
    EXPECT_EQ(get(out / "data/shared.txt"), "one");
    EXPECT_EQ(get(out / "data/bob@example.org/cur/1700000001.M1P1.host:2,"), "m1");
  }
  {
    TempDir out("mvrec-xattr");
    backup_and_restore(out, "unchanged: taken from the parent", 0);
    EXPECT_EQ(get(out / "data/shared.txt"), "one");
    EXPECT_EQ(get(out / "data/bob@example.org/cur/1700000001.M1P1.host:2,"), "m1");
  }
  set(f, "two");  // the content is the same: only ctime tells
  {
    TempDir out("mvrec-xattr");
    backup_and_restore(out, "changed xattr", 1);
    EXPECT_EQ(get(out / "data/shared.txt"), "two");
  }
  ASSERT_EQ(::removexattr(f.c_str(), "user.x"), 0);
  // A flag change renames the message (its content is reused through the rename, §7.2), and here
  // its xattr changes as well: the new name's must be recorded, not the parent's.
  std::string seen = box + "/cur/1700000001.M1P1.host:2,S";
  ASSERT_EQ(::rename(msg.c_str(), seen.c_str()), 0);
  set(seen, "m2");
  {
    TempDir out("mvrec-xattr");
    backup_and_restore(out, "removed xattr, renamed message", 1);
    EXPECT_EQ(get(out / "data/shared.txt"), "<none>");
    EXPECT_EQ(get(out / "data/bob@example.org/cur/1700000001.M1P1.host:2,S"), "m2");
  }
}

TEST_F(BackupRecords, FileGrowingWhileReadIsStoredAsLastReadWithItsRealMtime) {
  std::string log = vol_ / "mail/grow.log";
  WriteFile(log, std::string(32u << 20, 'x'));
  std::atomic<bool> stop{false};
  std::thread appender([&] {  // appends every ~0.1 ms: the file changes under every read
    int fd = ::open(log.c_str(), O_WRONLY | O_APPEND);
    std::string line(4000, 'y');
    // Rate-limited and capped: an appender faster than the backup reads keeps it from ever
    // reaching the end, and an unbounded one once filled the machine's disk.
    for (uint64_t written = 0; !stop && written < (256u << 20); written += line.size()) {
      if (::write(fd, line.data(), line.size()) < 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    ::close(fd);
  });
  RunResult b = Backup("mail=" + vol_ / "mail");
  stop = true;
  appender.join();
  ASSERT_EQ(b.exit_code, 0) << "stored, so not a partial snapshot: " << b.err << b.out;
  auto j = Json(b);
  EXPECT_TRUE(Reports(j, "problems").empty()) << b.out;
  auto warnings = Reports(j, "warnings");
  ASSERT_EQ(warnings.count(log), 1u) << b.out;
  EXPECT_NE(warnings[log].find("stored as last read"), std::string::npos) << warnings[log];
  EXPECT_EQ(b.err.find("could not be backed up"), std::string::npos) << b.err;
  auto ls = Ls("mail/grow.log");
  ASSERT_EQ(ls.size(), 1u);
  int64_t mtime = ls[0]["mtime_ns"];
  EXPECT_GT(mtime, int64_t(1700000000) * 1000000000) << "a real mtime, not 1970";
  ASSERT_EQ(RestoreLatest().exit_code, 0);
  EXPECT_GT(Stat(out_ / "mail/grow.log").st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(stdfs::file_size(out_ / "mail/grow.log"), ls[0]["size"].get<uint64_t>());
  // It is read again next time, although its stat no longer changes.
  RunResult again = Backup("mail=" + vol_ / "mail");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json(again)["files_read"], 1) << again.out;
  EXPECT_EQ(Ls("mail/grow.log")[0]["size"].get<uint64_t>(), stdfs::file_size(log));
}

// A file appended to faster than it can be read (a runaway log) must not keep the backup reading
// for ever: each read stops at twice the file's size at the walk plus 64 MiB, and what was read is
// stored as last read. (The writer stops at 1 GiB so that the test ends, and fills no disk, even
// when the backup does not.)
TEST_F(BackupRecords, FileGrowingFasterThanItIsReadDoesNotKeepTheBackupReading) {
  std::string log = vol_ / "mail/runaway.log";
  WriteFile(log, std::string(32u << 20, 'x'));
  std::atomic<bool> stop{false};
  std::thread appender([&] {
    int fd = ::open(log.c_str(), O_WRONLY | O_APPEND);
    std::string block(1u << 20, 'y');
    // At most 1 MiB per 4 ms (250 MB/s): still faster than the sanitizer build reads (about
    // 140 MB/s), but the writer can no longer finish its 1 GiB before a slow-starting backup
    // opens the file (it did once under ASan: the backup then read a file that had stopped
    // growing, rightly stored it whole, and the test failed).
    for (uint64_t written = 0; !stop && written < (1ull << 30); written += block.size()) {
      if (::write(fd, block.data(), block.size()) < 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(4));
    }
    ::close(fd);
  });
  RunResult b = Backup("mail=" + vol_ / "mail");
  stop = true;
  appender.join();
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  auto ls = Ls("mail/runaway.log");
  ASSERT_EQ(ls.size(), 1u);
  uint64_t size = ls[0]["size"];
  EXPECT_GE(size, 32u << 20);
  // The writer stops at 32 MiB + 1 GiB: a backup that followed the file would store about that.
  EXPECT_LT(size, 1ull << 30) << "the backup kept reading the growing file";
  auto warnings = Reports(Json(b), "warnings");
  ASSERT_EQ(warnings.count(log), 1u) << b.out;
  EXPECT_NE(warnings[log].find("stored as last read"), std::string::npos) << warnings[log];
  std::filesystem::remove(log);  // 1 GiB: give the space back before the restore
  ASSERT_EQ(RestoreLatest().exit_code, 0);
  EXPECT_EQ(stdfs::file_size(out_ / "mail/runaway.log"), size);
}

std::string SqliteGarbage() {
  std::string s("SQLite format 3\0", 16);
  for (int i = 0; i < 2000; i++) s += static_cast<char>((i * 7919) % 251);
  return s;
}

TEST_F(BackupRecords, FileWithTheSqliteHeaderButNotADatabaseIsStoredRawAndReported) {
  std::string fake = vol_ / "data/not-a-db.bin";
  WriteFile(fake, SqliteGarbage());
  RunResult b = Backup("data=" + vol_ / "data");
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  auto warnings = Reports(Json(b), "warnings");
  ASSERT_EQ(warnings.count(fake), 1u) << b.out;
  EXPECT_NE(warnings[fake].find("raw copy"), std::string::npos) << warnings[fake];
  EXPECT_NE(warnings[fake].find("not a database"), std::string::npos)
      << "the SQLite error: " << warnings[fake];
  auto ls = Ls("data/not-a-db.bin");
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0].value("sqlite_raw", false), true) << ls.dump();
  ASSERT_EQ(RestoreLatest().exit_code, 0);
  EXPECT_EQ(ReadFile(out_ / "data/not-a-db.bin"), SqliteGarbage());
}

TEST_F(BackupRecords, TruncatedDatabaseIsStoredRawRestoredByteForByteAndVerifiedAsARawCopy) {
  std::string db = vol_ / "data/main.db";
  stdfs::create_directories(vol_ / "data");
  {
    SQLite::Database d(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    d.exec("CREATE TABLE user(email TEXT PRIMARY KEY, blob TEXT)");
    for (int i = 0; i < 200; i++)
      d.exec("INSERT INTO user VALUES('u" + std::to_string(i) + "@example.org', '" +
             std::string(500, 'z') + "')");
  }
  stdfs::resize_file(db, stdfs::file_size(db) / 2 + 100);  // a damaged copy: half of it
  std::string want = ReadFile(db);
  RunResult b = Backup("data=" + vol_ / "data");
  ASSERT_EQ(b.exit_code, 0) << b.err << b.out;
  auto warnings = Reports(Json(b), "warnings");
  ASSERT_EQ(warnings.count(db), 1u) << b.out;
  EXPECT_NE(warnings[db].find("raw copy"), std::string::npos) << warnings[db];
  ASSERT_EQ(RestoreLatest().exit_code, 0);
  EXPECT_EQ(ReadFile(out_ / "data/main.db"), want) << "byte for byte: what sqlite3 .recover needs";
  RunResult v = RunMailvault({"verify", "--repo", repo(), "--snapshot", "latest"});
  EXPECT_NE(v.out.find("raw copy (not a database image)"), std::string::npos) << v.out << v.err;
}

}  // namespace
}  // namespace mv::testing
