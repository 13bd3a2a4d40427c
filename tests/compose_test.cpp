// Compose files before deploy: interpolation, list and map label forms, several -c files
// merged in order, and the same label rules as a live swarm.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/stack/compose.h"
#include "test_util.h"

namespace mv::agent {
namespace {

VarLookup Vars(std::map<std::string, std::string> vars) {
  return [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string Interp(const std::string& s, std::map<std::string, std::string> vars) {
  auto r = Interpolate(s, Vars(vars));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : "";
}

TEST(ComposeInterpolation, FollowsTheComposeSpec) {
  std::map<std::string, std::string> v = {{"DOMAIN", "example.org"}, {"EMPTY", ""}};
  EXPECT_EQ(Interp("mail.${DOMAIN}", v), "mail.example.org");
  EXPECT_EQ(Interp("$DOMAIN/x", v), "example.org/x");
  EXPECT_EQ(Interp("${MISSING:-fallback}", v), "fallback");
  EXPECT_EQ(Interp("${EMPTY:-fallback}", v), "fallback");
  EXPECT_EQ(Interp("${EMPTY-fallback}", v), "");
  EXPECT_EQ(Interp("${MISSING-${DOMAIN}}", v), "example.org");
  EXPECT_EQ(Interp("${DOMAIN:+set}${MISSING:+set}", v), "set");
  EXPECT_EQ(Interp("cost $$5 and $$HOME", v), "cost $5 and $HOME");
  std::vector<std::string> unset;
  EXPECT_EQ(Interpolate("a${NOPE}b", Vars(v), &unset).value(), "ab");
  EXPECT_EQ(unset, std::vector<std::string>{"NOPE"});
  auto required = Interpolate("${SECRET:?set SECRET first}", Vars(v));
  ASSERT_FALSE(required.ok());
  EXPECT_NE(required.status().message().find("SECRET is unset: set SECRET first"),
            std::string::npos);
  EXPECT_FALSE(Interpolate("${UNTERMINATED", Vars(v)).ok());
  // Found by tests/fuzz/compose_fuzz.cpp: a colon with nothing after it threw out_of_range.
  auto bare_colon = Interpolate("coop-cloud.${s:}.version", Vars(v));
  ASSERT_FALSE(bare_colon.ok());
  EXPECT_NE(bare_colon.status().message().find("'${s:}'"), std::string::npos)
      << bare_colon.status().message();
}

TEST(ComposeEnvFile, ReadsKeyValueLinesQuotesAndExport) {
  auto vars =
      ParseEnvFile("# comment\n\nDOMAIN=example.org\nexport A='x y'\nB=\"q\"\r\nC=\n", ".env");
  ASSERT_TRUE(vars.ok());
  EXPECT_EQ((*vars)["DOMAIN"], "example.org");
  EXPECT_EQ((*vars)["A"], "x y");
  EXPECT_EQ((*vars)["B"], "q");
  EXPECT_EQ((*vars)["C"], "");
  auto bad = ParseEnvFile("OK=1\njust words\n", "/srv/.env");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().path(), "/srv/.env");
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos);
}

const char* kBase = R"(
version: "3.8"
services:
  admin:
    image: mailu/admin:${MAILU_VERSION:-2.0}
    volumes:
      - data:/data
      - ./certs:/certs:ro
    deploy:
      labels:
        backupbot.backup: "${ENABLE_BACKUP:-true}"
        backupbot.backup.pre-hook: "sqlite3 /data/main.db .dump > /data/dump.sql"
        backupbot.backup.volumes.data.path: "main.db,dump.sql"
  imap:
    image: mailu/dovecot
    labels:
      - backupbot.backup.volumes.mail=false
    volumes:
      - mail:/mail
      - type: volume
        source: shared
        target: /shared
      - /anon
    deploy:
      labels:
        - backupbot.backup.post-hook=echo done
volumes:
  data:
  mail:
  shared:
    external: true
)";

const char* kOverride = R"(
services:
  admin:
    volumes:
      - data2:/data
    deploy:
      labels:
        - backupbot.restore.post-hook=sqlite3 /data/main.db < /data/dump.sql
        - coop-cloud.${STACK_NAME}.version=1.4.0+2.0
volumes:
  data2:
    name: legacy_admin_data
)";

