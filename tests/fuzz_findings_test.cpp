// Defects of the JSON decoders found while fuzzing them (tests/fuzz/config_fuzz.cpp,
// manifest_fuzz.cpp), each pinned with its input through the real CLI, where a user sees it: a
// damaged config or manifest is named as damaged, never read as a wrong value (and, under UBSan,
// never as undefined behaviour).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "agent/sidecar/schedule.h"
#include "agent/stack/discovery.h"
#include "storage/sealed.h"
#include "storage/snapshot.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class FuzzFindings : public RepoTest {
 protected:
  // Replaces the first match of `re` in the repository's config.
  void EditConfig(const std::string& re, const std::string& with) {
    std::string cfg = ReadFile(repo() + "/config");
    std::string edited =
        std::regex_replace(cfg, std::regex(re), with, std::regex_constants::format_first_only);
    ASSERT_NE(edited, cfg) << re;
    WriteFile(repo() + "/config", edited);
  }
  // One snapshot of a tiny volume; returns its manifest path.
  std::string OneSnapshot() {
    WriteFile(vol_ / "mail/a", "hello\n");
    RunResult b = Backup("mail=" + vol_ / "mail");
    EXPECT_EQ(b.exit_code, 0) << b.err;
    for (const auto& e : stdfs::directory_iterator(repo() + "/snapshots"))
      if (e.path().filename().string()[0] != '.') return e.path().string();
    return "";
  }
  // Rewrites the manifest's header (behind a correct seal, as a buggy writer would).
  void EditManifestHeader(const std::string& path, const std::string& re, const std::string& with) {
    auto s = storage::Unseal(ReadFile(path), storage::SnapshotMagic(), path,
                             storage::SnapshotOldestVersion());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    std::string header = std::regex_replace(s->header, std::regex(re), with,
                                            std::regex_constants::format_first_only);
    ASSERT_NE(header, s->header) << re;
    std::string magic(storage::SnapshotMagic());
    magic.back() = static_cast<char>(s->version);
    WriteFile(path, storage::Seal(magic, header, s->body));
  }
};

