// The retention policy (retention/policy.h) on fixed tables: calendar buckets (day, ISO week,
// month, year, leap day, the year-end ISO week), gaps, ties within an hour, future snapshots,
// each safety rail, the partial preference and time-zone bucketing.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "retention/policy.h"

namespace mv::retention {
namespace {

// "2020-12-31 12:00:00" (UTC) -> nanoseconds.
int64_t T(const char* text) {
  int y, mo, d, h, mi, s;
  EXPECT_EQ(std::sscanf(text, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s), 6) << text;
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000000000LL;
}

const int64_t kNow = T("2030-01-01 00:00:00");

// Snapshots named by their time text, one group (host h, stack s).
std::vector<SnapshotFacts> Snaps(const std::vector<const char*>& times) {
  std::vector<SnapshotFacts> out;
  for (const char* t : times) out.push_back({t, T(t), "h", {{"stack", "s"}}, {"mail"}, false, {}});
  return out;
}

std::vector<Group> Apply(const std::vector<SnapshotFacts>& s, const Policy& p, int64_t now = kNow) {
  auto r = ApplyPolicy(s, p, GroupBy{}, now);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<Group>{};
}

std::set<std::string> Kept(const std::vector<Group>& groups) {
  std::set<std::string> out;
  for (const auto& g : groups)
    for (const auto& d : g.decisions)
      if (d.keep) out.insert(d.id);
  return out;
}

std::vector<std::string> Reasons(const std::vector<Group>& groups, const std::string& id) {
  for (const auto& g : groups)
    for (const auto& d : g.decisions)
      if (d.id == id) return d.reasons;
  return {"<not found>"};
}

TEST(RetentionCivil, IsoWeekAtYearEnds) {
  auto c = ToCivil({T("2020-12-31 12:00:00") / 1000000000, T("2021-01-03 23:59:59") / 1000000000,
                    T("2021-01-04 00:00:00") / 1000000000, T("2024-12-30 00:00:00") / 1000000000,
                    T("2016-01-01 00:00:00") / 1000000000},
                   "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0].iso_year * 100 + (*c)[0].iso_week, 202053);  // Thursday
  EXPECT_EQ((*c)[1].iso_year * 100 + (*c)[1].iso_week, 202053);  // Sunday: still 2020-W53
  EXPECT_EQ((*c)[2].iso_year * 100 + (*c)[2].iso_week, 202101);  // Monday
  EXPECT_EQ((*c)[3].iso_year * 100 + (*c)[3].iso_week, 202501);  // Monday of 2025-W01
  EXPECT_EQ((*c)[4].iso_year * 100 + (*c)[4].iso_week, 201553);
}

TEST(RetentionPolicy, DailyCountsDaysThatHaveSnapshotsAndKeepsEachDaysNewest) {
  // Gap: nothing on the 3rd-5th. Two on the 6th: the later one is the day's.
  auto s = Snaps({"2026-03-01 03:00:00", "2026-03-02 03:00:00", "2026-03-06 01:00:00",
                  "2026-03-06 23:00:00", "2026-03-07 03:00:00"});
  Policy p;
  p.daily = 3;
  auto g = Apply(s, p);
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2026-03-07 03:00:00", "2026-03-06 23:00:00",
                                            "2026-03-02 03:00:00"}));
  EXPECT_EQ(Reasons(g, "2026-03-07 03:00:00"), (std::vector<std::string>{"daily 1", "newest"}));
  EXPECT_EQ(Reasons(g, "2026-03-02 03:00:00"), (std::vector<std::string>{"daily 3"}));
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].key, "host=h stack=s");
  EXPECT_EQ(g[0].decisions.front().id, "2026-03-07 03:00:00");  // newest first
}

TEST(RetentionPolicy, DayBoundaryIsMidnightUtc) {
  auto s = Snaps({"2026-03-01 23:59:59", "2026-03-02 00:00:00"});
  Policy p;
  p.daily = 2;
  EXPECT_EQ(Kept(Apply(s, p)).size(), 2u);
  p.daily = 1;
  EXPECT_EQ(Kept(Apply(s, p)), (std::set<std::string>{"2026-03-02 00:00:00"}));
}

