// When the sidecar runs: a 5-field cron expression and the durations of its options.
//
// Pure functions of their arguments (no clock, no randomness), so every rule is unit-tested in
// tests/schedule_test.cpp. Times are UTC: a container rarely carries zone data, and an operator
// reading "0 3 * * *" in logs and health output should not have to guess a zone.
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace mv::agent {

using Seconds = std::chrono::sys_seconds;

// "minute hour day-of-month month day-of-week", as in crontab(5):
//   *   a-b   a-b/n   */n   a,b,c   and names (jan..dec, sun..sat, case-insensitive);
//   day-of-week 0 and 7 are Sunday; @hourly @daily @midnight @weekly @monthly @yearly @annually.
// When both day-of-month and day-of-week are restricted (neither starts with '*'), a day
// matches if EITHER matches (Vixie cron's rule, which every crontab user expects).
class CronSchedule {
 public:
  // Errors name the field and the offending text, e.g. "hour: 24 is out of range 0-23".
  static Result<CronSchedule> Parse(std::string_view expr);

  // The first whole minute strictly after `after` that matches, or nullopt when none exists
  // within the next 8 years (e.g. "0 0 30 2 *": February 30th).
  std::optional<Seconds> Next(Seconds after) const;

  // True when the minute containing `t` matches.
  bool Matches(Seconds t) const;

  const std::string& expression() const { return expr_; }

 private:
  bool DayMatches(int mday, int month, int wday) const;

  std::string expr_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> mdays_;   // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> wdays_;    // 0..6, Sunday = 0
  bool mday_star_ = false, wday_star_ = false;
};

// "90", "90s", "10m", "2h", "1h30m", "0": a non-negative duration. Bare numbers are seconds.
Result<std::chrono::seconds> ParseDuration(std::string_view text);

// Formats `t` as "2026-11-23T03:00:00Z".
std::string FormatUtc(Seconds t);

}  // namespace mv::agent
