#include "agent/stack/discovery_labels.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

namespace mv::agent {

std::optional<bool> ParseBool(const std::string& value) {
  std::string v = detail::Trim(value);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "true") return true;
  if (v == "false") return false;
  return std::nullopt;
}

Result<std::string> NormalizeVolumePath(const std::string& raw) {
  std::vector<std::string> parts;
  std::string s = detail::Trim(raw);
  size_t start = 0;
  while (start <= s.size()) {
    size_t slash = s.find('/', start);
    std::string part =
        s.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..")
      return Status::Invalid("path '" + raw + "' contains '..': paths must stay inside the volume");
    if (!part.empty() && part != ".") parts.push_back(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return detail::Join(parts, "/");
}

bool LooksLikeDatabase(const std::string& volume_name, const std::string& target) {
  std::string s = volume_name + " " + target;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* word :
       {"db", "database", "postgres", "pgdata", "mysql", "mariadb", "mongo", "sql", "redis"})
    if (s.find(word) != std::string::npos) return true;
  return false;
}

std::vector<const VolumePlan*> StackPlan::BackedUpVolumes() const {
  std::vector<const VolumePlan*> out;
  for (const auto& v : volumes)
    if (v.backed_up) out.push_back(&v);
  return out;
}

const ServicePlan* StackPlan::FindService(const std::string& name) const {
  for (const auto& s : services)
    if (s.name == name || s.short_name == name) return &s;
  return nullptr;
}

bool Plan::HasErrors() const {
  for (const auto& s : stacks)
    if (!s.errors.empty()) return true;
  return false;
}

namespace detail {
namespace {

constexpr const char* kVolumesPrefix = "backupbot.backup.volumes.";

const std::vector<std::string>& KnownKeys() {
  static const std::vector<std::string> keys = {"backupbot.backup",
                                                "backupbot.backup.pre-hook",
                                                "backupbot.backup.post-hook",
                                                "backupbot.restore.pre-hook",
                                                "backupbot.restore.post-hook",
                                                "backupbot.backup.path",
                                                "backupbot.backup.volumes.<vol>",
                                                "backupbot.backup.volumes.<vol>.path"};
  return keys;
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string UnknownKeyWarning(const std::string& service, const std::string& key) {
  std::string best;
  size_t best_d = 4;  // suggest only close typos
  for (const auto& k : KnownKeys()) {
    size_t d = EditDistance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  std::string msg = "service " + service + ": unknown label '" + key + "' is ignored";
  if (!best.empty()) return msg + " (did you mean '" + best + "'?)";
  return msg + " (known: " + Join(KnownKeys(), ", ") + ")";
}

}  // namespace

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string part =
        Trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string StripStack(const std::string& name, const std::string& stack) {
  std::string prefix = stack + "_";
  if (!stack.empty() && name.size() > prefix.size() && name.rfind(prefix, 0) == 0)
    return name.substr(prefix.size());
  return name;
}

ServiceLabels ParseServiceLabels(const ServiceSpec& svc, const std::string& stack, StackPlan& out) {
  ServiceLabels p;
  if (auto it = svc.labels.find("coop-cloud." + stack + ".version"); it != svc.labels.end())
    p.version = it->second;
  for (const auto& [key, value] : svc.labels) {
    if (key.rfind("backupbot.", 0) != 0) continue;
    std::string v = Trim(value);
    if (key == "backupbot.backup") {
      p.backup = ParseBool(v);
      if (!p.backup)
        out.errors.push_back("service " + svc.name + ": backupbot.backup='" + value +
                             "' must be true or false");
    } else if (key == "backupbot.backup.pre-hook") {
      p.hooks.backup_pre = v;
    } else if (key == "backupbot.backup.post-hook") {
      p.hooks.backup_post = v;
    } else if (key == "backupbot.restore.pre-hook") {
      p.hooks.restore_pre = v;
    } else if (key == "backupbot.restore.post-hook") {
      p.hooks.restore_post = v;
    } else if (key == "backupbot.backup.path") {
      p.legacy_paths = value;
    } else if (key.rfind(kVolumesPrefix, 0) == 0 && key.size() > strlen(kVolumesPrefix)) {
      std::string rest = key.substr(strlen(kVolumesPrefix));
      const std::string suffix = ".path";
      if (rest.size() > suffix.size() && rest.ends_with(suffix))
        p.volumes[rest.substr(0, rest.size() - suffix.size())].paths = value;
      else
        p.volumes[rest].include = value;
    } else {
      out.warnings.push_back(UnknownKeyWarning(svc.name, key));
    }
  }
  return p;
}

void CheckMisplacedLabels(const ServiceSpec& svc, const NodeState* node, StackPlan& out) {
  std::map<std::string, std::string> seen = svc.container_labels;
  if (node) {
    auto it = node->containers.find(svc.name);
    if (it != node->containers.end()) {
      for (const auto& id : it->second) {
        auto labels = node->container_labels.find(id);
        if (labels != node->container_labels.end())
          seen.insert(labels->second.begin(), labels->second.end());
      }
    }
  }
  for (const auto& [key, value] : seen) {
    if (key.rfind("backupbot.", 0) != 0) continue;
    auto on_service = svc.labels.find(key);
    if (on_service != svc.labels.end() && on_service->second == value) continue;
    std::string msg = "MISPLACED LABEL: service " + svc.name + ": '" + key + "=" + value +
                      "' is a container label (compose `labels:`), not a service label "
                      "(`deploy.labels:`), so it has NO effect";
    if (on_service != svc.labels.end())
      msg += " (the service label says '" + on_service->second + "')";
    else if (key == "backupbot.backup")
      msg += ": this service does not enable the stack's backup";
    out.warnings.push_back(msg + ". Move it under deploy.labels and redeploy.");
  }
}

}  // namespace detail
}  // namespace mv::agent