TEST(RetentionPolicy, WeeklyUsesIsoWeeksAcrossTheYearEnd) {
  // 2020-12-28 (Mon) .. 2021-01-03 (Sun) is 2020-W53: one bucket. 2021-01-04 opens W01.
  auto s = Snaps({"2020-12-27 10:00:00", "2020-12-28 10:00:00", "2020-12-31 10:00:00",
                  "2021-01-03 10:00:00", "2021-01-04 10:00:00"});
  Policy p;
  p.weekly = 3;
  auto g = Apply(s, p);
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2021-01-04 10:00:00", "2021-01-03 10:00:00",
                                            "2020-12-27 10:00:00"}));
  EXPECT_EQ(Reasons(g, "2021-01-03 10:00:00"), (std::vector<std::string>{"weekly 2"}));
}

TEST(RetentionPolicy, MonthlyAndYearlyBoundariesAndTheLeapDay) {
  auto s = Snaps({"2023-12-31 23:00:00", "2024-01-01 00:30:00", "2024-02-28 12:00:00",
                  "2024-02-29 12:00:00", "2024-03-01 00:00:00"});
  Policy p;
  p.monthly = 3;
  EXPECT_EQ(Kept(Apply(s, p)), (std::set<std::string>{"2024-03-01 00:00:00", "2024-02-29 12:00:00",
                                                      "2024-01-01 00:30:00"}));
  p = {};
  p.yearly = 5;
  EXPECT_EQ(Kept(Apply(s, p)),
            (std::set<std::string>{"2024-03-01 00:00:00", "2023-12-31 23:00:00"}));
  p = {};
  p.daily = 2;  // the leap day is a day of its own
  EXPECT_EQ(Kept(Apply(s, p)),
            (std::set<std::string>{"2024-03-01 00:00:00", "2024-02-29 12:00:00"}));
}

TEST(RetentionPolicy, OneSnapshotFillsEveryBucketItFallsIn) {
  auto s = Snaps({"2026-03-01 03:00:00", "2026-03-02 03:00:00", "2026-03-09 03:00:00"});
  Policy p;
  p.daily = 1;
  p.weekly = 2;
  p.monthly = 1;
  auto g = Apply(s, p);
  EXPECT_EQ(Reasons(g, "2026-03-09 03:00:00"),
            (std::vector<std::string>{"daily 1", "weekly 1", "monthly 1", "newest"}));
  // 03-02 is a Monday (W10), 03-01 a Sunday (W09): weekly 2 is 03-02.
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2026-03-09 03:00:00", "2026-03-02 03:00:00"}));
}

TEST(RetentionPolicy, TwoSnapshotsInOneHour) {
  auto s = Snaps({"2026-03-01 03:05:00", "2026-03-01 03:55:00", "2026-03-01 04:00:00"});
  Policy p;
  p.hourly = 2;
  EXPECT_EQ(Kept(Apply(s, p)),
            (std::set<std::string>{"2026-03-01 04:00:00", "2026-03-01 03:55:00"}));
  p = {};
  p.last = 3;
  EXPECT_EQ(Kept(Apply(s, p)).size(), 3u);
}

TEST(RetentionPolicy, KeepWithinCountsFromTheNewestNotFromNow) {
  auto s = Snaps(
      {"2026-01-01 00:00:00", "2026-01-30 00:00:01", "2026-01-31 00:00:00", "2026-03-01 00:00:00"});
  Policy p;
  p.within = ParseKeepWithin("30d").value();  // 2026-03-01 - 30d = 2026-01-30 00:00:00, exclusive
  auto g = Apply(s, p);
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2026-03-01 00:00:00", "2026-01-31 00:00:00",
                                            "2026-01-30 00:00:01"}));
  EXPECT_EQ(Reasons(g, "2026-01-31 00:00:00"), (std::vector<std::string>{"within 30d"}));
  // Months as Go's AddDate: 03-31 minus one month is "02-31", i.e. 03-03.
  auto s2 = Snaps({"2026-03-02 12:00:00", "2026-03-03 12:00:00", "2026-03-31 00:00:00"});
  p.within = ParseKeepWithin("1m").value();
  EXPECT_EQ(Kept(Apply(s2, p)),
            (std::set<std::string>{"2026-03-31 00:00:00", "2026-03-03 12:00:00"}));
}

