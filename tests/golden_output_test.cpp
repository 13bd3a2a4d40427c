// Golden tests of the human output: the WHOLE stdout (and stderr, and the exit code) of
// `snapshots`, `diff`, `verify`, `check --read-data` and the Markdown report, run through the
// real binary on a small deterministic source, compared with tests/data/golden/*.txt.
//
// What legitimately varies from run to run is normalised before comparing (Normalise below):
// the temp dir prefix -> <TMP>, snapshot and repository IDs -> <ID1>, <ID2>... in order of
// appearance (a 32-hex ID and its 8-hex prefix get the same name; packs/<xx>/ for a pack's
// directory), dates/times -> <TIME>,
// ages ("6 seconds ago", "0 min") -> <AGE>, durations ("0.09 s") -> <DUR>, this host's name ->
// <HOST>, and the sizes that depend on how the backup's parallel workers filled the packs
// (snapshots' ADDED column, check's pack bytes, the report's Repository line) -> <PACKED>,
// <BYTES>, <RATIO>. Everything else - counts, sizes, wording, order, alignment - must match
// exactly.
//
// UPDATE MODE: after an intended change of the output, regenerate the files with
//   MAILVAULT_UPDATE_GOLDEN=1 build/tests/mv_tests --gtest_filter='Golden*'
// then READ the diff (git diff tests/data/golden) before committing it: the golden files are
// what an operator sees. See tests/data/golden/README.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "test_util.h"

#ifndef MAILVAULT_SOURCE_DIR
#error "MAILVAULT_SOURCE_DIR must point at the source tree (tests/CMakeLists.txt)"
#endif

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

constexpr int64_t kMtime = 1700000000;  // every file and directory of the source

std::string GoldenDir() { return std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/golden"; }
bool UpdateMode() {
  const char* v = std::getenv("MAILVAULT_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

// Replaces every match of `re` by fmt(match); when the match is followed by two spaces (a
// table column) the replacement is padded to the match's width so columns stay aligned.
template <class Fn>
std::string ReplaceAll(const std::string& in, const std::regex& re, Fn fmt) {
  std::string out;
  size_t last = 0;
  for (auto it = std::sregex_iterator(in.begin(), in.end(), re); it != std::sregex_iterator();
       ++it) {
    const std::smatch& m = *it;
    size_t pos = static_cast<size_t>(m.position(0)), len = static_cast<size_t>(m.length(0));
    out.append(in, last, pos - last);
    std::string r = fmt(m);
    if (in.compare(pos + len, 2, "  ") == 0 && r.size() < len) r.resize(len, ' ');
    out += r;
    last = pos + len;
  }
  out.append(in, last, std::string::npos);
  return out;
}

class Normaliser {
 public:
  explicit Normaliser(std::string tmp) : tmp_(std::move(tmp)) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) == 0) host_ = buf;
  }

  std::string operator()(std::string s) {
    for (size_t p; !tmp_.empty() && (p = s.find(tmp_)) != std::string::npos;)
      s.replace(p, tmp_.size(), "<TMP>");
    static const std::regex kTime(R"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( UTC|Z)?)");
    static const std::regex kAgo(R"(\b\d+ (seconds?|minutes?|hours?|days?) ago\b)");
    static const std::regex kAgeCell(R"(\| \d+ (min|h|days) \|)");
    static const std::regex kDuration(R"(\b\d+(\.\d+)? (s|ms)\b)");
    static const std::regex kId(R"(\b([0-9a-f]{32}|[0-9a-f]{8})\b)");
    static const std::regex kPackDir(R"(packs/[0-9a-f]{2}/)");  // the pack ID's first byte
    s = std::regex_replace(s, kPackDir, "packs/<xx>/");
    s = ReplaceAll(s, kTime, [](const std::smatch&) { return std::string("<TIME>"); });
    s = ReplaceAll(s, kAgo, [](const std::smatch&) { return std::string("<AGE> ago"); });
    s = ReplaceAll(s, kAgeCell, [](const std::smatch&) { return std::string("| <AGE> |"); });
    s = ReplaceAll(s, kDuration, [](const std::smatch& m) { return "<DUR> " + m[2].str(); });
    s = ReplaceAll(s, kId, [this](const std::smatch& m) {
      std::string key = m.str().substr(0, 8);
      auto [it, fresh] = ids_.emplace(key, ids_.size() + 1);
      return "<ID" + std::to_string(it->second) + ">";
    });
    // Compressed sizes depend on the order in which the backup's workers fill the packs.
    static const std::regex kAddedCell(
        R"(\s+\d+(\.\d+)? (B|KiB|MiB|GiB)(?=\s+\d+  ))");  // snapshots: ADDED
    static const std::regex kPackBytes(R"(packs \(\d+(\.\d+)? (B|KiB|MiB|GiB)\))");
    static const std::regex kRepoLine(R"(Repository: [^\n]*)");
    static const std::regex kBytes(R"(\d+(\.\d+)? (B|KiB|MiB|GiB)\b)");
    static const std::regex kRatio(R"(dedup ratio [0-9.]+)");
    s = ReplaceAll(s, kAddedCell, [](const std::smatch& m) {
      std::string r = " <PACKED>";
      return m.length(0) > static_cast<long>(r.size())
                 ? std::string(m.length(0) - r.size(), ' ') + r
                 : r;
    });
    s = ReplaceAll(s, kPackBytes,
                   [](const std::smatch&) { return std::string("packs (<PACKED>)"); });
    s = ReplaceAll(s, kRepoLine, [](const std::smatch& m) {
      std::string line = std::regex_replace(m.str(), kBytes, "<BYTES>");
      return std::regex_replace(line, kRatio, "dedup ratio <RATIO>");
    });
    if (host_.size() >= 2) {
      std::regex host("\\b" +
                      std::regex_replace(host_, std::regex(R"([.^$|()\[\]{}*+?\\-])"), R"(\$&)") +
                      "\\b");
      s = ReplaceAll(s, host, [](const std::smatch&) { return std::string("<HOST>"); });
    }
    return s;
  }

 private:
  std::string tmp_, host_;
  std::map<std::string, size_t> ids_;  // one numbering for the whole test: IDs match across outputs
};

