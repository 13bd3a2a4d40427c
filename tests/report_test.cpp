// `mailvault report`: the nightly job's outputs and exit codes. The Prometheus textfile is read
// by the real node_exporter (Debian's prometheus-node-exporter) through its textfile collector.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "verify/report.h"
#include "verify_fixture.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class Report : public VerifyFixture {
 protected:
  RunResult Run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"report",    "--repo",    repo(),         "--out",
                                     out_.path(), "--scratch", scratch_.path()};
    for (auto& e : extra) args.push_back(e);
    return RunMailvault(args);
  }
  nlohmann::json Json() { return nlohmann::json::parse(ReadFile(out_ / "mailvault-report.json")); }
  static int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }
  TempDir out_{"mvreport"};
};

TEST_F(Report, HealthyRepositoryWritesEveryOutputAndExitsZero) {
  RunResult r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::set<std::string> files;
  for (const auto& e : stdfs::directory_iterator(out_.path())) files.insert(e.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"mailvault-report.json", "mailvault-report.md",
                                          "mailvault-report.html", "mailvault.prom"}));
  auto j = Json();
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["name"], "mailu");
  EXPECT_EQ(j["groups"][0]["verify_ok"], true);
  EXPECT_EQ(j["groups"][0]["mailbox_messages"][users_[0]], 24);
  EXPECT_EQ(j["check"]["ok"], true);
  std::string md = ReadFile(out_ / "mailvault-report.md");
  EXPECT_NE(md.find("**OK**"), std::string::npos) << md;
  EXPECT_NE(md.find("| mailu | OK |"), std::string::npos) << md;
  std::string html = ReadFile(out_ / "mailvault-report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  for (const char* outside : {"<script", "src=", "href=", "<link"})
    EXPECT_EQ(html.find(outside), std::string::npos) << "not self-contained: " << outside;
}

