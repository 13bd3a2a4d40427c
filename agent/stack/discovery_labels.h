// Internal to discovery: one service's backupbot.* labels, parsed, and small string helpers.
// Not a public API; discovery.cpp and compose.cpp use it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/stack/discovery.h"

namespace mv::agent::detail {

struct VolumeLabels {
  std::optional<std::string> include;  // backupbot.backup.volumes.<vol>
  std::optional<std::string> paths;    // backupbot.backup.volumes.<vol>.path
};

struct ServiceLabels {
  std::optional<bool> backup;  // backupbot.backup
  HookSet hooks;
  std::optional<std::string> legacy_paths;  // backupbot.backup.path (v1)
  std::map<std::string, VolumeLabels> volumes;
  std::string version;  // coop-cloud.<stack>.version
};

// Parses svc.labels; bad values become stack errors, unknown backupbot.* keys warnings.
ServiceLabels ParseServiceLabels(const ServiceSpec& svc, const std::string& stack, StackPlan& out);
// Loud warnings for backupbot.* labels set on containers but not on the service.
void CheckMisplacedLabels(const ServiceSpec& svc, const NodeState* node, StackPlan& out);

std::string Trim(const std::string& s);
std::vector<std::string> SplitComma(const std::string& s);
std::string Join(const std::vector<std::string>& v, const std::string& sep);
// "mailu_imap" -> "imap" for stack "mailu"; unchanged when not prefixed.
std::string StripStack(const std::string& name, const std::string& stack);

}  // namespace mv::agent::detail