void SetMtime(const std::string& path, int64_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0)
      << path << ": " << std::strerror(errno);
}

class Golden : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = stdfs::canonical(tmp_.path()).string();
    norm_ = Normaliser(root_);
    ASSERT_EQ(RunMailvault({"init", "--repo", Repo()}).exit_code, 0);
    stdfs::create_directories(Scratch());
    MakeSource();
  }

  std::string Repo() const { return root_ + "/repo"; }
  std::string Scratch() const { return root_ + "/scratch"; }
  std::string Mail() const { return root_ + "/src/mail"; }
  std::string Data() const { return root_ + "/src/data"; }
  std::string Box() const { return Mail() + "/alice@example.org"; }
  std::vector<std::string> Sources() const {
    return {"--source", "mail=" + Mail(), "--source", "data=" + Data()};
  }

  static std::string Message(const std::string& subject, const std::string& text) {
    return "From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: " + subject +
           "\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <" + subject +
           "@example.org>\r\n\r\n" + text + "\r\n";
  }

  // alice@example.org: INBOX (cur: 2, new: 1) and .Sent (cur: 1); data/main.db with two tables.
  void MakeSource() {
    for (const char* f : {"", "/.Sent"})
      for (const char* d : {"cur", "new", "tmp"}) stdfs::create_directories(Box() + f + "/" + d);
    stdfs::create_directories(Data());
    WriteFile(Box() + "/cur/1700000001.M1P100.mail,S=200:2,S", Message("first", "Hello Bob."),
              0600);
    WriteFile(Box() + "/cur/1700000002.M2P100.mail,S=201:2,RS",
              Message("second", "Lunch on Friday?"), 0600);
    WriteFile(Box() + "/new/1700000003.M3P100.mail,S=202",
              Message("third", "The report is attached."), 0600);
    WriteFile(Box() + "/.Sent/cur/1700000004.M4P100.mail,S=203:2,S",
              Message("reply", "Thanks, see you."), 0600);
    WriteFile(Box() + "/dovecot-uidlist", "3 V1700000000 N5\n1 1700000001.M1P100.mail\n", 0600);
    {
      SQLite::Database db(Data() + "/main.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec("PRAGMA journal_mode=DELETE");
      db.exec("CREATE TABLE domain (name TEXT PRIMARY KEY, max_users INTEGER)");
      db.exec(
          "CREATE TABLE user (email TEXT PRIMARY KEY, domain_name TEXT, quota_bytes INTEGER, "
          "password TEXT)");
      db.exec("INSERT INTO domain VALUES ('example.org', 10)");
      db.exec(
          "INSERT INTO user VALUES ('alice@example.org', 'example.org', 1000000000, "
          "'{BLF-CRYPT}secret1')");
      db.exec(
          "INSERT INTO user VALUES ('bob@example.org', 'example.org', 1000000000, "
          "'{BLF-CRYPT}secret2')");
    }
    FixMtimes();
  }

  // The second state: a message arrives in .Sent, one is deleted, the new one is read (moved
  // to cur with a flag), a user's quota changes and a user is added.
  void ChangeSource() {
    WriteFile(Box() + "/.Sent/cur/1700000005.M5P100.mail,S=204:2,S",
              Message("later", "One more thing."), 0600);
    stdfs::remove(Box() + "/cur/1700000001.M1P100.mail,S=200:2,S");
    stdfs::rename(Box() + "/new/1700000003.M3P100.mail,S=202",
                  Box() + "/cur/1700000003.M3P100.mail,S=202:2,S");
    {
      SQLite::Database db(Data() + "/main.db", SQLite::OPEN_READWRITE);
      db.exec("UPDATE user SET quota_bytes = 2000000000 WHERE email = 'alice@example.org'");
      db.exec(
          "INSERT INTO user VALUES ('carol@example.org', 'example.org', 500000000, "
          "'{BLF-CRYPT}secret3')");
    }
    FixMtimes();
  }

  void FixMtimes() {
    std::vector<std::string> paths;
    for (const auto& e : stdfs::recursive_directory_iterator(root_ + "/src"))
      paths.push_back(e.path().string());
    paths.push_back(Mail());
    paths.push_back(Data());
    for (const auto& p : paths) SetMtime(p, kMtime);
  }

  std::string BackupId() {
    // One worker: one content pack per backup (and one of tree records), so pack counts in the
    // golden output do not depend on how the files were shared between workers.
    std::vector<std::string> args = {"backup",   "--repo", Repo(),        "--json",    "--host",
                                     "mailhost", "--tag",  "stack=mailu", "--threads", "1"};
    for (const auto& s : Sources()) args.push_back(s);
    RunResult r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("snapshot")) {
      ADD_FAILURE() << "backup --json printed no snapshot ID: " << r.out;
      return "";
    }
    return j["snapshot"].get<std::string>();
  }

  // The command line (normalised), exit code, stdout and stderr of a run, as one text.
  std::string Transcript(const std::vector<std::string>& args, const RunResult& r) {
    std::string cmd = "$ mailvault";
    for (const auto& a : args) cmd += " " + a;
    std::string t = norm_(cmd) + "\n[exit " + std::to_string(r.exit_code) + "]\n" + norm_(r.out);
    if (!r.err.empty()) t += "--- stderr ---\n" + norm_(r.err);
    return t;
  }
  std::string Run(const std::vector<std::string>& args) {
    return Transcript(args, RunMailvault(args));
  }

  // Compares `text` with tests/data/golden/<name>.txt, or writes it in update mode.
  void ExpectGolden(const std::string& name, const std::string& text) {
    std::string path = GoldenDir() + "/" + name + ".txt";
    if (UpdateMode()) {
      stdfs::create_directories(GoldenDir());
      std::ofstream(path, std::ios::binary) << text;
      std::cout << "[golden] wrote " << path << "\n";
      return;
    }
    ASSERT_TRUE(stdfs::exists(path))
        << path << " is missing; generate it with MAILVAULT_UPDATE_GOLDEN=1";
    std::string want = ReadFile(path);
    EXPECT_EQ(text, want)
        << "output differs from " << path
        << " (if the change is intended: MAILVAULT_UPDATE_GOLDEN=1, then read git diff)";
  }

  TempDir tmp_{"mvgolden"};
  std::string root_;
  Normaliser norm_{""};
};