TEST_F(Report, PrometheusTextfileIsAcceptedByNodeExporter) {
  ASSERT_EQ(Run({"--format", "prom"}).exit_code, 0);
  std::string prom = ReadFile(out_ / "mailvault.prom");
  EXPECT_NE(prom.find("mailvault_verify_ok{stack=\"mailu\"} 1\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("mailvault_messages{stack=\"mailu\",mailbox=\"" + users_[1] + "\"} 24\n"),
            std::string::npos);
  ASSERT_EQ(Shell("command -v prometheus-node-exporter").exit_code, 0)
      << "install prometheus-node-exporter";
  int port = 20000 + getpid() % 20000;
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string dir = "--collector.textfile.directory=" + out_.path();
    std::string addr = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execlp("prometheus-node-exporter", "prometheus-node-exporter", "--collector.disable-defaults",
             "--collector.textfile", dir.c_str(), addr.c_str(), nullptr);
    _exit(127);
  }
  RunResult m;
  for (int i = 0; i < 50 && m.out.find("node_textfile_scrape_error") == std::string::npos; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    m = Shell("curl -s http://127.0.0.1:" + std::to_string(port) + "/metrics");
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  EXPECT_NE(m.out.find("node_textfile_scrape_error 0"), std::string::npos) << m.out.substr(0, 3000);
  EXPECT_NE(m.out.find("mailvault_verify_ok{stack=\"mailu\"} 1"), std::string::npos)
      << m.out.substr(0, 3000);
  EXPECT_NE(m.out.find("mailvault_repository_bytes "), std::string::npos);
}

TEST_F(Report, NoBackupWithinMaxAgeIsStaleExitFour) {
  RunResult r = Run({"--at", std::to_string(Now() + 2 * 86400), "--max-age", "26h"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(ReadFile(out_ / "mailvault.prom").find("mailvault_stale{stack=\"mailu\"} 1"),
            std::string::npos);
  EXPECT_NE(ReadFile(out_ / "mailvault-report.md").find("**stale**"), std::string::npos);
  EXPECT_EQ(Run({"--at", std::to_string(Now() + 3600), "--max-age", "26h"}).exit_code, 0);
}

TEST_F(Report, DamageOutranksStalenessExitOne) {
  auto r = OpenRepo();
  stdfs::remove(PackOf(*r, FirstMessage(Latest(*r)).blobs[0]));
  RunResult rep = Run({"--at", std::to_string(Now() + 2 * 86400)});
  EXPECT_EQ(rep.exit_code, 1) << rep.out;
  auto j = Json();
  EXPECT_EQ(j["groups"][0]["verify_ok"], false);
  EXPECT_GT(j["groups"][0]["lost_messages"].get<int>(), 0);
  EXPECT_NE(ReadFile(out_ / "mailvault.prom").find("mailvault_verify_ok{stack=\"mailu\"} 0"),
            std::string::npos);
}

TEST_F(Report, RotationRereadsEveryPackWithinTheConfiguredNights) {
  for (int i = 0; i < 3; i++) {
    WriteFile(vol_ / ("mail/" + users_[1] + "/new/19000000" + std::to_string(i) + ".M1P1.x"),
              "mail " + std::to_string(i), 0600);
    Backup();
  }
  uint64_t read = 0, packs = 0;
  int64_t day0 = Now() / 86400 * 86400 + 3600;
  for (int night = 0; night < 3; night++) {
    ASSERT_EQ(Run({"--rotate-nights", "3", "--format", "json", "--at",
                   std::to_string(day0 + night * 86400), "--max-age", "30d"})
                  .exit_code,
              0);
    auto j = Json();
    read += j["check"]["packs_read"].get<uint64_t>();
    packs = j["check"]["packs"];
  }
  EXPECT_GE(packs, 4u);
  EXPECT_EQ(read, packs);
}

TEST_F(Report, SnapshotsWithoutAStackTagAreGroupedBySources) {
  std::vector<std::string> args = {"backup", "--repo", repo()};
  for (auto& s : SourceArgs()) args.push_back(s);
  ASSERT_EQ(RunMailvault(args).exit_code, 0);
  ASSERT_EQ(Run({"--format", "json"}).exit_code, 0);
  std::set<std::string> names;
  auto j = Json();
  for (const auto& g : j["groups"]) names.insert(g["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"mailu", "sources:data,dkim,mail"}));
}

}  // namespace
}  // namespace mv::testing

namespace mv::testing {
namespace {

TEST(ReportRender, PrometheusLabelValuesAreEscapedAndEveryFamilyHasHelpAndType) {
  verify::Report r;
  verify::GroupReport g;
  g.name = "we\"ird\\stack";
  g.mailbox_messages["a\nb@example.org"] = 3;
  r.groups.push_back(g);
  std::string prom = verify::RenderPrometheus(r);
  EXPECT_NE(
      prom.find(
          "mailvault_messages{stack=\"we\\\"ird\\\\stack\",mailbox=\"a\\nb@example.org\"} 3\n"),
      std::string::npos)
      << prom;
  std::istringstream lines(prom);
  std::set<std::string> helped, typed, sampled;
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind("# HELP ", 0) == 0)
      helped.insert(l.substr(7, l.find(' ', 7) - 7));
    else if (l.rfind("# TYPE ", 0) == 0)
      typed.insert(l.substr(7, l.find(' ', 7) - 7));
    else
      sampled.insert(l.substr(0, l.find_first_of("{ ")));
  }
  EXPECT_EQ(helped, typed);
  for (const auto& s : sampled) EXPECT_TRUE(helped.count(s)) << s;
  EXPECT_TRUE(sampled.count("mailvault_last_success_timestamp_seconds"));
  EXPECT_TRUE(sampled.count("mailvault_repository_bytes"));
}

TEST(ReportRender, NightlyRotationCoversEveryBucketOnce) {
  std::set<uint32_t> seen;
  for (int64_t day = 0; day < 7; day++)
    seen.insert(verify::RotationBucket(1795400000 + day * 86400, 7));
  EXPECT_EQ(seen.size(), 7u);
}

// What retention needs to be watched (docs/FORMAT.md §11): per stack the oldest restorable point
// and the newest snapshot verify proved, in the JSON and the Prometheus textfile (checked by the
// real promtool when it is installed; deploy/install-deps.sh installs it for the tests).
TEST_F(Report, ShowsTheOldestRestorablePointAndTheNewestVerifiedSnapshot) {
  WriteFile(vol_ / ("mail/" + users_[0] + "/new/1800000000.M1P1.host"), "Subject: x\n\nnew\n");
  Backup();
  auto snaps = testing::Json(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  ASSERT_EQ(snaps.size(), 2u);
  ASSERT_EQ(Run({"--format", "json,prom,md"}).exit_code, 0);
  auto g = Json()["groups"][0];
  EXPECT_EQ(g["oldest_time"], snaps[0]["time"]);
  EXPECT_EQ(g["last_verified_snapshot"], snaps[1]["id"]) << "tonight's verify proved the latest";
  EXPECT_EQ(g["last_verified_time"], snaps[1]["time"]);
  std::string prom = ReadFile(out_ / "mailvault.prom");
  EXPECT_NE(prom.find("mailvault_oldest_snapshot_timestamp_seconds{stack=\"mailu\"} " +
                      std::to_string(snaps[0]["time"].get<int64_t>()) + "\n"),
            std::string::npos)
      << prom;
  EXPECT_NE(prom.find("mailvault_last_verified_snapshot_timestamp_seconds{stack=\"mailu\"} " +
                      std::to_string(snaps[1]["time"].get<int64_t>()) + "\n"),
            std::string::npos)
      << prom;
  EXPECT_NE(ReadFile(out_ / "mailvault-report.md")
                .find("newest verified snapshot " + snaps[1]["short_id"].get<std::string>()),
            std::string::npos);
  ASSERT_EQ(Shell("command -v promtool").exit_code, 0) << "install prometheus (promtool)";
  RunResult lint = Shell("promtool check metrics < '" + (out_ / "mailvault.prom") + "'");
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
}

// The alerting rules shipped in deploy/prometheus/alerts.yml load, and their unit tests (a
// healthy night, a bad night, an agent that stopped reporting, nothing scraped) pass, both with
// the real promtool. Every mailvault_* metric the rules and the Grafana dashboard use is one a
// real report writes, so renaming a metric cannot silently disarm an alert. The two a report
// writes only after an agent run (the run's exit codes) are checked on the swarm e2e
// (tests/e2e/sidecar.sh), where the shipped stack runs the agent.
TEST_F(Report, ShippedAlertsLoadPassTheirUnitTestsAndUseOnlyMetricsAReportWrites) {
  ASSERT_EQ(Shell("command -v promtool").exit_code, 0) << "install prometheus (promtool)";
  const std::string dir = std::string(MAILVAULT_SOURCE_DIR) + "/deploy/prometheus";
  RunResult check = Shell("promtool check rules '" + dir + "/alerts.yml'");
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  RunResult unit = Shell("cd '" + dir + "' && promtool test rules alerts_test.yml");
  EXPECT_EQ(unit.exit_code, 0) << unit.out << unit.err;

  ASSERT_EQ(Run({"--format", "prom"}).exit_code, 0);
  std::string prom = ReadFile(out_ / "mailvault.prom");
  std::set<std::string> written;
  const std::regex family("# TYPE (mailvault_[a-z0-9_]+) "), metric("mailvault_[a-z0-9_]+");
  for (std::sregex_iterator it(prom.begin(), prom.end(), family), end; it != end; ++it)
    written.insert((*it)[1]);
  EXPECT_TRUE(written.count("mailvault_build_info")) << prom;
  EXPECT_NE(prom.find("mailvault_build_info{version=\""), std::string::npos) << prom;
  const std::set<std::string> agent_only = {"mailvault_run_exit_code",
                                            "mailvault_last_run_exit_code"};
  EXPECT_EQ(prom.find("mailvault_run_exit_code"), std::string::npos)
      << "a report on its own has seen no run";
  for (const char* file :
       {"/deploy/prometheus/alerts.yml", "/deploy/grafana/mailvault-dashboard.json"}) {
    std::string text = ReadFile(std::string(MAILVAULT_SOURCE_DIR) + file);
    std::set<std::string> used;
    for (std::sregex_iterator it(text.begin(), text.end(), metric), end; it != end; ++it)
      used.insert(it->str());
    EXPECT_GT(used.size(), 3u) << file;
    for (const auto& m : used)
      EXPECT_TRUE(written.count(m) || agent_only.count(m))
          << file << " uses " << m << ", which no report writes";
  }
  auto dash = nlohmann::json::parse(
      ReadFile(std::string(MAILVAULT_SOURCE_DIR) + "/deploy/grafana/mailvault-dashboard.json"));
  EXPECT_GE(dash["panels"].size(), 8u);
  for (const auto& p : dash["panels"]) EXPECT_FALSE(p["targets"].empty()) << p["title"];
}

}  // namespace
}  // namespace mv::testing
