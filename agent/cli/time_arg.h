// A point in time on the command line (`backup --time`, `restore --deleted-since`).
#pragma once

#include <cstdint>
#include <string>

#include "storage/status.h"

namespace mv::agent {

// "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS", UTC unless followed by "Z" or an offset
// "+HH:MM"/"-HH:MM"; with `date_only` also "YYYY-MM-DD" (its midnight UTC). Years 1970-9999.
// Nanoseconds since the epoch, or kInvalid naming `flag`, the text and the accepted forms.
Result<int64_t> ParseTimeArg(const std::string& flag, const std::string& text,
                             bool date_only = false);

}  // namespace mv::agent