TEST_F(Golden, HumanOutputOfTheReadCommands) {
  std::string first = BackupId();
  ChangeSource();
  std::string second = BackupId();
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  norm_(first + " " + second);  // number the snapshots in the order they were taken

  ExpectGolden("snapshots", Run({"snapshots", "--repo", Repo()}));
  ExpectGolden("diff", Run({"diff", "--repo", Repo(), first.substr(0, 8), second.substr(0, 8)}));
  {
    std::vector<std::string> args = {"verify", "--repo",    Repo(),   "--snapshot",
                                     "latest", "--scratch", Scratch()};
    for (const auto& s : Sources()) args.push_back(s);
    ExpectGolden("verify", Run(args));
  }
  ExpectGolden("check", Run({"check", "--repo", Repo(), "--read-data"}));
  {
    std::string out = root_ + "/report";
    // One rotation night: every pack is re-read every night, whatever today's date.
    std::vector<std::string> args = {"report",  "--repo",          Repo(), "--format",
                                     "md",      "--out",           out,    "--scratch",
                                     Scratch(), "--rotate-nights", "1"};
    for (const auto& s : Sources()) args.push_back(s);
    std::string t = Run(args);
    ExpectGolden("report-run", t);
    ExpectGolden("report", norm_(ReadFile(out + "/mailvault-report.md")));
  }
}

