// The duration of `forget --keep-within`: calendar years, months, days and hours, written the way
// restic writes it ("30d", "1y6m", "2d12h"), so an operator's restic policy reads the same here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace mv::retention {

struct KeepWithin {
  int years = 0, months = 0, days = 0, hours = 0;
  bool zero() const { return years == 0 && months == 0 && days == 0 && hours == 0; }
  std::string ToString() const;  // "1y6m", "30d"; "0h" for zero
};

// "30d", "1y6m", "2d12h", "48h": each part a non-negative number and one of y, m, d, h, each
// unit at most once, largest first. Anything else is kInvalid naming `flag`, the text and the form.
Result<KeepWithin> ParseKeepWithin(std::string_view text, std::string_view flag = "--keep-within");

}  // namespace mv::retention
