#include "test_util.h"

#include "child_process.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace mv::testing {
namespace stdfs = std::filesystem;

TempDir::TempDir(const std::string& tag) {
  std::string tmpl = (stdfs::temp_directory_path() / (tag + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  stdfs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& data, int mode) {
  stdfs::create_directories(stdfs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  f.close();
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string MessageText(uint32_t n, size_t approx) {
  static const char* kWords[] = {"mailbox", "restore", "snapshot", "quarterly", "report",
                                 "meeting", "invoice", "dovecot",  "server",    "backup",
                                 "the",     "and",     "please",   "review",    "attached",
                                 "thanks",  "regards", "tomorrow", "budget"};
  std::mt19937 rng(n * 2654435761u + 7);
  std::string s = "Return-Path: <sender" + std::to_string(n % 17) +
                  "@example.net>\n"
                  "From: Sender " +
                  std::to_string(n % 17) + " <sender" + std::to_string(n % 17) +
                  "@example.net>\n"
                  "To: user@example.org\nSubject: Message number " +
                  std::to_string(n) +
                  "\n"
                  "Message-ID: <" +
                  std::to_string(n) + "." + std::to_string(rng()) +
                  "@example.net>\n"
                  "Date: Mon, 1 Jun 2025 10:00:00 +0000\n\n";
  while (s.size() < approx) {
    s += kWords[rng() % (sizeof kWords / sizeof *kWords)];
    s += (rng() % 12 == 0) ? "\n" : " ";
  }
  return s + "\n";
}

std::string MaildirName(uint32_t n, size_t size, const std::string& flags, bool in_new) {
  std::string base = std::to_string(1700000000 + n * 37) + ".M" + std::to_string(n * 13 % 1000000) +
                     "P" + std::to_string(1000 + n % 5000) +
                     ".mailu-imap,S=" + std::to_string(size);
  return in_new ? base : base + ":2," + flags;
}

namespace {

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + m + " in " + sql);
  }
}

}  // namespace

std::vector<std::string> MakeMailVolume(const std::string& root, const VolumeSpec& spec) {
  std::vector<std::string> users;
  const char* folders[] = {"", ".Sent", ".Trash", ".Archive.2024"};
  uint32_t n = spec.seed * 100000;
  for (int u = 0; u < spec.users; u++) {
    std::string user = "user" + std::to_string(u) + "@example.org";
    users.push_back(user);
    std::string mb = root + "/mail/" + user;
    for (const char* f : folders) {
      std::string dir = mb + (f[0] ? std::string("/") + f : "");
      for (const char* sub : {"cur", "new", "tmp"}) stdfs::create_directories(dir + "/" + sub);
      if (f[0]) WriteFile(dir + "/maildirfolder", "");
      WriteFile(dir + "/dovecot-uidlist", "3 V1700000000 N1 G" + std::to_string(u) + "\n");
    }
    WriteFile(mb + "/subscriptions", "Sent\nTrash\nArchive.2024\n");
    WriteFile(mb + "/dovecot.index.log", std::string(1024, '\x01'));
    for (int m = 0; m < spec.messages_per_user; m++) {
      const char* f = folders[m % 4];
      bool in_new = m % 7 == 3;
      size_t size = 800 + (n % 13) * 500;
      std::string body = MessageText(n, size);
      std::string dir = mb + (f[0] ? std::string("/") + f : "");
      WriteFile(dir + (in_new ? "/new/" : "/cur/") +
                    MaildirName(n, body.size(), m % 3 ? "S" : "RS", in_new),
                body, 0600);
      n++;
    }
    // A half-delivered message in tmp/: never backed up.
    WriteFile(mb + "/tmp/" + MaildirName(n++, 10, "", true), "partial", 0600);
  }
  if (spec.big_attachment) {
    std::mt19937_64 rng(spec.seed);
    std::string big = MessageText(n, 200);
    big.reserve(6 << 20);
    while (big.size() < (6u << 20)) big += std::to_string(rng()) + "\n";
    WriteFile(root + "/mail/" + users[0] + "/cur/" + MaildirName(n++, big.size(), "S", false), big,
              0600);
  }
  stdfs::create_directories(root + "/data");
  sqlite3* db = nullptr;
  sqlite3_open((root + "/data/main.db").c_str(), &db);
  Exec(db,
       "CREATE TABLE IF NOT EXISTS domain(name TEXT PRIMARY KEY, max_users INT);"
       "CREATE TABLE IF NOT EXISTS user(email TEXT PRIMARY KEY, domain_name TEXT, password TEXT, "
       "quota_bytes INT);"
       "CREATE TABLE IF NOT EXISTS alias(email TEXT PRIMARY KEY, destination TEXT);");
  Exec(db, "INSERT OR REPLACE INTO domain VALUES('example.org', 100);");
  for (const auto& u : users)
    Exec(db, "INSERT OR REPLACE INTO user VALUES('" + u +
                 "','example.org','{SHA512-CRYPT}$6$secret" + u + "', 1000000000);");
  Exec(db, "INSERT OR REPLACE INTO alias VALUES('postmaster@example.org','" + users[0] + "');");
  sqlite3_close(db);
  WriteFile(
      root + "/dkim/example.org.dkim.key",
      "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
      0600);
  return users;
}

std::map<std::string, std::string> ListTree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = stdfs::recursive_directory_iterator(root, stdfs::directory_options::none);
       it != stdfs::recursive_directory_iterator(); ++it) {
    std::string p = it->path().string().substr(root.size() + 1);
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    std::ostringstream s;
    char type = S_ISDIR(st.st_mode)   ? 'd'
                : S_ISLNK(st.st_mode) ? 'l'
                : S_ISREG(st.st_mode) ? 'f'
                                      : '?';
    s << type << " " << std::oct << (st.st_mode & 07777) << std::dec << " " << st.st_uid << " "
      << st.st_gid;
    if (type == 'f') {
      std::string data = ReadFile(it->path());
      s << " " << st.st_size << " " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec << " "
        << std::hash<std::string>{}(data);
    } else if (type == 'l') {
      char buf[4096];
      ssize_t k = ::readlink(it->path().c_str(), buf, sizeof buf);
      s << " -> " << std::string(buf, k > 0 ? static_cast<size_t>(k) : 0);
    } else if (type == 'd') {
      s << " " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    }
    out[p] = s.str();
  }
  return out;
}

