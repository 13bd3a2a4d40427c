// Shared test helpers: temp dirs, a small deterministic Mailu-like volume generator (the
// project's tests must not depend on ../shared), tree listings for bit-exact comparisons, and
// a runner for the real mailvault binary.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mv::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "mvtest");
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

struct VolumeSpec {
  int users = 3;
  int messages_per_user = 40;
  uint32_t seed = 1;
  bool big_attachment = false;  // one ~6 MiB message (chunked)
};

// Writes <root>/mail/<user@domain>/{cur,new,tmp} with folders .Sent .Trash .Archive.2024,
// dovecot files, <root>/data/main.db (domain, user, alias tables) and <root>/dkim/*.key.
// Returns the user addresses.
std::vector<std::string> MakeMailVolume(const std::string& root, const VolumeSpec& spec);
// A message file body (RFC 5322-like), deterministic in `n`.
std::string MessageText(uint32_t n, size_t approx_size);
// A Maildir file name as dovecot writes it.
std::string MaildirName(uint32_t n, size_t size, const std::string& flags, bool in_new);

// path -> "type mode uid gid size mtime_ns hash|target", for every entry below `root`
// (the root itself excluded).
std::map<std::string, std::string> ListTree(const std::string& root);
// Human-readable differences between two listings ("" when equal), capped in length.
std::string DiffTrees(const std::map<std::string, std::string>& a,
                      const std::map<std::string, std::string>& b);

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs the mailvault binary with `args` (no shell), MAILVAULT_REPO unset.
RunResult RunMailvault(const std::vector<std::string>& args);
// Runs a shell command, returning its exit code and stdout.
RunResult Shell(const std::string& cmd);

// The --json output of a run. Throws on invalid JSON (invalid UTF-8 included): a test failure.
nlohmann::json Json(const RunResult& r);

// A fresh repository (repo()) with a volume directory and a restore target beside it.
class RepoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0); }
  std::string repo() const { return repo_ / "r"; }
  RunResult Backup(const std::string& source) {
    return RunMailvault({"backup", "--repo", repo(), "--json", "--source", source});
  }
  RunResult Restore(const std::string& snap, const std::string& target) {
    return RunMailvault(
        {"restore", "--repo", repo(), "--snapshot", snap, "--target", target, "--json"});
  }
  TempDir vol_{"mvvol"}, repo_{"mvrepo"}, out_{"mvout"};
};

void WriteFile(const std::string& path, const std::string& data, int mode = 0644);
std::string ReadFile(const std::string& path);
uint64_t DirBytes(const std::string& dir);  // sum of file sizes below dir

// dovecot's own reader (doveadm, no daemon, as the mail user uid 8, its index and control files
// in a temp directory) on the Maildir `maildir`: folder name as dovecot shows it ("INBOX",
// "Sent", "Archive.2024") -> messages. Its stderr (and a non-zero exit) goes to *err: doveadm
// exits 0 even when it prints errors, so a caller fails on a non-empty *err.
std::map<std::string, uint64_t> DoveadmCounts(const std::string& maildir, std::string* err);

// The same, as a live server would see the mailbox over time: its index and control files
// (dovecot-uidlist included) stay in `state` between calls, so a second call after a change
// logs what Dovecot logs about it ("Fixed a duplicate", "Expunged message reappeared") in *err.
// The mailbox's `subscriptions` file is copied into the control directory first (Dovecot reads
// it there), and *subscribed gets `doveadm mailbox list -s` when not null.
std::map<std::string, uint64_t> DoveadmCountsKeepingState(const std::string& maildir,
                                                          const std::string& state,
                                                          std::string* err,
                                                          std::vector<std::string>* subscribed);

}  // namespace mv::testing
