// The sidecar loop (agent/sidecar/sidecar.h): one run at a time, health for the Docker healthcheck,
// clean stop on SIGTERM. Real threads, real signals, real files in a temporary directory; the
// backup run itself is injected (a function that sleeps and returns an exit code), because the
// real one needs a swarm: tests/e2e/swarm_e2e.sh runs the real agent image there.
#include "agent/sidecar/sidecar.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/cli/cli.h"

namespace mv::agent {
namespace {

using namespace std::chrono;
namespace stdfs = std::filesystem;

class SidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() /
           ("mv-sidecar-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::remove_all(dir_);
    stdfs::create_directories(dir_);
    opts_.health_file = (dir_ / "health.json").string();
    opts_.report_dir = (dir_ / "reports").string();
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  nlohmann::json Health() {
    std::ifstream in(opts_.health_file);
    return nlohmann::json::parse(in);
  }
  // Sends SIGTERM to the thread that runs the loop (this one) once `ready` (by then the loop
  // has blocked the signal, so it is queued for sigtimedwait instead of killing the test). To
  // the thread, not the process: threads other tests left in this process do not block it, and
  // a process-directed signal could be delivered to one of them. In `mailvault agent` the loop
  // blocks the signals before any thread exists, so every thread inherits the mask.
  std::thread TermWhen(std::function<bool()> ready) {
    pthread_t loop_thread = ::pthread_self();
    return std::thread([ready, loop_thread] {
      for (int i = 0; i < 500 && !ready(); ++i) std::this_thread::sleep_for(milliseconds{10});
      ::pthread_kill(loop_thread, SIGTERM);
    });
  }
  // Runs the loop; returns the last run's exit code, or -1 when no run happened.
  int Loop(const std::function<int()>& run) {
    LoopResult r = RunAgentLoop(
        opts_,
        [&run] {
          int code = run();
          return RunResult{code == kExitOk        ? RunOutcome::kOk
                           : code == kExitPartial ? RunOutcome::kPartial
                                                  : RunOutcome::kFailed,
                           code};
        },
        [this](const std::string& l) { log_.push_back(l); });
    EXPECT_NE(r.end, LoopEnd::kAbandoned);
    EXPECT_EQ(r.end, opts_.once ? LoopEnd::kOnceDone : LoopEnd::kStopped);
    return r.last ? r.last->exit_code : -1;
  }

  stdfs::path dir_;
  AgentOptions opts_;
  std::vector<std::string> log_;
};

TEST_F(SidecarTest, OnceRunsOneBackupAndReturnsItsExitCode) {
  opts_.once = true;
  int runs = 0;
  EXPECT_EQ(Loop([&] {
              ++runs;
              return kExitPartial;
            }),
            kExitPartial);
  EXPECT_EQ(runs, 1);
  auto h = Health();
  EXPECT_EQ(h["state"], "stopped");
  EXPECT_EQ(h["runs"], 1);
  EXPECT_EQ(h["last_run"]["exit_code"], kExitPartial);
  EXPECT_EQ(h["last_run"]["result"], "partial");
  ASSERT_EQ(std::distance(stdfs::directory_iterator(opts_.report_dir), {}), 1);
  auto report = *stdfs::directory_iterator(opts_.report_dir);
  EXPECT_EQ(report.path().filename().string().rfind("run-", 0), 0u);
}

TEST_F(SidecarTest, SigtermWhileIdleStopsAtOnceWithoutRunning) {
  opts_.schedule = CronSchedule::Parse("0 3 * * *").value();
  std::atomic<int> runs = 0;
  auto t0 = steady_clock::now();
  std::thread term = TermWhen([this] { return stdfs::exists(opts_.health_file); });
  EXPECT_EQ(Loop([&] {
              ++runs;
              return kExitOk;
            }),
            -1)
      << "no run";
  term.join();
  EXPECT_LT(steady_clock::now() - t0, seconds{3});
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(Health()["state"], "stopped");
  ASSERT_FALSE(log_.empty());
  EXPECT_EQ(log_.front().rfind("next backup at ", 0), 0u) << log_.front();
}

TEST_F(SidecarTest, SigtermDuringARunLetsItFinish) {
  opts_.once = true;
  std::atomic<bool> started = false, finished = false;
  std::thread term = TermWhen([&] { return started.load(); });
  int code = Loop([&] {
    started = true;
    std::this_thread::sleep_for(milliseconds{800});
    finished = true;
    return kExitOk;
  });
  term.join();
  EXPECT_EQ(code, kExitOk);
  EXPECT_TRUE(finished);
  EXPECT_EQ(Health()["last_run"]["result"], "ok");
}

TEST_F(SidecarTest, HealthCheckReadsWhatTheLoopWrote) {
  opts_.once = true;
  Loop([] { return kExitError; });
  std::string summary;
  Status st =
      CheckHealthFile(opts_.health_file, floor<seconds>(system_clock::now()), minutes{3}, &summary);
  EXPECT_FALSE(st.ok());  // stopped, and its last run failed
}

Seconds T(long long unix) { return Seconds{seconds{unix}}; }

TEST(HealthVerdict, HealthyBeforeTheFirstRun) {
  nlohmann::json h = {
      {"state", "idle"}, {"heartbeat_unix", 1000}, {"next_run", "2026-11-24T03:00:00Z"}};
  std::string s;
  ASSERT_TRUE(HealthVerdict(h, T(1010), seconds{180}, &s).ok());
  EXPECT_EQ(s, "healthy: idle, no run yet, next 2026-11-24T03:00:00Z");
}

TEST(HealthVerdict, PartialRunIsHealthyButSaysSo) {
  nlohmann::json h = {
      {"state", "idle"},
      {"heartbeat_unix", 1000},
      {"last_run",
       {{"exit_code", 3}, {"result", "partial"}, {"finished", "2026-11-23T03:04:00Z"}}}};
  std::string s;
  ASSERT_TRUE(HealthVerdict(h, T(1000), seconds{180}, &s).ok());
  EXPECT_EQ(s, "healthy: idle, last backup partial at 2026-11-23T03:04:00Z");
}

TEST(HealthVerdict, FailedLastRunIsUnhealthy) {
  nlohmann::json h = {
      {"state", "idle"},
      {"heartbeat_unix", 1000},
      {"failures_in_a_row", 2},
      {"last_run", {{"exit_code", 1}, {"result", "error"}, {"finished", "2026-11-23T03:04:00Z"}}}};
  std::string s;
  EXPECT_EQ(HealthVerdict(h, T(1000), seconds{180}, &s).message(),
            "the last backup failed (exit 1, finished 2026-11-23T03:04:00Z, 2 failure(s) in a "
            "row): see the agent's log");
}

TEST(HealthVerdict, SilentAgentIsUnhealthyEvenMidRun) {
  nlohmann::json h = {{"state", "running"}, {"heartbeat_unix", 1000}};
  std::string s;
  EXPECT_EQ(HealthVerdict(h, T(1181), seconds{180}, &s).message(),
            "no heartbeat since 1970-01-01T00:16:40Z (181 s): the agent is hung or gone");
  EXPECT_TRUE(HealthVerdict(h, T(1180), seconds{180}, &s).ok());
}

TEST(HealthVerdict, NotReadyForTheNextRunIsUnhealthyAndReadyIsSaid) {
  nlohmann::json h = {{"state", "idle"},
                      {"heartbeat_unix", 1000},
                      {"ready",
                       {{"ok", false},
                        {"checked", "2026-11-23T10:00:00Z"},
                        {"problem", "cannot talk to the Docker daemon"}}}};
  std::string s;
  EXPECT_EQ(HealthVerdict(h, T(1000), seconds{180}, &s).message(),
            "not ready for the next backup (checked 2026-11-23T10:00:00Z): cannot talk to the "
            "Docker daemon");
  h["ready"] = {{"ok", true}, {"checked", "2026-11-23T10:05:00Z"}, {"detail", "stack(s) mailu"}};
  ASSERT_TRUE(HealthVerdict(h, T(1000), seconds{180}, &s).ok());
  EXPECT_EQ(s, "healthy: idle, no run yet; ready: stack(s) mailu");
}

TEST_F(SidecarTest, ReadinessIsCheckedAtStartAndWhileIdleAndLoggedWhenItChanges) {
  opts_.schedule = CronSchedule::Parse("0 3 * * *").value();
  opts_.check_every = seconds{1};
  std::atomic<int> checks = 0;
  opts_.readiness = [&]() -> Result<std::string> {
    if (++checks < 3) return Status::NotFound("no stack is enabled");
    return std::string("stack(s) mailu");
  };
  std::thread term = TermWhen([&] { return checks.load() >= 4; });
  EXPECT_EQ(Loop([] { return kExitOk; }), -1);
  term.join();
  int not_ready = 0, ready = 0;
  for (const auto& l : log_) {
    not_ready += l.find("not ready for the next backup: no stack is enabled") != std::string::npos;
    ready += l.find("ready for the next backup: stack(s) mailu") == 0;
  }
  EXPECT_EQ(not_ready, 1) << "a problem that stays is logged once";
  EXPECT_EQ(ready, 1);
  EXPECT_EQ(Health()["ready"]["ok"], true);
}

TEST(HealthVerdict, MissingOrForeignFileIsUnhealthy) {
  std::string s;
  EXPECT_FALSE(CheckHealthFile("/nonexistent/health.json", T(0), seconds{180}, &s).ok());
  EXPECT_FALSE(HealthVerdict(nlohmann::json::object(), T(0), seconds{180}, &s).ok());
}

}  // namespace
}  // namespace mv::agent