std::string DiffTrees(const std::map<std::string, std::string>& a,
                      const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end())
      d += "only in first: " + k + "\n";
    else if (it->second != v)
      d += "differs: " + k + ": " + v + " vs " + it->second + "\n";
    if (d.size() > 3000) return d + "...";
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) {
      d += "only in second: " + k + "\n";
      if (d.size() > 3000) return d + "...";
    }
  return d;
}

RunResult RunMailvault(const std::vector<std::string>& args) {
  BackgroundMailvault run(args);
  RunResult r;
  r.exit_code = run.Wait();
  r.out = run.out();
  r.err = run.err();
  return r;
}

nlohmann::json Json(const RunResult& r) {
  EXPECT_FALSE(r.out.empty()) << r.err;
  return nlohmann::json::parse(r.out);
}

RunResult Shell(const std::string& cmd) {
  RunResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : stdfs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += e.file_size();
  return n;
}

namespace {

// doveadm without a daemon, as the mail user uid 8, index and control files in `state`.
std::string DoveadmCommand(const std::string& maildir, const std::string& state) {
  return "USER=check HOME='" + state + "' doveadm -c '" + state +
         "/empty.conf' -o mail_location=maildir:'" + maildir + "':INDEX='" + state +
         "/index':CONTROL='" + state +
         "/control' -o mail_uid=8 -o mail_gid=8 -o first_valid_uid=1 -o first_valid_gid=1 ";
}

std::map<std::string, uint64_t> Counts(const std::string& maildir, const std::string& state,
                                       std::string* err, std::vector<std::string>* subscribed) {
  WriteFile(state + "/empty.conf", "");
  std::string subs = maildir + "/subscriptions";
  std::string cmd = "mkdir -p '" + state + "/index' '" + state + "/control' && " + "{ [ ! -f '" +
                    subs + "' ] || cp '" + subs + "' '" + state +
                    "/control/subscriptions'; } && chown -R 8:8 '" + state + "' && chmod 755 '" +
                    state + "' && " + DoveadmCommand(maildir, state) +
                    "-f tab mailbox status messages '*' 2>>'" + state + "/stderr'";
  (void)::unlink((state + "/stderr").c_str());
  RunResult r = Shell(cmd);
  std::string failed = r.exit_code ? "\nexit code " + std::to_string(r.exit_code) : "";
  *err = ReadFile(state + "/stderr") + failed;
  std::map<std::string, uint64_t> out;
  std::istringstream lines(r.out);
  std::string line;
  std::getline(lines, line);  // header: "mailbox\tmessages"
  while (std::getline(lines, line)) {
    auto tab = line.find('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)] = std::stoull(line.substr(tab + 1));
  }
  if (subscribed) {
    subscribed->clear();
    RunResult l =
        Shell(DoveadmCommand(maildir, state) + "mailbox list -s 2>>'" + state + "/stderr'");
    std::istringstream names(l.out);
    while (std::getline(names, line)) subscribed->push_back(line);
    *err = ReadFile(state + "/stderr") + failed;
  }
  return out;
}

}  // namespace

std::map<std::string, uint64_t> DoveadmCounts(const std::string& maildir, std::string* err) {
  TempDir t("mvdove");
  return Counts(maildir, t.path(), err, nullptr);
}

std::map<std::string, uint64_t> DoveadmCountsKeepingState(const std::string& maildir,
                                                          const std::string& state,
                                                          std::string* err,
                                                          std::vector<std::string>* subscribed) {
  return Counts(maildir, state, err, subscribed);
}

}  // namespace mv::testing
