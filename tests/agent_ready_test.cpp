// `mailvault agent` checks what its next run needs before the run (agent/cli/cmd_agent.cpp
// NextRunReady): the repository opens and takes writes, the Docker daemon answers, a stack is
// enabled. Its verdict is in the health file, so `agent --health-check` (the container's
// HEALTHCHECK) fails at once instead of at 03:00. Through the real binary. A daemon that answers
// and stacks that are enabled need a swarm: tests/e2e/sidecar.sh checks the healthy side there.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "child_process.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class AgentReady : public ::testing::Test {
 protected:
  std::string health() const { return dir_ / "health.json"; }
  std::string repo() const { return dir_ / "repo"; }
  // The agent idles until 03:00; its daemon is a socket nobody listens on.
  std::vector<std::string> AgentArgs(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {"agent",      "--repo",        repo(),
                                  "--schedule", "0 3 * * *",     "--health-file",
                                  health(),     "--docker-host", "unix://" + (dir_ / "no.sock")};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Waits for the agent's first readiness verdict in the health file.
  bool WaitForVerdict() {
    return PollUntil(
        [&] {
          return stdfs::exists(health()) &&
                 ReadFile(health()).find("\"ready\"") != std::string::npos;
        },
        std::chrono::seconds(30));
  }
  RunResult HealthCheck() {
    return RunMailvault({"agent", "--health-check", "--health-file", health()});
  }
  TempDir dir_{"mvready"};
};

TEST_F(AgentReady, AMissingRepositoryMakesTheIdleAgentUnhealthyAndSaysHowToCreateIt) {
  BackgroundMailvault agent(AgentArgs());
  ASSERT_TRUE(WaitForVerdict()) << agent.err();
  RunResult h = HealthCheck();
  EXPECT_EQ(h.exit_code, 1) << h.out;
  EXPECT_EQ(h.out.rfind("unhealthy: ", 0), 0u) << h.out;
  EXPECT_NE(h.out.find("not ready for the next backup (checked "), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("or start the agent with --init-if-missing"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("no mailvault repository here"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("mailvault init --repo " + repo()), std::string::npos) << h.out;
  EXPECT_NE(agent.err().find("not ready for the next backup"), std::string::npos)
      << "the agent's log says it too: " << agent.err();
  EXPECT_FALSE(agent.exited()) << "it keeps running: the mount may come later";
  EXPECT_FALSE(stdfs::exists(repo() + "/config")) << "nothing created without --init-if-missing";
}

TEST_F(AgentReady, InitIfMissingCreatesTheRepositoryThenAnUnreachableDaemonIsTheReason) {
  BackgroundMailvault agent(AgentArgs({"--init-if-missing"}));
  ASSERT_TRUE(WaitForVerdict()) << agent.err();
  EXPECT_NE(agent.err().find("created the repository " + repo()), std::string::npos) << agent.err();
  RunResult ls = RunMailvault({"snapshots", "--repo", repo()});
  EXPECT_EQ(ls.exit_code, 0) << "a usable, empty repository: " << ls.err;
  RunResult h = HealthCheck();
  EXPECT_EQ(h.exit_code, 1) << h.out;
  EXPECT_NE(h.out.find("cannot talk to the Docker daemon at unix://" + (dir_ / "no.sock")),
            std::string::npos)
      << h.out;
  EXPECT_EQ(h.out.find("no mailvault repository"), std::string::npos) << h.out;
}

TEST_F(AgentReady, InitIfMissingLeavesAnExistingRepositoryAlone) {
  ASSERT_EQ(RunMailvault({"init", "--repo", repo()}).exit_code, 0);
  std::string config = ReadFile(repo() + "/config");
  BackgroundMailvault agent(AgentArgs({"--init-if-missing"}));
  ASSERT_TRUE(WaitForVerdict()) << agent.err();
  EXPECT_EQ(ReadFile(repo() + "/config"), config);
  EXPECT_EQ(agent.err().find("created the repository"), std::string::npos) << agent.err();
}

}  // namespace
}  // namespace mv::testing
