// The sidecar's cron schedule (agent/sidecar/schedule.h): what crontab(5) users expect, in UTC.
#include "agent/sidecar/schedule.h"

#include <gtest/gtest.h>

namespace mv::agent {
namespace {

using namespace std::chrono;

Seconds At(int y, unsigned mo, unsigned d, int h, int mi, int s = 0) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

std::string NextAfter(const std::string& expr, Seconds after) {
  auto s = CronSchedule::Parse(expr);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return "parse error";
  auto next = s->Next(after);
  return next ? FormatUtc(*next) : "never";
}

std::string ParseError(const std::string& expr) {
  auto s = CronSchedule::Parse(expr);
  return s.ok() ? "parsed" : s.status().message();
}

TEST(CronSchedule, DailyAtThreeRunsTodayWhenStillAhead) {
  EXPECT_EQ(NextAfter("0 3 * * *", At(2026, 11, 23, 1, 30)), "2026-11-23T03:00:00Z");
}

TEST(CronSchedule, DailyAtThreeRunsTomorrowWhenPassed) {
  EXPECT_EQ(NextAfter("0 3 * * *", At(2026, 11, 23, 3, 0, 0)), "2026-11-24T03:00:00Z");
  EXPECT_EQ(NextAfter("0 3 * * *", At(2026, 11, 23, 17, 5)), "2026-11-24T03:00:00Z");
}

TEST(CronSchedule, NextIsStrictlyAfterEvenWithinTheMatchingMinute) {
  EXPECT_EQ(NextAfter("* * * * *", At(2026, 1, 1, 0, 0, 59)), "2026-01-01T00:01:00Z");
  EXPECT_EQ(NextAfter("* * * * *", At(2026, 1, 1, 0, 0, 0)), "2026-01-01T00:01:00Z");
}

TEST(CronSchedule, StepsRangesAndLists) {
  EXPECT_EQ(NextAfter("*/15 * * * *", At(2026, 1, 1, 10, 16)), "2026-01-01T10:30:00Z");
  EXPECT_EQ(NextAfter("5/20 * * * *", At(2026, 1, 1, 10, 26)), "2026-01-01T10:45:00Z");
  EXPECT_EQ(NextAfter("0 9-17/4 * * *", At(2026, 1, 1, 13, 1)), "2026-01-01T17:00:00Z");
  EXPECT_EQ(NextAfter("30 1,13,22 * * *", At(2026, 1, 1, 13, 31)), "2026-01-01T22:30:00Z");
}

TEST(CronSchedule, CrossesMonthYearAndLeapDay) {
  EXPECT_EQ(NextAfter("0 0 1 * *", At(2026, 12, 15, 0, 0)), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextAfter("0 12 29 2 *", At(2026, 3, 1, 0, 0)), "2028-02-29T12:00:00Z");
  EXPECT_EQ(NextAfter("0 0 31 * *", At(2026, 4, 1, 0, 0)), "2026-05-31T00:00:00Z");
}

TEST(CronSchedule, DayOfWeekWithSundayAsZeroOrSeven) {
  // 2026-11-23 is a Monday.
  EXPECT_EQ(NextAfter("0 4 * * 0", At(2026, 11, 23, 12, 0)), "2026-11-29T04:00:00Z");
  EXPECT_EQ(NextAfter("0 4 * * 7", At(2026, 11, 23, 12, 0)), "2026-11-29T04:00:00Z");
  EXPECT_EQ(NextAfter("0 4 * * mon-fri", At(2026, 11, 27, 12, 0)), "2026-11-30T04:00:00Z");
}

TEST(CronSchedule, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  // Vixie cron: "the 15th, or any Friday". 2026-11-27 is a Friday, before the 15th of December.
  EXPECT_EQ(NextAfter("0 0 15 * fri", At(2026, 11, 23, 0, 0)), "2026-11-27T00:00:00Z");
  // With day-of-week "*", only the day of month counts.
  EXPECT_EQ(NextAfter("0 0 15 * *", At(2026, 11, 23, 0, 0)), "2026-12-15T00:00:00Z");
}

TEST(CronSchedule, MonthAndDayNamesAreCaseInsensitive) {
  EXPECT_EQ(NextAfter("0 0 1 JAN,Jul *", At(2026, 2, 1, 0, 0)), "2026-07-01T00:00:00Z");
  EXPECT_EQ(NextAfter("0 0 * * SUN", At(2026, 11, 23, 0, 0)), "2026-11-29T00:00:00Z");
}

TEST(CronSchedule, Macros) {
  EXPECT_EQ(NextAfter("@daily", At(2026, 11, 23, 17, 0)), "2026-11-24T00:00:00Z");
  EXPECT_EQ(NextAfter("@hourly", At(2026, 11, 23, 17, 0)), "2026-11-23T18:00:00Z");
  EXPECT_EQ(NextAfter("@weekly", At(2026, 11, 23, 17, 0)), "2026-11-29T00:00:00Z");
  EXPECT_EQ(NextAfter(" @monthly ", At(2026, 11, 23, 17, 0)), "2026-12-01T00:00:00Z");
  EXPECT_EQ(ParseError("@fortnightly"),
            "schedule '@fortnightly': unknown macro (use @hourly, @daily, @weekly, @monthly or "
            "@yearly)");
}

TEST(CronSchedule, ImpossibleDateNeverRuns) {
  EXPECT_EQ(NextAfter("0 0 30 2 *", At(2026, 1, 1, 0, 0)), "never");
}

TEST(CronSchedule, MatchesTheWholeMinute) {
  auto s = CronSchedule::Parse("0 3 * * *");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Matches(At(2026, 11, 23, 3, 0, 42)));
  EXPECT_FALSE(s->Matches(At(2026, 11, 23, 3, 1, 0)));
}

TEST(CronSchedule, ErrorsNameTheFieldAndTheText) {
  EXPECT_EQ(ParseError("0 24 * * *"), "schedule '0 24 * * *': hour: 24 is out of range 0-23");
  EXPECT_EQ(ParseError("0 3 * *"),
            "schedule '0 3 * *' has 4 fields; expected 5: minute hour day-of-month month "
            "day-of-week");
  EXPECT_EQ(ParseError("x 3 * * *"), "schedule 'x 3 * * *': minute: 'x' is not a number");
  EXPECT_EQ(ParseError("0 3 * foo *"),
            "schedule '0 3 * foo *': month: 'foo' is not a number or a name");
  EXPECT_EQ(ParseError("*/0 * * * *"), "schedule '*/0 * * * *': minute: bad step '0' in '*/0'");
  EXPECT_EQ(ParseError("0 5-2 * * *"), "schedule '0 5-2 * * *': hour: range '5-2' runs backwards");
  EXPECT_EQ(ParseError("0 0 0 * *"), "schedule '0 0 0 * *': day-of-month: 0 is out of range 1-31");
}

TEST(ParseDuration, UnitsAndCombinations) {
  EXPECT_EQ(ParseDuration("90")->count(), 90);
  EXPECT_EQ(ParseDuration("90s")->count(), 90);
  EXPECT_EQ(ParseDuration("10m")->count(), 600);
  EXPECT_EQ(ParseDuration("1h30m")->count(), 5400);
  EXPECT_EQ(ParseDuration("1d")->count(), 86400);
  EXPECT_EQ(ParseDuration("0")->count(), 0);
}

TEST(ParseDuration, RejectsWhatItCannotRead) {
  EXPECT_EQ(ParseDuration("10x").status().message(),
            "duration '10x': unknown unit 'x' (use s, m, h or d)");
  EXPECT_EQ(ParseDuration("-5m").status().message(), "duration '-5m': expected a number, e.g. 10m");
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("m").ok());
}

}  // namespace
}  // namespace mv::agent