TEST(ComposeServices, MapAndListLabelsVolumesAndExternalNames) {
  std::vector<std::string> warnings;
  auto services = ComposeServices({{"compose.yml", kBase}}, "mailu", Vars({}), &warnings);
  ASSERT_TRUE(services.ok()) << services.status().ToString();
  ASSERT_EQ(services->size(), 2u);
  const ServiceSpec& admin = (*services)[0];
  EXPECT_EQ(admin.name, "mailu_admin");
  EXPECT_EQ(admin.labels.at("backupbot.backup"), "true");
  EXPECT_EQ(admin.mounts[0].source, "mailu_data");
  EXPECT_EQ(admin.mounts[1].type, "bind");
  const ServiceSpec& imap = (*services)[1];
  EXPECT_EQ(imap.labels.at("backupbot.backup.post-hook"), "echo done");
  EXPECT_EQ(imap.container_labels.at("backupbot.backup.volumes.mail"), "false");
  EXPECT_EQ(imap.mounts[1].source, "shared");
  EXPECT_TRUE(imap.mounts[1].external);
  EXPECT_TRUE(imap.mounts[2].source.empty());  // anonymous
}

TEST(ComposeServices, LaterFilesOverrideInOrderLikeStackDeploy) {
  auto services = ComposeServices({{"compose.yml", kBase}, {"compose.override.yml", kOverride}},
                                  "mailu", Vars({{"STACK_NAME", "mailu"}}), nullptr);
  ASSERT_TRUE(services.ok()) << services.status().ToString();
  const ServiceSpec& admin = (*services)[0];
  // Map labels of the first file and list labels of the second are merged key by key.
  EXPECT_EQ(admin.labels.at("backupbot.backup.pre-hook"),
            "sqlite3 /data/main.db .dump > /data/dump.sql");
  EXPECT_EQ(admin.labels.at("backupbot.restore.post-hook"),
            "sqlite3 /data/main.db < /data/dump.sql");
  EXPECT_EQ(admin.labels.at("coop-cloud.mailu.version"), "1.4.0+2.0");
  // The volume at /data is replaced (merged by target); the bind mount stays.
  ASSERT_EQ(admin.mounts.size(), 2u);
  EXPECT_EQ(admin.mounts[0].source, "legacy_admin_data");
  EXPECT_EQ(admin.mounts[1].target, "/certs");
}

TEST(ComposeServices, UndeclaredVolumeIsAnErrorNamingService) {
  auto r = ComposeServices({{"c.yml", "services:\n  app:\n    volumes: [ghost:/g]\n"}}, "s",
                           Vars({}), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("service s_app mounts volume 'ghost'"), std::string::npos);
}

TEST(ComposePlan, SameRulesAsTheLiveSwarmFromFilesOnDisk) {
  auto dir = std::filesystem::temp_directory_path() / ("mv-compose-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "compose.yml") << kBase;
  std::ofstream(dir / "compose.override.yml") << kOverride;
  std::ofstream(dir / ".env") << "STACK_NAME=mailu\nENABLE_BACKUP=True\n";
  ComposeOptions o;
  o.files = {(dir / "compose.yml").string(), (dir / "compose.override.yml").string()};
  o.env_file = (dir / ".env").string();
  o.stack = "mailu";
  auto plan = PlanFromCompose(o, {});
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->stacks.size(), 1u);
  const StackPlan& st = plan->stacks[0];
  EXPECT_TRUE(st.enabled);
  EXPECT_EQ(st.version, "1.4.0+2.0");
  bool saw_data = false;
  for (const auto& v : st.volumes) {
    EXPECT_TRUE(v.mountpoint.empty());
    // Labels name a volume by its Docker name without "<stack>_": the override renamed the
    // volume at /data, so the path label for "data" no longer selects anything in it.
    if (v.name == "legacy_admin_data") {
      saw_data = true;
      EXPECT_TRUE(v.backed_up);
      EXPECT_TRUE(v.paths.empty());
    }
  }
  EXPECT_TRUE(saw_data);
  bool misplaced = false, anonymous = false, stale_label = false;
  for (const auto& w : st.warnings) {
    misplaced |= w.find("MISPLACED LABEL: service mailu_imap") != std::string::npos;
    stale_label |= w.find("label backupbot.backup.volumes.data names a volume no service") !=
                   std::string::npos;
  }
  EXPECT_TRUE(stale_label);
  for (const auto& n : st.FindService("imap")->not_backed_up)
    anonymous |= n.find("anonymous volume at /anon") != std::string::npos;
  EXPECT_TRUE(misplaced);
  EXPECT_TRUE(anonymous);
  o.stack.clear();
  EXPECT_EQ(PlanFromCompose(o, {}).status().code(), Code::kInvalidArgument);
}