// Found by config_fuzz in its first seconds: "version": 2.2e103 was cast to int (undefined;
// -2147483648 on x86), and the user was told the repository had format version -2147483648.
TEST_F(FuzzFindings, ConfigVersionBeyondAnyIntegerIsAMalformedConfig) {
  EditConfig(R"("version": *[0-9]+)", R"("version": 2.22222222222222e103)");
  RunResult r = RunMailvault({"snapshots", "--repo", repo()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("malformed repository config"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("version"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("-2147483648"), std::string::npos) << r.err;
}

// Seen while writing config_fuzz's chunker check, then confirmed by it (UBSan, and its "cut
// nothing" invariant): chunker "avg": 1 shifted by -1 (undefined), "max": 0 made the chunker
// cut zero bytes, so a backup of any large file never ended. Both are now a damaged config.
TEST_F(FuzzFindings, ChunkerParametersTheChunkerCannotCutWithAreADamagedConfig) {
  for (const auto& [field, value] : {std::pair{"avg", "1"}, {"max", "0"}, {"min", "0"}}) {
    SCOPED_TRACE(field);
    std::string keep = ReadFile(repo() + "/config");
    EditConfig("\"" + std::string(field) + "\": *[0-9]+",
               "\"" + std::string(field) + "\": " + value);
    RunResult r = RunMailvault({"snapshots", "--repo", repo()});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("chunker parameters in config are damaged"), std::string::npos) << r.err;
    WriteFile(repo() + "/config", keep);
  }
}

// The same cast in the manifest header, found by reading it after config_fuzz's finding: a file
// count of -1 was read as 18446744073709551615 files.
TEST_F(FuzzFindings, NegativeFileCountMakesTheManifestDamagedNotHuge) {
  std::string manifest = OneSnapshot();
  ASSERT_FALSE(manifest.empty());
  EditManifestHeader(manifest, R"("files":[0-9]+)", R"("files":-1)");
  RunResult r = RunMailvault({"snapshots", "--repo", repo(), "--json"});
  EXPECT_EQ(r.out.find("18446744073709551615"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("snapshot manifest is damaged"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("files"), std::string::npos) << r.err;
}

// Likewise: "time": 1e300 was cast to int64 (undefined; reported as time -9223372036854775808).
TEST_F(FuzzFindings, SnapshotTimeBeyondAnyIntegerMakesTheManifestDamaged) {
  std::string manifest = OneSnapshot();
  ASSERT_FALSE(manifest.empty());
  EditManifestHeader(manifest, R"("time":[0-9]+)", R"("time":1e300)");
  RunResult r = RunMailvault({"snapshots", "--repo", repo()});
  EXPECT_NE(r.err.find("snapshot manifest is damaged"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("-9223372036854775808"), std::string::npos) << r.err;
}

// Found by cron_fuzz: "155325592629044831h" overflowed (undefined; a wrapped, even negative,
// interval for the sidecar).
TEST(ScheduleFuzzFindings, DurationBeyondACenturyIsRefusedNotWrapped) {
  for (const char* text :
       {"155325592629044831h", "9223372036854775807s", "106752d", "99999999999m1s"}) {
    SCOPED_TRACE(text);
    auto d = agent::ParseDuration(text);
    ASSERT_FALSE(d.ok()) << d->count();
    EXPECT_NE(d.status().message().find("too long"), std::string::npos) << d.status().message();
  }
  EXPECT_EQ(agent::ParseDuration("36500d")->count(), 36500LL * 86400);
}

// Found by engine_fuzz: an Engine answer whose entries are not objects, or whose fields have
// another type, threw nlohmann's type_error out of PlanFromEngine (std::terminate ends
// `mailvault discover` and the sidecar). Such entries now contribute nothing.
TEST(EngineFuzzFindings, EngineAnswersOfUnexpectedShapesGiveAPlanNotAnException) {
  agent::PlanOptions opts;
  opts.path_exists = [](const std::string&) { return false; };
  for (
      const char* text :
      {R"([9223372036854775807])", R"([{"DesiredState": 5, "ServiceID": []}])",
       R"({"Volumes": [{"Name": 1, "Mountpoint": null}, 7]})",
       R"([{"Labels": {"com.docker.swarm.service.name": "s"}, "State": {}, "Id": 3}])",
       R"([{"Spec": {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Mounts": [1, {"Type": 2}]}}}}])"}) {
    SCOPED_TRACE(text);
    agent::EngineState st;
    st.services = st.containers = st.tasks = st.volumes = st.info = nlohmann::json::parse(text);
    EXPECT_NO_THROW((void)agent::PlanFromEngine(st, opts));
  }
}

// Found by compose_fuzz on its seed tests/fuzz/corpus/compose/test_override.yml (the override
// file of tests/compose_test.cpp): a reference to a temporary of yaml-cpp's iterator was read
// after the temporary died. Visible under ASan (tests/run.sh --sanitize), where this fails.
TEST(ComposeFuzzFindings, OverrideFileWithServiceVolumesAndLabelsIsReadSafely) {
  TempDir dir;
  WriteFile(dir / "c.yml", ReadFile(std::string(MAILVAULT_SOURCE_DIR) +
                                    "/tests/fuzz/corpus/compose/test_override.yml"));
  RunResult r = RunMailvault({"discover", "-c", dir / "c.yml", "--stack", "mailu"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mailu_admin"), std::string::npos) << r.out;
}

// Found by compose_fuzz: a mapping key that is not a plain name ("? [a, b]") threw yaml-cpp's
// bad conversion out of the merge (std::terminate ended `mailvault discover`).
TEST(ComposeFuzzFindings, ServiceKeyThatIsASequenceIsAnInvalidComposeFileNotACrash) {
  TempDir dir;
  WriteFile(dir / "c.yml", "services:\n  ? [a, b]\n  : {image: x}\n");
  RunResult r = RunMailvault({"discover", "-c", dir / "c.yml", "--stack", "mailu"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("not a compose file mailvault can read"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mv::testing
