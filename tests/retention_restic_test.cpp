// `mailvault forget` keeps the same snapshots as the real `restic forget` (Debian's restic 0.14,
// installed by deploy/install-deps.sh --test) for the same flags and snapshot times: both
// repositories get the same ~200 snapshot times over two years (pseudo-random, fixed seed, with
// two in one hour, the days around two year ends and one snapshot in the future), then each
// policy runs as a dry run on both and the kept sets, by time, must be equal.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "tests/test_util.h"

namespace mv::testing {
namespace {

int64_t Timegm(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return timegm(&tm);
}

std::string Text(int64_t t) {  // "2025-01-01 00:10:00"
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Deterministic snapshot times, distinct seconds, before now except one far in the future.
std::vector<int64_t> SnapshotTimes() {
  std::set<int64_t> times;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const int64_t start = Timegm(2024, 11, 1, 0, 0, 0), span = 730LL * 86400;
  while (times.size() < 170) times.insert(start + static_cast<int64_t>(next() % span));
  // Two in one hour, and a snapshot a day around the year ends (ISO week 2024-W01 starts on
  // 2024-12-30; 2026-W53 ends on 2027-01-03, in the future).
  times.insert(Timegm(2025, 3, 10, 3, 5, 0));
  times.insert(Timegm(2025, 3, 10, 3, 40, 0));
  for (int d = 26; d <= 31; d++) times.insert(Timegm(2024, 12, d, 23, 30, 0));
  for (int d = 1; d <= 5; d++) times.insert(Timegm(2025, 1, d, 0, 15, 0));
  for (int d = 27; d <= 31; d++) times.insert(Timegm(2025, 12, d, 12, 0, 0));
  for (int d = 1; d <= 4; d++) times.insert(Timegm(2026, 1, d, 12, 0, 0));
  times.insert(Timegm(2029, 6, 1, 0, 0, 0));  // in the future
  return {times.begin(), times.end()};
}

class ResticEquivalence : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("mvrestic");
    if (Shell("command -v restic >/dev/null").exit_code != 0) return;
    WriteFile(*dir_ / "src/file", "tiny source\n");
    std::string times;
    for (int64_t t : SnapshotTimes()) times += "'" + Text(t) + "'\n";
    WriteFile(*dir_ / "times", times);
    // Both repositories at once, each backing up the tiny source per time; restic spends most of
    // its ~0.5 s per backup deriving its key, so three of its backups run at a time (it allows
    // concurrent backups; mailvault takes its exclusive lock, and is fast).
    // clang-format off
    WriteFile(*dir_ / "setup.sh", R"sh(set -e
cd "$D"
export RESTIC_PASSWORD=x TZ=UTC RESTIC_CACHE_DIR="$D/cache"
"$MV" init --repo mv >/dev/null
restic -r restic init -q >/dev/null
(xargs -I{} "$MV" backup --repo mv --host h --quiet --source "data=$D/src" --time {} <times) & a=$!
(xargs -P 3 -I{} restic -r restic backup -q --host h --time {} "$D/src" <times >/dev/null) & b=$!
wait $a
wait $b
n=$(ls mv/snapshots | wc -l)
[ "$n" = "$(wc -l <times)" ] || { echo "mailvault committed $n snapshots" >&2; exit 1; }
)sh");
    // clang-format on
    const std::string d = dir_->path();
    setup_exit_ = Shell("MV=" + std::string(MAILVAULT_BIN) + " D=" + d + " bash " + d +
                        "/setup.sh 2>" + d + "/setup.err")
                      .exit_code;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (Shell("command -v restic >/dev/null").exit_code != 0)
      GTEST_FAIL() << "restic is not installed: run deploy/install-deps.sh --test";
    ASSERT_EQ(setup_exit_, 0) << ReadFile(*dir_ / "setup.err");
  }

  // The kept snapshot times of each tool for one policy.
  static std::set<int64_t> MailvaultKeeps(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"forget", "--repo", *dir_ / "mv", "--dry-run", "--json"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = RunMailvault(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::set<int64_t> out;
    size_t n = 0;
    auto j = Json(r);  // alive for the loop
    for (const auto& g : j["groups"])
      for (const auto& s : g["snapshots"]) {
        n++;
        if (s["keep"].get<bool>()) out.insert(s["time"].get<int64_t>());
      }
    EXPECT_EQ(n, SnapshotTimes().size());
    return out;
  }
  static std::set<int64_t> ResticKeeps(const std::vector<std::string>& flags) {
    std::string cmd = "cd " + dir_->path() +
                      " && RESTIC_PASSWORD=x TZ=UTC RESTIC_CACHE_DIR=" + dir_->path() +
                      "/cache restic -r restic forget --dry-run --json";
    for (const auto& f : flags) cmd += " " + f;
    auto r = Shell(cmd + " 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    std::set<int64_t> out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.size(), 1u) << "one group (host h, one path)";
    for (const auto& g : j)
      for (const auto& s : g["keep"]) {
        std::string t = s["time"];  // "2025-01-01T00:10:00Z" (TZ=UTC)
        struct tm tm {};
        EXPECT_NE(strptime(t.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm), nullptr) << t;
        EXPECT_EQ(t.back(), 'Z') << t;
        out.insert(timegm(&tm));
      }
    return out;
  }

  static TempDir* dir_;
  static int setup_exit_;
};
TempDir* ResticEquivalence::dir_ = nullptr;
int ResticEquivalence::setup_exit_ = -1;

std::string Diff(const std::set<int64_t>& mine, const std::set<int64_t>& restic) {
  std::string out;
  for (int64_t t : mine)
    if (!restic.count(t)) out += "  only mailvault keeps " + Text(t) + "\n";
  for (int64_t t : restic)
    if (!mine.count(t)) out += "  only restic keeps " + Text(t) + "\n";
  return out;
}

TEST_F(ResticEquivalence, KeptSetsAreRestics) {
  const std::vector<std::vector<std::string>> policies = {
      {"--keep-daily", "7"},
      {"--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "12"},
      {"--keep-last", "3", "--keep-hourly", "24"},
      {"--keep-yearly", "3", "--keep-monthly", "6"},
      {"--keep-within", "30d"},
      {"--keep-within", "1y2m", "--keep-weekly", "10", "--keep-last", "5"},
      {"--keep-last", "2", "--keep-daily", "30", "--keep-weekly", "60", "--keep-yearly", "1"},
      {"--keep-monthly", "100"},
  };
  for (const auto& p : policies) {
    std::string name;
    for (const auto& f : p) name += f + " ";
    SCOPED_TRACE(name);
    auto mine = MailvaultKeeps(p), restic = ResticKeeps(p);
    EXPECT_GT(restic.size(), 2u);
    EXPECT_LT(restic.size(), SnapshotTimes().size());
    EXPECT_EQ(mine, restic) << Diff(mine, restic);
  }
}

}  // namespace
}  // namespace mv::testing
