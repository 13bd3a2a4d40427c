// Stack backup/restore orchestration: hook order, a failed pre-hook aborting only its stack,
// post-hooks always running, tags, and restores into the live volumes. Real repository, real
// RunBackup/RunRestore, real directories as volumes. The hook executor is a stand-in that
// records calls (no dockerd in unit tests); real exec is covered by docker_exec_test's E2E case
// and the swarm e2e suite.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/stack/stack_ops.h"
#include "agent/cli/stack_report.h"
#include "storage/repository.h"
#include "test_util.h"

namespace mv::agent {
namespace {

using mv::testing::ReadFile;
using mv::testing::TempDir;
using mv::testing::WriteFile;
namespace fs = std::filesystem;

struct Call {
  std::string service, command;
};

class StackOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(storage::Repository::Init(tmp_ / "repo").ok());
    auto r = storage::Repository::Open(tmp_ / "repo");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
    for (const char* v : {"mailu_data", "mailu_mail", "web_site"}) {
      fs::create_directories(tmp_ / v);
      node_.mountpoints[v] = tmp_ / v;
    }
    WriteFile(tmp_ / "mailu_data/main.db.other", "not selected");
    WriteFile(tmp_ / "mailu_mail/alice@example.org/cur/1.msg", "Subject: one\n\nhello\n");
    WriteFile(tmp_ / "web_site/index.html", "<html>");
    node_.node_id = "n1";
    for (const char* s : {"mailu_admin", "mailu_imap", "web_app"})
      node_.containers[s] = {std::string("ctr-") + s};
  }

  ServiceSpec Svc(const std::string& name, const std::string& stack,
                  std::map<std::string, std::string> labels, const std::string& vol,
                  const std::string& target) {
    ServiceSpec s;
    s.name = name;
    s.stack = stack;
    s.labels = std::move(labels);
    s.mounts.push_back({"volume", vol, target, false});
    return s;
  }

  void MakePlan(std::map<std::string, std::string> admin_extra = {}) {
    std::map<std::string, std::string> admin = {{"backupbot.backup", "true"},
                                                {"backupbot.backup.pre-hook", "dump"},
                                                {"backupbot.backup.post-hook", "rm dump"},
                                                {"backupbot.backup.volumes.data.path", "dump.sql"},
                                                {"backupbot.restore.pre-hook", "stop writes"},
                                                {"backupbot.restore.post-hook", "import dump"},
                                                {"coop-cloud.mailu.version", "2.0.1+2.0"}};
    for (auto& [k, v] : admin_extra) admin[k] = v;
    std::vector<ServiceSpec> specs = {
        Svc("mailu_admin", "mailu", admin, "mailu_data", "/data"),
        Svc("mailu_imap", "mailu", {{"backupbot.backup.post-hook", "imap post"}}, "mailu_mail",
            "/mail"),
        Svc("web_app", "web",
            {{"backupbot.backup", "true"}, {"backupbot.backup.post-hook", "web post"}}, "web_site",
            "/srv")};
    PlanOptions po;
    plan_ = BuildPlan(specs, &node_, po);
  }

  // Records every hook; "dump" writes the dump into the data volume as a real hook would.
  HookExecutor Executor() {
    return [this](const std::string& container, const std::string& service,
                  const std::string& cmd) -> Result<hooks::ExecResult> {
      calls_.push_back({service, cmd});
      EXPECT_EQ(container, "ctr-" + service);
      hooks::ExecResult r;
      r.exit_code = exit_codes_.count(cmd) ? exit_codes_[cmd] : 0;
      r.timed_out = cmd == "hang";
      if (cmd == "dump" && r.exit_code == 0) WriteFile(tmp_ / "mailu_data/dump.sql", "INSERT 1;\n");
      return r;
    };
  }

  template <class Opts>
  Opts Common() {
    Opts o;
    o.plan = &plan_;
    o.executor = Executor();
    return o;
  }

  std::vector<std::string> Commands() const {
    std::vector<std::string> out;
    for (const auto& c : calls_) out.push_back(c.command);
    return out;
  }

