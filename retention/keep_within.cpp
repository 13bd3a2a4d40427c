#include "retention/keep_within.h"

#include <charconv>

namespace mv::retention {

std::string KeepWithin::ToString() const {
  std::string s;
  if (years) s += std::to_string(years) + "y";
  if (months) s += std::to_string(months) + "m";
  if (days) s += std::to_string(days) + "d";
  if (hours || s.empty()) s += std::to_string(hours) + "h";
  return s;
}

Result<KeepWithin> ParseKeepWithin(std::string_view text, std::string_view flag) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid(std::string(flag) + " '" + std::string(text) + "': " + why +
                           " (use years, months, days and hours, largest first: 30d, 1y6m, "
                           "2d12h, 48h)");
  };
  if (text.empty()) return bad("empty");
  KeepWithin out;
  std::string_view s = text;
  const std::string_view units = "ymdh";
  size_t next_unit = 0;  // units must come largest first, each once
  while (!s.empty()) {
    int n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) return bad("number too large");
    if (ec != std::errc() || n < 0) return bad("expected a number");
    s.remove_prefix(p - s.data());
    if (s.empty()) return bad("a number without a unit");
    size_t u = units.find(s.front());
    if (u == std::string_view::npos) return bad("unknown unit '" + std::string(1, s.front()) + "'");
    if (u < next_unit) return bad("unit '" + std::string(1, s.front()) + "' out of order or twice");
    next_unit = u + 1;
    s.remove_prefix(1);
    // A century at most in each part: the calendar arithmetic on it cannot overflow.
    static constexpr int kMax[] = {100, 1200, 36600, 878400};
    if (n > kMax[u]) return bad("more than a century");
    int* fields[] = {&out.years, &out.months, &out.days, &out.hours};
    *fields[u] = n;
  }
  return out;
}

}  // namespace mv::retention