TEST(RetentionPolicy, FutureSnapshotsAreKeptAndIgnoredWhenFindingTheNewest) {
  auto s = Snaps({"2026-01-01 00:00:00", "2026-01-20 00:00:00", "2026-02-01 00:00:00",
                  "2031-06-01 00:00:00", "2031-06-01 01:00:00"});
  Policy p;
  p.within = ParseKeepWithin("15d").value();  // from 2026-02-01, not from 2031
  auto g = Apply(s, p, kNow);
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2031-06-01 01:00:00", "2031-06-01 00:00:00",
                                            "2026-02-01 00:00:00", "2026-01-20 00:00:00"}));
  EXPECT_EQ(Reasons(g, "2026-02-01 00:00:00"), (std::vector<std::string>{"within 15d", "newest"}));
  // Count rules see future snapshots as restic does; the rail keeps both anyway.
  p = {};
  p.daily = 1;
  g = Apply(s, p, kNow);
  EXPECT_EQ(Reasons(g, "2031-06-01 00:00:00"), (std::vector<std::string>{"future"}));
  EXPECT_EQ(Reasons(g, "2026-02-01 00:00:00"), (std::vector<std::string>{"newest"}));
  EXPECT_EQ(Kept(g).size(), 3u);
}

TEST(RetentionRails, EmptyPolicyRemovesNothing) {
  auto g = Apply(Snaps({"2026-01-01 00:00:00", "2026-01-02 00:00:00"}), Policy{});
  EXPECT_EQ(Kept(g).size(), 2u);
  EXPECT_EQ(Reasons(g, "2026-01-01 00:00:00"), (std::vector<std::string>{"policy is empty"}));
}

TEST(RetentionRails, TheNewestOfAGroupIsNeverRemoved) {
  auto s = Snaps({"2026-01-01 00:00:00", "2026-01-02 00:00:00"});
  s[0].tags["keep"] = "yes";
  Policy p;
  p.tags = {{"keep", "yes"}};  // restic would remove 01-02
  auto g = Apply(s, p);
  EXPECT_EQ(Kept(g).size(), 2u);
  EXPECT_EQ(Reasons(g, "2026-01-02 00:00:00"), (std::vector<std::string>{"newest"}));
  EXPECT_EQ(Reasons(g, "2026-01-01 00:00:00"), (std::vector<std::string>{"tag keep=yes"}));
}

TEST(RetentionRails, TheNewestVerifiedIsKeptWhileNewerOnesAreUnproven) {
  // A week of nightly backups; only the first was verified, the later ones failed or were not.
  auto s = Snaps({"2026-01-01 03:00:00", "2026-01-02 03:00:00", "2026-01-03 03:00:00",
                  "2026-01-04 03:00:00", "2026-01-05 03:00:00"});
  s[0].proof = Proof::kVerified;
  s[1].proof = Proof::kVerified;
  s[3].proof = Proof::kFailed;
  Policy p;
  p.last = 2;
  auto g = Apply(s, p);
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2026-01-05 03:00:00", "2026-01-04 03:00:00",
                                            "2026-01-02 03:00:00"}));
  EXPECT_EQ(Reasons(g, "2026-01-02 03:00:00"), (std::vector<std::string>{"verified"}));
  // Once the newest is verified, no older one needs the rail.
  s[4].proof = Proof::kVerified;
  EXPECT_EQ(Kept(Apply(s, p)).size(), 2u);
}

TEST(RetentionRails, ABucketPrefersItsNewestCompleteSnapshot) {
  auto s = Snaps({"2026-01-01 01:00:00", "2026-01-01 02:00:00", "2026-01-01 03:00:00",
                  "2026-01-02 01:00:00", "2026-01-02 02:00:00"});
  s[1].partial = s[2].partial = true;  // 01-01's newest two are partial
  s[3].partial = s[4].partial = true;  // 01-02 has no complete one
  Policy p;
  p.daily = 2;
  auto g = Apply(s, p);
  EXPECT_EQ(Kept(g), (std::set<std::string>{"2026-01-02 02:00:00", "2026-01-01 01:00:00"}));
  EXPECT_EQ(Reasons(g, "2026-01-01 01:00:00"), (std::vector<std::string>{"daily 2"}));
}