  TempDir tmp_{"mv-stackops"};
  std::unique_ptr<storage::Repository> repo_;
  NodeState node_;
  Plan plan_;
  std::vector<Call> calls_;
  std::map<std::string, int> exit_codes_;
};

TEST_F(StackOpsTest, StackBackupRunsPreHooksThenSnapshotsThenPostHooksWithTags) {
  MakePlan();
  auto o = Common<StackBackupOptions>();
  o.stack = "mailu";
  o.base.host = "mx1";
  auto report = BackupStacks(*repo_, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->stacks.size(), 1u);
  const StackBackupOutcome& out = report->stacks[0];
  EXPECT_EQ(out.status, StackStatus::kOk) << out.message;
  EXPECT_EQ(Commands(), (std::vector<std::string>{"dump", "rm dump", "imap post"}));
  ASSERT_TRUE(out.backup.has_value());
  auto snap = repo_->LoadSnapshot(out.backup->snapshot_id);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  const auto& tags = snap->meta.tags;
  EXPECT_EQ(tags.at("stack"), "mailu");
  EXPECT_EQ(tags.at("service"), "admin,imap");
  EXPECT_EQ(tags.at("volume"), "data,mail");
  EXPECT_EQ(tags.at("host"), "mx1");
  EXPECT_EQ(tags.at("version"), "2.0.1+2.0");
  ASSERT_EQ(tags.count("hook.backup-pre.mailu_admin"), 1u) << "the pre-hook's result is recorded";
  EXPECT_EQ(tags.at("hook.backup-pre.mailu_admin").rfind("ok ", 0), 0u)
      << tags.at("hook.backup-pre.mailu_admin");
  std::set<std::string> paths;
  for (const auto& f : snap->files) paths.insert(f.path);
  EXPECT_TRUE(paths.count("data/dump.sql")) << "the pre-hook's dump must be in the snapshot";
  EXPECT_FALSE(paths.count("data/main.db.other")) << "only the selected path is backed up";
  EXPECT_TRUE(paths.count("mail/alice@example.org/cur/1.msg"));
}

TEST_F(StackOpsTest, FailedPreHookAbortsOnlyThatStackAndPostHooksStillRun) {
  MakePlan();
  exit_codes_["dump"] = 3;
  auto report = BackupStacks(*repo_, Common<StackBackupOptions>());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->stacks.size(), 2u);
  const auto& mailu = report->stacks[0];
  EXPECT_EQ(mailu.stack, "mailu");
  EXPECT_EQ(mailu.status, StackStatus::kFailed);
  EXPECT_FALSE(mailu.backup.has_value());
  EXPECT_NE(mailu.message.find("backup pre-hook of mailu_admin failed: exit code 3"),
            std::string::npos);
  EXPECT_EQ(report->stacks[1].status, StackStatus::kOk);
  EXPECT_TRUE(report->AnyFailed());
  EXPECT_EQ(Commands(), (std::vector<std::string>{"dump", "rm dump", "imap post", "web post"}));
  auto snaps = repo_->ListSnapshots();
  ASSERT_TRUE(snaps.ok());
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ(snaps->at(0).tags.at("stack"), "web");
}

TEST_F(StackOpsTest, TimedOutPreHookFailsTheStackAndSaysSo) {
  MakePlan({{"backupbot.backup.pre-hook", "hang"}});
  auto o = Common<StackBackupOptions>();
  o.stack = "mailu";
  auto report = BackupStacks(*repo_, o);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->stacks[0].status, StackStatus::kFailed);
  EXPECT_NE(report->stacks[0].message.find("timed out"), std::string::npos);
}

TEST_F(StackOpsTest, LabelErrorsFailTheStackWithoutRunningHooks) {
  MakePlan({{"backupbot.backup.volumes.data.path", "../etc"}});
  auto o = Common<StackBackupOptions>();
  o.stack = "mailu";
  auto report = BackupStacks(*repo_, o);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->stacks[0].status, StackStatus::kFailed);
  EXPECT_NE(report->stacks[0].message.find("contains '..'"), std::string::npos);
  EXPECT_TRUE(calls_.empty());
}

