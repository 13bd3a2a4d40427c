#include "retention/select.h"

#include <ctime>
#include <map>

namespace mv::retention {
namespace {

std::string Tag(const storage::SnapshotMeta& m, const std::string& key) {
  auto it = m.tags.find(key);
  return it == m.tags.end() ? "" : it->second;
}

// Its group: host and stack ("host=mx1 stack=mail"; "host=mx1" without a stack tag). Unlike
// forget's groups, not the source names: a backup that adds a source does not split `latest`.
std::string Key(const storage::SnapshotMeta& m) {
  std::string stack = Tag(m, "stack");
  return "host=" + m.host + (stack.empty() ? "" : " stack=" + stack);
}

std::string When(int64_t unix_seconds) {
  char buf[40];
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", gmtime_r(&t, &tm));
  return buf;
}

// The flags that select a group: its stack (or, without one, its host).
std::string Picker(const storage::SnapshotMeta& m, bool hosts_differ) {
  std::string stack = Tag(m, "stack"), out;
  if (!stack.empty()) out = "--stack " + stack;
  if (stack.empty() || hosts_differ) out += (out.empty() ? "" : " ") + ("--host " + m.host);
  return out;
}

}  // namespace

bool SnapshotFilter::Matches(const storage::SnapshotMeta& m) const {
  if (!host.empty() && m.host != host) return false;
  if (!stack.empty() && Tag(m, "stack") != stack) return false;
  for (const auto& [k, v] : tags) {
    auto it = m.tags.find(k);
    if (it == m.tags.end() || it->second != v) return false;
  }
  return true;
}

std::string SnapshotFilter::Describe() const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : " ") + s; };
  if (!stack.empty()) add("--stack " + stack);
  if (!host.empty()) add("--host " + host);
  for (const auto& [k, v] : tags) add("--tag " + k + "=" + v);
  return out;
}

Result<std::string> ResolveSnapshotRef(const storage::Repository& repo, const std::string& ref,
                                       const SnapshotFilter& filter) {
  if (ref != "latest") return repo.ResolveSnapshot(ref);
  // Resolved by the repository first: an empty repository or all-damaged manifests are its
  // errors, whatever the filter.
  MV_RETURN_IF_ERROR(repo.ResolveSnapshot("latest").status());
  MV_ASSIGN_OR_RETURN(auto snaps, repo.ListSnapshots());       // oldest first
  std::map<std::string, const storage::SnapshotMeta*> newest;  // per group
  std::string hosts;
  bool hosts_differ = false;
  for (const auto& s : snaps) {
    if (!filter.Matches(s)) continue;
    newest[Key(s)] = &s;
    if (hosts.empty()) hosts = s.host;
    hosts_differ |= s.host != hosts;
  }
  if (newest.empty())
    return Status::NotFound(
        "no snapshot matches " + filter.Describe() + "; list them with `mailvault snapshots`",
        repo.path());
  if (newest.size() == 1) return newest.begin()->second->id;
  std::string list;
  for (const auto& [key, s] : newest)
    list += "\n  " + key + "  newest " + s->id.substr(0, 8) + " " + When(s->time) + "  (" +
            Picker(*s, hosts_differ) + ")";
  return Status::Invalid(
      "'latest' is ambiguous: " +
      (filter.empty() ? std::string("the repository") : "the snapshots of " + filter.Describe()) +
      (filter.empty() ? " holds " : " hold ") + std::to_string(newest.size()) +
      " groups; pick one with --stack, --host or --tag, or give a snapshot ID:" + list);
}

}  // namespace mv::retention