TEST(RetentionRails, RemovingAWholeGroupIsRefusedNamingIt) {
  auto s = Snaps({"2026-01-01 00:00:00", "2026-01-02 00:00:00"});
  s.push_back({"other", T("2026-01-03 00:00:00"), "h", {{"stack", "t"}}, {"mail"}, false, {}});
  auto some = ForgetNamed(s, {"2026-01-01 00:00:00"}, GroupBy{});
  EXPECT_TRUE(RefuseWholeGroups(some).ok());
  auto all = ForgetNamed(s, {"2026-01-01 00:00:00", "2026-01-02 00:00:00"}, GroupBy{});
  Status st = RefuseWholeGroups(all);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'host=h stack=s'"), std::string::npos) << st.message();
}

TEST(RetentionGroups, StackTagElseSourcesAndGroupByOptions) {
  std::vector<SnapshotFacts> s = {
      {"a", T("2026-01-01 00:00:00"), "h", {{"stack", "mail"}}, {"mail"}, false, {}},
      {"b", T("2026-01-02 00:00:00"), "h", {{"stack", "web"}}, {"mail"}, false, {}},
      {"c", T("2026-01-03 00:00:00"), "h", {}, {"mail", "data"}, false, {}},
      {"d", T("2026-01-04 00:00:00"), "h", {}, {"data", "mail"}, false, {}},
      {"e", T("2026-01-05 00:00:00"), "g", {{"stack", "mail"}}, {"mail"}, false, {}}};
  Policy p;
  p.last = 1;
  auto keys = [&](const GroupBy& by) {
    std::vector<std::string> out;
    auto groups = ApplyPolicy(s, p, by, kNow);  // kept alive for the loop
    for (const auto& g : groups.value()) out.push_back(g.key);
    return out;
  };
  EXPECT_EQ(keys(GroupBy{}),
            (std::vector<std::string>{"host=g stack=mail", "host=h sources=data,mail",
                                      "host=h stack=mail", "host=h stack=web"}));
  EXPECT_EQ(keys(ParseGroupBy("none").value()), (std::vector<std::string>{"all"}));
  EXPECT_EQ(keys(ParseGroupBy("sources").value()),
            (std::vector<std::string>{"sources=data,mail", "sources=mail"}));
  EXPECT_EQ(Kept(ApplyPolicy(s, p, ParseGroupBy("none").value(), kNow).value()),
            (std::set<std::string>{"e"}));
  EXPECT_FALSE(ParseGroupBy("host,paths").ok());
  EXPECT_FALSE(ParseGroupBy("host,").ok());
  EXPECT_FALSE(ParseGroupBy("").ok());
}

TEST(RetentionTimezone, A2330UtcSnapshotIsTheNextDayInBerlin) {
  auto s = Snaps({"2026-01-10 22:00:00", "2026-01-10 23:30:00"});
  Policy p;
  p.daily = 2;
  EXPECT_EQ(Kept(Apply(s, p)).size(), 1u);  // both on 01-10 in UTC
  p.timezone = "Europe/Berlin";             // 23:00 and 00:30 CET: two days
  EXPECT_EQ(Kept(Apply(s, p)).size(), 2u);
  auto c = ToCivil({T("2026-07-10 23:30:00") / 1000000000}, "Europe/Berlin");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0].day, 11);
  EXPECT_EQ((*c)[0].hour, 1);  // CEST
  EXPECT_EQ((*c)[0].utc_offset, 7200);
}

TEST(RetentionTimezone, AnUnknownZoneIsAnErrorNamingIt) {
  Policy p;
  p.daily = 1;
  for (const char* zone : {"Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe"}) {
    p.timezone = zone;
    auto r = ApplyPolicy(Snaps({"2026-01-10 22:00:00"}), p, GroupBy{}, kNow);
    ASSERT_FALSE(r.ok()) << zone;
    EXPECT_NE(r.status().message().find(std::string("'") + zone + "'"), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace mv::retention
