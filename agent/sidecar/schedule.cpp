#include "agent/sidecar/schedule.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <vector>

namespace mv::agent {
namespace {

using namespace std::chrono;

struct FieldSpec {
  const char* name;
  int lo, hi;
  const char* const* names;  // names[i] is the value lo + i (or nullptr)
  int names_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0},       {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0}, {"month", 1, 12, kMonthNames, 12},
    {"day-of-week", 0, 7, kDayNames, 7},  // 7 is Sunday too
};

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Result<int> ParseValue(const FieldSpec& f, std::string_view tok) {
  std::string lower(tok);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (int i = 0; i < f.names_count; ++i)
    if (lower == f.names[i]) return f.names == kMonthNames ? i + 1 : i;
  int v = 0;
  auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
  if (tok.empty() || ec != std::errc() || p != tok.data() + tok.size())
    return Status::Invalid(std::string(f.name) + ": '" + std::string(tok) + "' is not a number" +
                           (f.names ? " or a name" : ""));
  if (v < f.lo || v > f.hi)
    return Status::Invalid(std::string(f.name) + ": " + std::to_string(v) + " is out of range " +
                           std::to_string(f.lo) + "-" + std::to_string(f.hi));
  return v;
}

// Parses one comma-separated field into the set of values it allows (bit i = value i).
Result<std::bitset<64>> ParseField(const FieldSpec& f, std::string_view text) {
  std::bitset<64> bits;
  for (std::string_view item : Split(text, ',')) {
    int step = 1;
    bool has_step = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      std::string_view st = item.substr(slash + 1);
      auto [p, ec] = std::from_chars(st.data(), st.data() + st.size(), step);
      if (st.empty() || ec != std::errc() || p != st.data() + st.size() || step <= 0)
        return Status::Invalid(std::string(f.name) + ": bad step '" + std::string(st) + "' in '" +
                               std::string(text) + "'");
      item = item.substr(0, slash);
      has_step = true;
    }
    int lo = f.lo, hi = f.hi;
    if (item == "*") {
      if (f.lo == 0 && f.hi == 7) hi = 6;  // "*" in day-of-week must not add Sunday twice
    } else if (auto dash = item.find('-'); dash != std::string_view::npos) {
      MV_ASSIGN_OR_RETURN(lo, ParseValue(f, item.substr(0, dash)));
      MV_ASSIGN_OR_RETURN(hi, ParseValue(f, item.substr(dash + 1)));
      if (lo > hi)
        return Status::Invalid(std::string(f.name) + ": range '" + std::string(item) +
                               "' runs backwards");
    } else {
      MV_ASSIGN_OR_RETURN(lo, ParseValue(f, item));
      // "5/15" means 5, 20, 35, 50 (from 5 to the end of the range), as in Vixie cron.
      hi = has_step ? f.hi : lo;
    }
    for (int v = lo; v <= hi; v += step) bits.set(v);
  }
  return bits;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string ExpandMacro(std::string_view expr) {
  static constexpr std::array<std::pair<const char*, const char*>, 7> kMacros = {
      {{"@hourly", "0 * * * *"},
       {"@daily", "0 0 * * *"},
       {"@midnight", "0 0 * * *"},
       {"@weekly", "0 0 * * 0"},
       {"@monthly", "0 0 1 * *"},
       {"@yearly", "0 0 1 1 *"},
       {"@annually", "0 0 1 1 *"}}};
  for (const auto& [name, value] : kMacros)
    if (expr == name) return value;
  return std::string(expr);
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expr_in) {
  std::string_view trimmed = Trim(expr_in);
  std::string expr = ExpandMacro(trimmed);
  if (!expr.empty() && expr[0] == '@')
    return Status::Invalid("schedule '" + expr +
                           "': unknown macro (use @hourly, @daily, "
                           "@weekly, @monthly or @yearly)");
  std::vector<std::string_view> fields;
  for (std::string_view part : Split(expr, ' '))
    if (!Trim(part).empty()) fields.push_back(Trim(part));
  if (fields.size() != 5)
    return Status::Invalid("schedule '" + std::string(trimmed) + "' has " +
                           std::to_string(fields.size()) +
                           " fields; expected 5: minute hour day-of-month month day-of-week");
  CronSchedule s;
  s.expr_ = std::string(trimmed);
  std::bitset<64> b[5];
  for (int i = 0; i < 5; ++i) {
    auto r = ParseField(kFields[i], fields[i]);
    if (!r.ok()) return Status::Invalid("schedule '" + s.expr_ + "': " + r.status().message());
    b[i] = *r;
  }
  for (int v = 0; v < 60; ++v) s.minutes_[v] = b[0][v];
  for (int v = 0; v < 24; ++v) s.hours_[v] = b[1][v];
  for (int v = 1; v < 32; ++v) s.mdays_[v] = b[2][v];
  for (int v = 1; v < 13; ++v) s.months_[v] = b[3][v];
  for (int v = 0; v < 7; ++v) s.wdays_[v] = b[4][v];
  if (b[4][7]) s.wdays_[0] = true;
  s.mday_star_ = fields[2][0] == '*';
  s.wday_star_ = fields[4][0] == '*';
  return s;
}

bool CronSchedule::DayMatches(int mday, int month, int wday) const {
  if (!months_[month]) return false;
  if (mday_star_ || wday_star_) return mdays_[mday] && wdays_[wday];
  return mdays_[mday] || wdays_[wday];
}

bool CronSchedule::Matches(Seconds t) const {
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  int wday = static_cast<int>(weekday{day}.c_encoding());
  return DayMatches(static_cast<int>(static_cast<unsigned>(ymd.day())),
                    static_cast<int>(static_cast<unsigned>(ymd.month())), wday) &&
         hours_[hms.hours().count()] && minutes_[hms.minutes().count()];
}

std::optional<Seconds> CronSchedule::Next(Seconds after) const {
  // Walk day by day, then hour by hour, then minute by minute; at most 8 years of days.
  Seconds t = floor<minutes>(after) + minutes{1};
  const Seconds limit = t + days{366 * 8};
  while (t < limit) {
    auto day = floor<days>(t);
    year_month_day ymd{day};
    int wday = static_cast<int>(weekday{day}.c_encoding());
    if (!DayMatches(static_cast<int>(static_cast<unsigned>(ymd.day())),
                    static_cast<int>(static_cast<unsigned>(ymd.month())), wday)) {
      t = day + days{1};
      continue;
    }
    hh_mm_ss hms{t - day};
    if (!hours_[hms.hours().count()]) {
      t = floor<hours>(t) + hours{1};
      continue;
    }
    if (!minutes_[hms.minutes().count()]) {
      t += minutes{1};
      continue;
    }
    return t;
  }
  return std::nullopt;
}

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  std::string_view s = Trim(text);
  if (s.empty()) return Status::Invalid("empty duration: use e.g. 90s, 10m or 1h");
  long long total = 0;
  while (!s.empty()) {
    long long n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || n < 0)
      return Status::Invalid("duration '" + std::string(text) + "': expected a number, e.g. 10m");
    s.remove_prefix(p - s.data());
    long long unit = 1;
    if (!s.empty()) {
      switch (s.front()) {
        case 's':
          unit = 1;
          break;
        case 'm':
          unit = 60;
          break;
        case 'h':
          unit = 3600;
          break;
        case 'd':
          unit = 86400;
          break;
        default:
          return Status::Invalid("duration '" + std::string(text) + "': unknown unit '" +
                                 std::string(1, s.front()) + "' (use s, m, h or d)");
      }
      s.remove_prefix(1);
    }
    // At most a century, so the sum cannot overflow, nor can a later conversion to nanoseconds.
    constexpr long long kMaxSeconds = 100LL * 366 * 86400;
    if (n > kMaxSeconds / unit || total > kMaxSeconds - n * unit)
      return Status::Invalid("duration '" + std::string(text) +
                             "' is too long (at most 100 years)");
    total += n * unit;
  }
  return std::chrono::seconds{total};
}

std::string FormatUtc(Seconds t) {
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

}  // namespace mv::agent
