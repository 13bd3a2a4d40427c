// agent/cli/time_arg.h.
#include "agent/cli/time_arg.h"

#include <cctype>
#include <cstdio>
#include <string_view>

namespace mv::agent {
namespace {

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

Result<int64_t> ParseTimeArg(const std::string& flag, const std::string& given, bool date_only) {
  // A date alone is its midnight UTC.
  std::string text = date_only && given.size() == 10 ? given + " 00:00:00" : given;
  auto bad = [&](const std::string& why) {
    return Status::Invalid(flag + " '" + given + "': " + why +
                           " (use \"YYYY-MM-DD HH:MM:SS\" (UTC), \"YYYY-MM-DDTHH:MM:SSZ\" or an "
                           "offset: \"2026-11-30T03:00:00+01:00\"" +
                           (date_only ? ", or a date: \"2026-11-30\"" : "") + ")");
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, n = 0;
  char sep = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &se,
                  &n) != 7 ||
      n != 19 || (sep != ' ' && sep != 'T') || text[4] != '-' || text[7] != '-')
    return bad("not a date and time");
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18})
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad("not a date and time");
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap))
    return bad("no such date (years 1970-9999)");
  if (h > 23 || mi > 59 || se > 59) return bad("no such time of day");
  std::string_view zone = std::string_view(text).substr(19);
  int offset = 0;
  if (zone == "Z" || zone.empty()) {
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
             std::isdigit(static_cast<unsigned char>(zone[1])) &&
             std::isdigit(static_cast<unsigned char>(zone[2])) &&
             std::isdigit(static_cast<unsigned char>(zone[4])) &&
             std::isdigit(static_cast<unsigned char>(zone[5]))) {
    int oh = (zone[1] - '0') * 10 + (zone[2] - '0'), om = (zone[4] - '0') * 10 + (zone[5] - '0');
    if (oh > 23 || om > 59) return bad("offset out of range");
    offset = (oh * 3600 + om * 60) * (zone[0] == '-' ? -1 : 1);
  } else {
    return bad("unknown time zone suffix '" + std::string(zone) + "'");
  }
  int64_t secs = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  if (secs < 0) return bad("before 1970");
  return secs * 1000000000LL;
}

}  // namespace mv::agent
