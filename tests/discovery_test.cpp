// Discovery: backupbot v2 label rules applied to Engine-API-shaped JSON.
// mailu_engine.json was captured from a real dockerd 20.10 after deploying mailu_compose.yml;
// the smaller cases below build the same JSON shapes inline.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/stack/discovery.h"

namespace mv::agent {
namespace {

using nlohmann::json;
const char* kNode = "node-here";

json Mount(const std::string& type, const std::string& source, const std::string& target,
           const std::string& stack = "mailu") {
  json m = {{"Type", type}, {"Target", target}};
  if (!source.empty()) m["Source"] = source;
  if (type == "volume" && !stack.empty())
    m["VolumeOptions"] = {{"Labels", {{"com.docker.stack.namespace", stack}}}};
  return m;
}

json Service(const std::string& name, json labels, json mounts,
             json container_labels = json::object(), const std::string& stack = "mailu") {
  labels["com.docker.stack.namespace"] = stack;
  container_labels["com.docker.stack.namespace"] = stack;
  return {
      {"ID", "id-" + name},
      {"Spec",
       {{"Name", name},
        {"Labels", labels},
        {"TaskTemplate",
         {{"ContainerSpec",
           {{"Image", "local/busybox:1"}, {"Labels", container_labels}, {"Mounts", mounts}}}}}}}};
}

// An engine where every service has one running task on this node and every stack volume
// exists under /var/lib/docker/volumes.
EngineState Engine(json services) {
  EngineState st;
  st.services = services;
  st.info = {{"Name", "mx1"}, {"Swarm", {{"NodeID", kNode}, {"LocalNodeState", "active"}}}};
  st.containers = json::array();
  st.tasks = json::array();
  st.volumes = {{"Volumes", json::array()}};
  std::set<std::string> vols;
  for (const auto& s : services) {
    std::string name = s["Spec"]["Name"];
    st.containers.push_back({{"Id", "ctr-" + name},
                             {"State", "running"},
                             {"Labels", {{"com.docker.swarm.service.name", name}}}});
    st.tasks.push_back({{"ServiceID", s["ID"]}, {"NodeID", kNode}, {"DesiredState", "running"}});
    for (const auto& m : s["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"])
      if (m["Type"] == "volume" && m.contains("Source"))
        vols.insert(m["Source"].get<std::string>());
  }
  for (const auto& v : vols)
    st.volumes["Volumes"].push_back(
        {{"Name", v}, {"Mountpoint", "/var/lib/docker/volumes/" + v + "/_data"}});
  return st;
}

PlanOptions AllPathsExist() {
  PlanOptions o;
  o.path_exists = [](const std::string&) { return true; };
  return o;
}

bool AnyContains(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

const VolumePlan& Vol(const StackPlan& st, const std::string& name) {
  for (const auto& v : st.volumes)
    if (v.name == name) return v;
  ADD_FAILURE() << "no volume " << name;
  static VolumePlan none;
  return none;
}

TEST(Discovery, CapturedMailuStackGivesHostPathsSelectionsHooksAndEveryWarning) {
  std::ifstream in(std::string(MAILVAULT_SOURCE_DIR) + "/tests/data/discovery/mailu_engine.json");
  json j = json::parse(in);
  EngineState st{j["services"], j["containers"], j["tasks"], j["volumes"], j["info"]};
  Plan plan = PlanFromEngine(st, AllPathsExist());
  ASSERT_EQ(plan.stacks.size(), 1u);
  const StackPlan& mailu = plan.stacks[0];
  EXPECT_EQ(mailu.name, "mailu");
  EXPECT_TRUE(mailu.enabled);
  EXPECT_EQ(mailu.version, "1.2.3+2.0");
  EXPECT_TRUE(mailu.errors.empty());
  EXPECT_EQ(Vol(mailu, "mailu").mountpoint, "/var/lib/docker/volumes/mailu_mailu/_data");
  EXPECT_EQ(Vol(mailu, "mailu").paths, (std::vector<std::string>{"dump", "main.db"}));
  EXPECT_TRUE(Vol(mailu, "mail").paths.empty());
  EXPECT_TRUE(Vol(mailu, "shared_ext").external);
  const ServicePlan* admin = mailu.FindService("admin");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->placement, "this node");
  EXPECT_EQ(admin->containers.size(), 1u);
  EXPECT_EQ(admin->hooks.restore_post, "echo restored");
  EXPECT_TRUE(AnyContains(admin->not_backed_up, "bind mount /srv/mailu/certs -> /bindmnt"));
  EXPECT_TRUE(AnyContains(admin->not_backed_up, "tmpfs mount /scratch"));
  EXPECT_TRUE(AnyContains(mailu.warnings, "unknown label 'backupbot.backup.command'"));
  EXPECT_TRUE(AnyContains(mailu.warnings, "MISPLACED LABEL: service mailu_admin"));
  // The compose file says volumes.ext=false but the external volume is named shared_ext.
  EXPECT_TRUE(
      AnyContains(mailu.warnings, "backupbot.backup.volumes.ext names a volume no service"));
  EXPECT_TRUE(Vol(mailu, "shared_ext").backed_up);
}

TEST(Discovery, BackupLabelIsCaseInsensitiveAndOtherValuesAreErrorsNamingTheService) {
  json mounts = json::array({Mount("volume", "mailu_mail", "/mail")});
  Plan on = PlanFromEngine(
      Engine(json::array({Service("mailu_imap", {{"backupbot.backup", "TRUE"}}, mounts)})),
      AllPathsExist());
  EXPECT_TRUE(on.stacks[0].enabled);
  EXPECT_TRUE(on.stacks[0].volumes[0].backed_up);
  Plan off = PlanFromEngine(
      Engine(json::array({Service("mailu_imap", {{"backupbot.backup", "False"}}, mounts)})),
      AllPathsExist());
  EXPECT_FALSE(off.stacks[0].enabled);
  EXPECT_FALSE(off.stacks[0].volumes[0].backed_up);
  Plan bad = PlanFromEngine(
      Engine(json::array({Service("mailu_imap", {{"backupbot.backup", "yes"}}, mounts)})),
      AllPathsExist());
  ASSERT_EQ(bad.stacks[0].errors.size(), 1u);
  EXPECT_NE(bad.stacks[0].errors[0].find("service mailu_imap: backupbot.backup='yes'"),
            std::string::npos);
  EXPECT_TRUE(bad.HasErrors());
}

TEST(Discovery, OneEnabledServiceEnablesEveryVolumeOfTheStack) {
  json services = json::array({Service("mailu_admin", {{"backupbot.backup", "true"}},
                                       json::array({Mount("volume", "mailu_data", "/data")})),
                               Service("mailu_imap", json::object(),
                                       json::array({Mount("volume", "mailu_mail", "/mail")}))});
  Plan plan = PlanFromEngine(Engine(services), AllPathsExist());
  EXPECT_TRUE(Vol(plan.stacks[0], "data").backed_up);
  EXPECT_TRUE(Vol(plan.stacks[0], "mail").backed_up);
  EXPECT_EQ(Vol(plan.stacks[0], "mail").mountpoint, "/var/lib/docker/volumes/mailu_mail/_data");
}

TEST(Discovery, VolumeFalseExcludesAndOtherValuesOnlyWarn) {
  json services = json::array({Service("mailu_imap",
                                       {{"backupbot.backup", "true"},
                                        {"backupbot.backup.volumes.cache", "false"},
                                        {"backupbot.backup.volumes.mail", "no"}},
                                       json::array({Mount("volume", "mailu_mail", "/mail"),
                                                    Mount("volume", "mailu_cache", "/cache")}))});
  const StackPlan st = PlanFromEngine(Engine(services), AllPathsExist()).stacks[0];
  EXPECT_FALSE(Vol(st, "cache").backed_up);
  EXPECT_NE(Vol(st, "cache").reason.find("backupbot.backup.volumes.cache=false"),
            std::string::npos);
  EXPECT_TRUE(Vol(st, "mail").backed_up);
  EXPECT_TRUE(AnyContains(st.warnings, "only 'false' excludes a volume"));
}

TEST(Discovery, PathLabelIsTrimmedVolumeRelativeAndRejectsDotDot) {
  json mounts = json::array({Mount("volume", "mailu_data", "/data")});
  json ok = json::array(
      {Service("mailu_admin",
               {{"backupbot.backup", "true"},
                {"backupbot.backup.volumes.data.path", " /main.db ,  dkim/ ,./certs//x "}},
               mounts)});
  const StackPlan st = PlanFromEngine(Engine(ok), AllPathsExist()).stacks[0];
  EXPECT_EQ(Vol(st, "data").paths, (std::vector<std::string>{"certs/x", "dkim", "main.db"}));
  EXPECT_TRUE(st.errors.empty());
  json bad = json::array({Service(
      "mailu_admin",
      {{"backupbot.backup", "true"}, {"backupbot.backup.volumes.data.path", "main.db,../etc"}},
      mounts)});
  const StackPlan b = PlanFromEngine(Engine(bad), AllPathsExist()).stacks[0];
  ASSERT_EQ(b.errors.size(), 1u);
  EXPECT_NE(b.errors[0].find("'../etc' contains '..'"), std::string::npos);
}

TEST(Discovery, MissingPathsWarnAndContainerLookingPathsSuggestTheRelativeForm) {
  json services = json::array({Service(
      "mailu_admin",
      {{"backupbot.backup", "true"}, {"backupbot.backup.volumes.data.path", "/data/main.db,dkim"}},
      json::array({Mount("volume", "mailu_data", "/data")}))});
  PlanOptions o;
  std::vector<std::string> asked;
  o.path_exists = [&](const std::string& p) {
    asked.push_back(p);
    return false;
  };
  const StackPlan st = PlanFromEngine(Engine(services), o).stacks[0];
  EXPECT_TRUE(AnyContains(asked, "/var/lib/docker/volumes/mailu_data/_data/dkim"));
  EXPECT_TRUE(AnyContains(st.warnings, "selected path 'dkim' does not exist"));
  EXPECT_TRUE(AnyContains(st.warnings, "looks like a container path (data is mounted at /data)"));
  EXPECT_TRUE(AnyContains(st.warnings, "write 'main.db'"));
}

TEST(Discovery, LegacyPathMapsContainerPathsToVolumesAndPrintsTheV2Equivalent) {
  json services = json::array({Service(
      "mailu_admin",
      {{"backupbot.backup", "true"}, {"backupbot.backup.path", "/data/main.db,/mail,/etc/ssl"}},
      json::array({Mount("volume", "mailu_data", "/data"), Mount("volume", "mailu_mail", "/mail"),
                   Mount("volume", "mailu_cache", "/cache"),
                   Mount("bind", "/etc/ssl", "/etc/ssl")}))});
  const StackPlan st = PlanFromEngine(Engine(services), AllPathsExist()).stacks[0];
  EXPECT_EQ(Vol(st, "data").paths, std::vector<std::string>{"main.db"});
  EXPECT_TRUE(Vol(st, "mail").backed_up);
  EXPECT_TRUE(Vol(st, "mail").paths.empty());
  EXPECT_FALSE(Vol(st, "cache").backed_up);
  EXPECT_TRUE(AnyContains(st.warnings, "legacy v1 syntax"));
  EXPECT_TRUE(AnyContains(
      st.warnings,
      "backupbot.backup.volumes.data.path=main.db backupbot.backup.volumes.cache=false"));
  EXPECT_TRUE(AnyContains(st.warnings, "'/etc/ssl' is on a bind mount"));
}

TEST(Discovery, BackupLabelsOnContainersOnlyAreReportedLoudlyAndDoNotEnable) {
  EngineState e = Engine(json::array({Service(
      "mailu_imap", json::object(), json::array({Mount("volume", "mailu_mail", "/mail")}))}));
  // What `labels:` instead of `deploy.labels:` gives: the running container carries it.
  e.containers[0]["Labels"]["backupbot.backup"] = "true";
  const StackPlan st = PlanFromEngine(e, AllPathsExist()).stacks[0];
  EXPECT_FALSE(st.enabled);
  EXPECT_TRUE(
      AnyContains(st.warnings, "MISPLACED LABEL: service mailu_imap: 'backupbot.backup=true'"));
  EXPECT_TRUE(AnyContains(st.warnings, "does not enable the stack's backup"));
}

TEST(Discovery, UnknownBackupbotKeysWarnAndTyposGetASuggestion) {
  json services = json::array({Service("mailu_admin",
                                       {{"backupbot.backup", "true"},
                                        {"backupbot.backup.prehook", "x"},
                                        {"backupbot.backup.command", "y"},
                                        {"other.label", "z"}},
                                       json::array({Mount("volume", "mailu_data", "/data")}))});
  const StackPlan st = PlanFromEngine(Engine(services), AllPathsExist()).stacks[0];
  EXPECT_TRUE(AnyContains(
      st.warnings,
      "'backupbot.backup.prehook' is ignored (did you mean 'backupbot.backup.pre-hook'?)"));
  EXPECT_TRUE(AnyContains(st.warnings, "'backupbot.backup.command' is ignored"));
  EXPECT_FALSE(AnyContains(st.warnings, "other.label"));
}

TEST(Discovery, DatabaseVolumeWithDumpHookButNoRestoreHookWarns) {
  json db_mounts = json::array({Mount("volume", "mailu_db", "/var/lib/postgresql/data")});
  json without = json::array(
      {Service("mailu_db",
               {{"backupbot.backup", "true"},
                {"backupbot.backup.pre-hook", "pg_dump > /var/lib/postgresql/data/dump.sql"}},
               db_mounts)});
  EXPECT_TRUE(AnyContains(PlanFromEngine(Engine(without), AllPathsExist()).stacks[0].warnings,
                          "no backupbot.restore.post-hook"));
  json with = without;
  with[0]["Spec"]["Labels"]["backupbot.restore.post-hook"] = "psql < dump.sql";
  EXPECT_FALSE(AnyContains(PlanFromEngine(Engine(with), AllPathsExist()).stacks[0].warnings,
                           "no backupbot.restore.post-hook"));
}

TEST(Discovery, ServiceRunningOnAnotherNodeIsReportedAsNotBackedUpHere) {
  EngineState e =
      Engine(json::array({Service("mailu_imap", {{"backupbot.backup", "true"}},
                                  json::array({Mount("volume", "mailu_mail", "/mail")}))}));
  e.containers = json::array();
  e.tasks[0]["NodeID"] = "node-other";
  const StackPlan st = PlanFromEngine(e, AllPathsExist()).stacks[0];
  EXPECT_EQ(st.services[0].placement, "other node(s): node-other");
  EXPECT_FALSE(st.volumes[0].backed_up);
  EXPECT_NE(st.volumes[0].reason.find("other nodes"), std::string::npos);
  EXPECT_TRUE(AnyContains(st.warnings, "NOT backed up here"));
}

TEST(Discovery, VolumeMissingOnThisNodeIsNotBackedUp) {
  EngineState e =
      Engine(json::array({Service("mailu_imap", {{"backupbot.backup", "true"}},
                                  json::array({Mount("volume", "mailu_mail", "/mail")}))}));
  e.volumes["Volumes"] = json::array();
  const StackPlan st = PlanFromEngine(e, AllPathsExist()).stacks[0];
  EXPECT_FALSE(st.volumes[0].backed_up);
  EXPECT_EQ(st.volumes[0].reason, "volume mailu_mail does not exist on this node");
}

TEST(Discovery, ExternalVolumesKeepTheirFullNameAndStackFilterSelectsOneStack) {
  json services = json::array(
      {Service("mailu_imap",
               {{"backupbot.backup", "true"}, {"backupbot.backup.volumes.certs_shared", "false"}},
               json::array({Mount("volume", "mailu_mail", "/mail"),
                            Mount("volume", "certs_shared", "/certs", "")})),
       Service("web_app", {{"backupbot.backup", "true"}},
               json::array({Mount("volume", "web_data", "/d", "web")}), json::object(), "web")});
  PlanOptions o = AllPathsExist();
  o.only_stack = "mailu";
  Plan plan = PlanFromEngine(Engine(services), o);
  ASSERT_EQ(plan.stacks.size(), 1u);
  EXPECT_TRUE(Vol(plan.stacks[0], "certs_shared").external);
  EXPECT_FALSE(Vol(plan.stacks[0], "certs_shared").backed_up);
  o.only_stack = "nope";
  EXPECT_TRUE(AnyContains(PlanFromEngine(Engine(services), o).warnings, "no stack named 'nope'"));
}

TEST(Discovery, NormalizeVolumePathKeepsPathsInsideTheVolume) {
  EXPECT_EQ(NormalizeVolumePath(" /a//b/./c/ ").value(), "a/b/c");
  EXPECT_EQ(NormalizeVolumePath("/").value(), "");
  EXPECT_FALSE(NormalizeVolumePath("a/../../b").ok());
  EXPECT_EQ(NormalizeVolumePath("a..b").value(), "a..b");
}

}  // namespace
}  // namespace mv::agent
