// Command-line conventions (issue #11, "CLI conventions"): a mistyped command says so and
// suggests the nearest; `help [COMMAND]` and `version` work; `--json` before the command is
// accepted, and a usage error with --json is JSON too; the command list has one line each.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace mv::testing {
namespace {

TEST(CliConventions, AMistypedCommandIsNamedWithTheNearestOne) {
  RunResult r = RunMailvault({"restor"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command 'restor'; did you mean 'restore'?"), std::string::npos)
      << r.err;
  RunResult s = RunMailvault({"snapshot", "--repo", "/nonexistent"});
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_NE(s.err.find("did you mean 'snapshots'?"), std::string::npos) << s.err;
  RunResult x = RunMailvault({"frobnicate"});
  EXPECT_EQ(x.exit_code, 2);
  EXPECT_NE(x.err.find("unknown command 'frobnicate'"), std::string::npos) << x.err;
  EXPECT_EQ(x.err.find("did you mean"), std::string::npos) << "nothing is near: " << x.err;
  EXPECT_NE(x.err.find("restore"), std::string::npos) << "the commands are listed: " << x.err;
  RunResult j = RunMailvault({"restor", "--json"});
  EXPECT_EQ(j.exit_code, 2);
  auto doc = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << j.out;
  EXPECT_EQ(doc["code"], "usage");
}

TEST(CliConventions, HelpAndVersionWorkAsCommands) {
  RunResult h = RunMailvault({"help"});
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find("Subcommands:"), std::string::npos) << h.out;
  RunResult hr = RunMailvault({"help", "restore"});
  EXPECT_EQ(hr.exit_code, 0) << hr.err;
  EXPECT_EQ(hr.out, RunMailvault({"restore", "--help"}).out);
  EXPECT_NE(hr.out.find("--include"), std::string::npos);
  EXPECT_EQ(RunMailvault({"help", "restor"}).exit_code, 2);
  RunResult v = RunMailvault({"version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out, RunMailvault({"--version"}).out);
  EXPECT_EQ(v.out.rfind("mailvault ", 0), 0u) << v.out;
}

TEST(CliConventions, JsonBeforeTheCommandIsAcceptedAndUsageErrorsAreJsonToo) {
  TempDir repo("mvcli");
  ASSERT_EQ(RunMailvault({"init", "--repo", repo / "r"}).exit_code, 0);
  RunResult r = RunMailvault({"--json", "snapshots", "--repo", repo / "r"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out, nullptr, false).is_array()) << r.out;
  RunResult bad = RunMailvault({"--json", "snapshots", "--repo", repo / "r", "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  auto doc = nlohmann::json::parse(bad.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << bad.out;
  EXPECT_NE(doc["error"].get<std::string>().find("--no-such-flag"), std::string::npos);
}

TEST(CliConventions, TheCommandListHasOneShortLineEach) {
  RunResult h = RunMailvault({"--help"});
  ASSERT_EQ(h.exit_code, 0);
  std::string list = h.out.substr(h.out.find("Subcommands:"));
  std::istringstream in(list);
  std::string line;
  int commands = 0;
  std::getline(in, line);  // the heading
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    EXPECT_EQ(line.rfind("  ", 0), 0u) << "not a command line: '" << line << "'";
    EXPECT_NE(line[2], ' ') << "a continuation line: '" << line << "'";
    EXPECT_LE(line.size(), 120u) << line;
    commands++;
  }
  EXPECT_GE(commands, 15);
  EXPECT_NE(list.find("agent                       Run as the backup sidecar"), std::string::npos)
      << list;
}

}  // namespace
}  // namespace mv::testing
