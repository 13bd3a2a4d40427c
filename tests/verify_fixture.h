// Shared setup for the verify, check and fault tests: a generated Mailu-like volume backed up
// once, and tools to damage the repository the way disks and people do (the damage is done with
// ordinary tools - tar, truncate, a byte flip - or through storage's own encoders, never by
// calling into verify).
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "storage/repository.h"
#include "test_util.h"

namespace mv::testing {

inline nlohmann::json ParseJson(const RunResult& r) {
  if (r.out.empty()) {
    ADD_FAILURE() << "no JSON on stdout; stderr: " << r.err;
    return {};
  }
  return nlohmann::json::parse(r.out);
}

inline void Sql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

class VerifyFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    users_ = MakeMailVolume(vol_.path(), {.users = 2, .messages_per_user = 24, .seed = 7});
    ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0);
    Backup();
  }
  std::string repo() const { return repo_ / "r"; }
  std::vector<std::string> SourceArgs() const {
    return {"--source", "mail=" + vol_ / "mail", "--source", "data=" + vol_ / "data",
            "--source", "dkim=" + vol_ / "dkim"};
  }
  void Backup() {
    std::vector<std::string> args = {"backup", "--repo", repo(), "--json", "--tag", "stack=mailu"};
    for (auto& s : SourceArgs()) args.push_back(s);
    RunResult r = RunMailvault(args);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  }
  // verify --json against the live volume.
  RunResult Verify(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"verify", "--repo",    repo(),
                                     "--json", "--scratch", scratch_.path()};
    for (auto& s : SourceArgs()) args.push_back(s);
    for (auto& e : extra) args.push_back(e);
    return RunMailvault(args);
  }
  RunResult Check(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"check", "--repo", repo(), "--json"};
    for (auto& e : extra) args.push_back(e);
    return RunMailvault(args);
  }

  std::unique_ptr<storage::Repository> OpenRepo() {
    auto r = storage::Repository::Open(repo());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  storage::Snapshot Latest(storage::Repository& r) {
    auto id = r.ResolveSnapshot("latest");
    EXPECT_TRUE(id.ok());
    auto s = r.LoadSnapshot(*id);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return *s;
  }
  // The manifest entry of the first message in `user`'s INBOX cur/.
  storage::FileEntry FirstMessage(const storage::Snapshot& s, int user = 0) {
    std::string prefix = "mail/" + users_[user] + "/cur/";
    for (const auto& f : s.files)
      if (f.path.rfind(prefix, 0) == 0 && f.type == storage::FileType::kRegular) return f;
    ADD_FAILURE() << "no message under " << prefix;
    return {};
  }
  std::string PackOf(storage::Repository& r, const storage::BlobId& blob) {
    auto blobs = r.OpenBlobReader();
    EXPECT_TRUE(blobs.ok()) << blobs.status().ToString();
    if (!blobs.ok()) return "";
    auto loc = (*blobs)->Find(blob);
    EXPECT_TRUE(loc.has_value());
    return r.PackPath(loc->pack);
  }
  static std::string Unique(const std::string& path) {
    std::string n = path.substr(path.find_last_of('/') + 1);
    return n.substr(0, n.find(":2,"));
  }
  // Rewrites a pack with `tar`, keeping its file name, after `edit` changed the extracted blobs.
  void RewritePack(const std::string& pack,
                   const std::function<void(const std::string& dir)>& edit) {
    TempDir x("mvpack");
    ASSERT_EQ(Shell("cd '" + x.path() + "' && tar --zstd -xf '" + pack + "'").exit_code, 0);
    edit(x.path());
    ASSERT_EQ(Shell("cd '" + x.path() + "' && tar --zstd -cf '" + pack + ".new' * && mv '" + pack +
                    ".new' '" + pack + "'")
                  .exit_code,
              0);
  }

  TempDir vol_{"mvvol"}, repo_{"mvrepo"}, scratch_{"mvscratch"};
  std::vector<std::string> users_;
};

}  // namespace mv::testing