TEST_F(StackOpsTest, NamedStackMustExistAndBeEnabled) {
  MakePlan({{"backupbot.backup", "false"}});
  auto o = Common<StackBackupOptions>();
  o.stack = "mailu";
  auto report = BackupStacks(*repo_, o);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->stacks[0].status, StackStatus::kFailed);
  EXPECT_NE(report->stacks[0].message.find("not enabled"), std::string::npos);
  o.stack = "nosuch";
  EXPECT_EQ(BackupStacks(*repo_, o).status().code(), Code::kNotFound);
}

TEST_F(StackOpsTest, RestoreBringsBackDeletedFilesIntoTheLiveVolumesBetweenRestoreHooks) {
  MakePlan();
  auto b = Common<StackBackupOptions>();
  b.stack = "mailu";
  auto report = BackupStacks(*repo_, b);
  ASSERT_TRUE(report.ok() && report->stacks[0].backup);
  std::string id = report->stacks[0].backup->snapshot_id;
  fs::remove_all(tmp_ / "mailu_mail/alice@example.org");
  WriteFile(tmp_ / "mailu_mail/bob@example.org/new/2.msg", "arrived after the backup");
  calls_.clear();

  auto r = Common<StackRestoreOptions>();
  r.base.snapshot = id;
  r.base.dry_run = true;
  auto dry = RestoreStack(*repo_, r);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  EXPECT_TRUE(calls_.empty()) << "a dry run runs no hooks";
  EXPECT_FALSE(fs::exists(tmp_ / "mailu_mail/alice@example.org/cur/1.msg"));

  r.base.dry_run = false;
  auto out = RestoreStack(*repo_, r);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->stack, "mailu");  // from the snapshot's tag
  EXPECT_EQ(out->status, StackStatus::kOk) << out->message;
  EXPECT_EQ(out->targets.at("mail"), tmp_ / "mailu_mail");
  EXPECT_EQ(Commands(), (std::vector<std::string>{"stop writes", "import dump"}));
  EXPECT_EQ(ReadFile(tmp_ / "mailu_mail/alice@example.org/cur/1.msg"), "Subject: one\n\nhello\n");
  EXPECT_EQ(ReadFile(tmp_ / "mailu_mail/bob@example.org/new/2.msg"), "arrived after the backup");
}

TEST_F(StackOpsTest, RestoreFiltersByVolumeAndRejectsUnknownNames) {
  MakePlan();
  auto b = Common<StackBackupOptions>();
  b.stack = "mailu";
  auto report = BackupStacks(*repo_, b);
  ASSERT_TRUE(report.ok() && report->stacks[0].backup);
  auto r = Common<StackRestoreOptions>();
  r.base.snapshot = report->stacks[0].backup->snapshot_id;
  r.volume = "mail";
  calls_.clear();
  auto out = RestoreStack(*repo_, r);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->targets.size(), 1u);
  EXPECT_TRUE(calls_.empty()) << "imap has no restore hooks; admin's volume is not restored";
  r.volume = "nope";
  auto bad = RestoreStack(*repo_, r);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("nothing to restore"), std::string::npos);
}

TEST_F(StackOpsTest, JsonReportAndExitCodeSayWhichStackFailedAndWhy) {
  MakePlan();
  exit_codes_["dump"] = 3;
  CliContext ctx;
  ctx.json = true;
  ctx.quiet = true;
  ::testing::internal::CaptureStdout();
  int rc = RunAndReportStackBackup(ctx, *repo_, Common<StackBackupOptions>());
  auto j = nlohmann::json::parse(::testing::internal::GetCapturedStdout());
  EXPECT_EQ(rc, kExitError);
  ASSERT_EQ(j["stacks"].size(), 2u);
  EXPECT_EQ(j["stacks"][0]["stack"], "mailu");
  EXPECT_EQ(j["stacks"][0]["status"], "failed");
  EXPECT_EQ(j["stacks"][0]["hooks"][0]["exit_code"], 3);
  EXPECT_EQ(j["stacks"][0]["hooks"][1]["phase"], "backup post-hook");
  EXPECT_EQ(j["stacks"][1]["status"], "ok");
  EXPECT_TRUE(j["stacks"][1].contains("snapshot"));
}

}  // namespace
}  // namespace mv::agent
