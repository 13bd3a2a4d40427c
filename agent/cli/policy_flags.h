// The retention rules on a command line (`forget`, and `agent`, which forgets after each
// successful night): --keep-last/-hourly/-daily/-weekly/-monthly/-yearly N, --keep-within D,
// --keep-tag K=V, --timezone Z, and --keep-deleted-mail D. Kept as typed, so a bad value is
// reported with its flag.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "retention/policy.h"
#include "storage/status.h"

namespace mv::agent {

struct PolicyFlags {
  std::string last, hourly, daily, weekly, monthly, yearly, within, timezone;
  std::string keep_deleted_mail;  // --keep-deleted-mail D
  std::vector<std::string> keep_tags;
};

void AddPolicyOptions(CLI::App* sub, PolicyFlags* f);
// kInvalid naming the flag and its value for a count that is not a whole number from 0 to
// 1,000,000, a --keep-within that does not parse, a --keep-tag without '=', an unknown zone.
Status ParsePolicy(const PolicyFlags& f, retention::Policy* out);
// --keep-deleted-mail as nanoseconds (0 when not given); a year counts 365 days, a month 30.
// kInvalid naming the value for one that does not parse or is zero.
Status ParseKeepDeletedMail(const PolicyFlags& f, int64_t* ns);

}  // namespace mv::agent