// The outputs that report trouble, where the wording and stderr matter most: a live message
// whose content changed under the same name, a live database changed since the backup, an
// unknown snapshot ID, and a pack that disappeared from the repository.
TEST_F(Golden, HumanOutputOfFindings) {
  std::string id = BackupId();
  ASSERT_FALSE(id.empty());
  norm_(id);
  WriteFile(Box() + "/cur/1700000002.M2P100.mail,S=201:2,RS",
            Message("second", "Lunch on Saturday?"), 0600);
  stdfs::remove(Box() + "/.Sent/cur/1700000004.M4P100.mail,S=203:2,S");  // deleted since: normal
  {
    SQLite::Database db(Data() + "/main.db", SQLite::OPEN_READWRITE);
    db.exec("UPDATE user SET quota_bytes = 5 WHERE email = 'bob@example.org'");
    db.exec("UPDATE user SET password = '{BLF-CRYPT}changed' WHERE email = 'alice@example.org'");
  }
  FixMtimes();
  // The database was written after the backup, as in real life: drift, not loss (verify tells
  // the two apart by the live file's mtime).
  ASSERT_EQ(::utimensat(AT_FDCWD, (Data() + "/main.db").c_str(), nullptr, 0), 0);
  {
    std::vector<std::string> args = {"verify", "--repo",    Repo(),   "--snapshot",
                                     "latest", "--scratch", Scratch()};
    for (const auto& s : Sources()) args.push_back(s);
    ExpectGolden("verify-live-changed", Run(args));
  }
  ExpectGolden("diff-unknown-id", Run({"diff", "--repo", Repo(), "0000beef", id.substr(0, 8)}));

  // The content pack goes missing; the tree records' pack (docs/FORMAT.md §7.5; its blobs start
  // with the record version byte 1, a message or database with text) stays.
  std::vector<std::string> packs;
  for (const auto& e : stdfs::recursive_directory_iterator(Repo() + "/packs"))
    if (e.is_regular_file() &&
        Shell("tar --zstd -xOf '" + e.path().string() + "' | head -c 1").out != "\x01")
      packs.push_back(e.path().string());
  ASSERT_EQ(packs.size(), 1u) << "one small backup with one worker writes one content pack";
  stdfs::remove(packs[0]);
  ExpectGolden("check-pack-missing", Run({"check", "--repo", Repo(), "--read-data"}));
}

}  // namespace
}  // namespace mv::testing