TEST(ComposePlan, AgreesWithTheLivePlanOfTheSameDeployedStack) {
  // mailu_engine.json was captured after `docker stack deploy -c mailu_compose.yml mailu`.
  std::string dir = std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/discovery/";
  ComposeOptions o;
  o.files = {dir + "mailu_compose.yml"};
  o.stack = "mailu";
  auto compose = PlanFromCompose(o, {});
  ASSERT_TRUE(compose.ok()) << compose.status().ToString();
  std::ifstream in(dir + "mailu_engine.json");
  auto j = nlohmann::json::parse(in);
  PlanOptions all_exist;
  all_exist.path_exists = [](const std::string&) { return true; };
  Plan live = PlanFromEngine({j["services"], j["containers"], j["tasks"], j["volumes"], j["info"]},
                             all_exist);
  const StackPlan& a = compose->stacks.at(0);
  const StackPlan& b = live.stacks.at(0);
  EXPECT_EQ(a.enabled, b.enabled);
  EXPECT_EQ(a.version, b.version);
  ASSERT_EQ(a.volumes.size(), b.volumes.size());
  for (size_t i = 0; i < a.volumes.size(); ++i) {
    EXPECT_EQ(a.volumes[i].name, b.volumes[i].name);
    EXPECT_EQ(a.volumes[i].docker_name, b.volumes[i].docker_name);
    EXPECT_EQ(a.volumes[i].external, b.volumes[i].external);
    EXPECT_EQ(a.volumes[i].paths, b.volumes[i].paths);
    EXPECT_EQ(a.volumes[i].backed_up, b.volumes[i].backed_up);
  }
  ASSERT_EQ(a.services.size(), b.services.size());
  for (size_t i = 0; i < a.services.size(); ++i) {
    EXPECT_EQ(a.services[i].name, b.services[i].name);
    EXPECT_EQ(a.services[i].hooks.backup_pre, b.services[i].hooks.backup_pre);
    EXPECT_EQ(a.services[i].not_backed_up, b.services[i].not_backed_up);
  }
  EXPECT_EQ(a.warnings, b.warnings);
}

}  // namespace
}  // namespace mv::agent

namespace mv::agent {
namespace {

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, from.size(), to);
  return s;
}

TEST(DiscoverCommand, PrintsTheWholePlanOfAComposeFile) {
  std::string src = std::string(MAILVAULT_SOURCE_DIR) + "/";
  auto r = mv::testing::RunMailvault({"discover", "--compose",
                                      src + "tests/data/discovery/mailu_compose.yml", "--stack",
                                      "mailu"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The golden file was reviewed by hand: hooks, selected paths, bind/tmpfs mounts, the
  // misplaced container label, the unknown key and the stale volume label are all there.
  EXPECT_EQ(Replace(r.out, src, ""),
            mv::testing::ReadFile(src + "tests/data/discovery/mailu_compose.discover.txt"));
}

TEST(DiscoverCommand, LabelErrorsExitOneAndNameTheService) {
  mv::testing::TempDir dir("mv-discover");
  mv::testing::WriteFile(dir / "c.yml",
                         "services:\n  app:\n    image: x\n    deploy:\n      labels:\n"
                         "        backupbot.backup: \"yes\"\n");
  auto r = mv::testing::RunMailvault({"discover", "-c", dir / "c.yml", "--stack", "s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("ERROR: service s_app: backupbot.backup='yes' must be true or false"),
            std::string::npos)
      << r.out;
  auto usage = mv::testing::RunMailvault({"discover", "-c", dir / "c.yml"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.err.find("--stack NAME is required with --compose"), std::string::npos);
}

}  // namespace
}  // namespace mv::agent
