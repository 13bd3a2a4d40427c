// The report's value helpers, its JSON and its Prometheus textfile.
#include "verify/report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "verify/verify_json.h"

namespace mv::verify {

std::string GroupOf(const storage::SnapshotMeta& m) {
  auto it = m.tags.find("stack");
  if (it != m.tags.end() && !it->second.empty()) return it->second;
  std::vector<std::string> names;
  for (const auto& s : m.sources) names.push_back(s.name);
  std::sort(names.begin(), names.end());
  std::string g = "sources:";
  for (size_t i = 0; i < names.size(); i++) g += (i ? "," : "") + names[i];
  return g;
}

uint32_t RotationBucket(int64_t now, uint32_t nights) {
  if (nights == 0) return 0;
  return static_cast<uint32_t>((now / 86400) % nights);
}

bool Report::damage() const {
  if (!check.ok() || !check_error.empty()) return true;
  for (const auto& g : groups)
    if (g.verified && !g.verify_ok) return true;
  return false;
}

bool Report::stale() const {
  for (const auto& g : groups)
    if (g.stale) return true;
  return false;
}

nlohmann::json RenderJson(const Report& r) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : r.groups) {
    nlohmann::json hist = nlohmann::json::array();
    for (const auto& h : g.history)
      hist.push_back(
          {{"time", h.time}, {"messages", h.messages}, {"repository_bytes", h.repository_bytes}});
    groups.push_back({{"name", g.name},
                      {"snapshot", g.snapshot},
                      {"last_time", g.last_time},
                      {"last_success_time", g.last_success_time},
                      {"age_seconds", g.age_seconds},
                      {"stale", g.stale},
                      {"verified", g.verified},
                      {"verify_skipped", g.verify_skipped},
                      {"verify_ok", g.verify_ok},
                      {"verify_error", g.verify_error},
                      {"verify_errors", g.verify_errors},
                      {"lost_messages", g.lost_messages},
                      {"messages", g.messages},
                      {"snapshots", g.snapshots},
                      {"oldest_time", g.oldest_time},
                      {"last_verified_snapshot", g.last_verified_snapshot},
                      {"last_verified_time", g.last_verified_time},
                      {"mailbox_messages", g.mailbox_messages},
                      {"hooks", g.hooks},
                      {"history", hist},
                      {"verify", g.verify_json}});
  }
  return {{"generated", r.generated},
          {"repository", r.repository},
          {"exit_code", r.exit_code},
          {"damage", r.damage()},
          {"stale", r.stale()},
          {"max_age_seconds", r.max_age_seconds},
          {"rotation", {{"nights", r.rotate_nights}, {"bucket", r.rotation_bucket + 1}}},
          {"repository_bytes", r.repository_bytes},
          {"downloaded_bytes", r.downloaded_bytes},
          {"pack_bytes", r.pack_bytes},
          {"logical_bytes", r.logical_bytes},
          {"dedup_ratio", r.dedup_ratio},
          {"growth_bytes_24h", r.growth_bytes_24h},
          {"snapshots", r.snapshots},
          {"prune_reclaimed_bytes", r.prune_reclaimed_bytes},
          {"held_deleted_messages", r.held_messages},
          {"held_deleted_bytes", r.held_bytes},
          {"check", ToJson(r.check)},
          {"check_error", r.check_error},
          {"groups", groups}};
}

namespace {

// Label values: backslash, double quote and newline escaped (exposition format).
std::string Label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\')
      o += "\\\\";
    else if (c == '"')
      o += "\\\"";
    else if (c == '\n')
      o += "\\n";
    else
      o += c;
  }
  return o;
}

class Prom {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void Sample(const char* name, const std::vector<std::pair<const char*, std::string>>& labels,
              double v) {
    out_ << name;
    if (!labels.empty()) {
      out_ << "{";
      for (size_t i = 0; i < labels.size(); i++)
        out_ << (i ? "," : "") << labels[i].first << "=\"" << Label(labels[i].second) << "\"";
      out_ << "}";
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    out_ << " " << buf << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

std::string RenderPrometheus(const Report& r) {
  Prom p;
  p.Family("mailvault_build_info", "gauge", "Always 1; the version of mailvault that wrote this.");
  p.Sample("mailvault_build_info", {{"version", r.version.empty() ? "unknown" : r.version}}, 1);
  auto per_group = [&](const char* name, const char* type, const char* help, auto value) {
    p.Family(name, type, help);
    for (const auto& g : r.groups) p.Sample(name, {{"stack", g.name}}, value(g));
  };
  per_group("mailvault_last_success_timestamp_seconds", "gauge",
            "Start time of the latest complete snapshot of the stack.",
            [](const GroupReport& g) { return static_cast<double>(g.last_success_time); });
  per_group("mailvault_snapshot_age_seconds", "gauge", "Age of the latest snapshot of the stack.",
            [](const GroupReport& g) { return static_cast<double>(g.age_seconds); });
  per_group("mailvault_stale", "gauge",
            "1 when no successful backup is within the expected interval.",
            [](const GroupReport& g) { return g.stale ? 1.0 : 0.0; });
  // Only for stacks verified tonight: a remote repository's report restores nothing unless
  // asked (--full-verify), and an absent sample is not a failed one.
  p.Family("mailvault_verify_ok", "gauge",
           "1 when the latest snapshot verified complete and consistent (absent when the report "
           "did not restore it: a remote repository without --full-verify).");
  for (const auto& g : r.groups)
    if (g.verified) p.Sample("mailvault_verify_ok", {{"stack", g.name}}, g.verify_ok ? 1.0 : 0.0);
  per_group("mailvault_lost_messages", "gauge",
            "Messages of the latest snapshot that did not restore intact.",
            [](const GroupReport& g) { return static_cast<double>(g.lost_messages); });
  per_group("mailvault_backup_duration_seconds", "gauge",
            "How long the backup that made the stack's latest snapshot took.",
            [](const GroupReport& g) { return g.backup_seconds; });
  per_group("mailvault_backup_added_bytes", "gauge",
            "Packed bytes the stack's latest snapshot added to the repository.",
            [](const GroupReport& g) { return static_cast<double>(g.added_bytes); });
  // Only in reports the agent writes after its run: a report on its own has not seen a run.
  if (r.run_exit_code >= 0) {
    p.Family("mailvault_run_exit_code", "gauge",
             "Exit code of the agent's backup run before this report (0 ok, 1 failed, 3 partial).");
    p.Sample("mailvault_run_exit_code", {}, r.run_exit_code);
    p.Family("mailvault_last_run_exit_code", "gauge",
             "Exit code of the stack's backup in the agent's last run (0 ok, 1 failed, 3 "
             "partial).");
    for (const auto& g : r.groups)
      if (g.last_run_exit_code >= 0)
        p.Sample("mailvault_last_run_exit_code", {{"stack", g.name}}, g.last_run_exit_code);
  }
  per_group("mailvault_snapshots", "gauge", "Snapshots kept for the stack.",
            [](const GroupReport& g) { return static_cast<double>(g.snapshots); });
  per_group("mailvault_oldest_snapshot_timestamp_seconds", "gauge",
            "Start time of the oldest snapshot kept for the stack: the oldest restorable point.",
            [](const GroupReport& g) { return static_cast<double>(g.oldest_time); });
  per_group("mailvault_last_verified_snapshot_timestamp_seconds", "gauge",
            "Start time of the newest snapshot of the stack that verify proved to restore "
            "(0: none).",
            [](const GroupReport& g) { return static_cast<double>(g.last_verified_time); });
  p.Family("mailvault_messages", "gauge", "Messages per mailbox in the latest snapshot's census.");
  for (const auto& g : r.groups)
    for (const auto& [mb, n] : g.mailbox_messages)
      p.Sample("mailvault_messages", {{"stack", g.name}, {"mailbox", mb}}, n);
  p.Family("mailvault_repository_bytes", "gauge", "Bytes used by the repository directory.");
  p.Sample("mailvault_repository_bytes", {}, r.repository_bytes);
  p.Family("mailvault_report_downloaded_bytes", "gauge",
           "Bytes this report read from a remote (S3) repository; 0 for a local one.");
  p.Sample("mailvault_report_downloaded_bytes", {}, r.downloaded_bytes);
  p.Family("mailvault_repository_growth_24h_bytes", "gauge",
           "Packed bytes added by snapshots of the last 24 hours.");
  p.Sample("mailvault_repository_growth_24h_bytes", {}, r.growth_bytes_24h);
  p.Family("mailvault_dedup_ratio", "gauge",
           "Logical bytes of all snapshots divided by packed bytes.");
  p.Sample("mailvault_dedup_ratio", {}, r.dedup_ratio);
  if (r.prune_reclaimed_bytes >= 0) {
    p.Family("mailvault_prune_reclaimed_bytes", "gauge",
             "Pack bytes the prune after tonight's backup gave back.");
    p.Sample("mailvault_prune_reclaimed_bytes", {}, static_cast<double>(r.prune_reclaimed_bytes));
  }
  p.Family("mailvault_held_deleted_messages", "gauge",
           "Deleted messages held restorable by forget --keep-deleted-mail.");
  p.Sample("mailvault_held_deleted_messages", {}, static_cast<double>(r.held_messages));
  p.Family("mailvault_held_deleted_bytes", "gauge",
           "Bytes of the deleted messages held by forget --keep-deleted-mail.");
  p.Sample("mailvault_held_deleted_bytes", {}, static_cast<double>(r.held_bytes));
  p.Family("mailvault_check_ok", "gauge", "1 when tonight's repository check found no damage.");
  p.Sample("mailvault_check_ok", {}, r.check.ok() && r.check_error.empty() ? 1 : 0);
  p.Family("mailvault_check_problems", "gauge", "Damage found by tonight's repository check.");
  p.Sample("mailvault_check_problems", {}, static_cast<double>(r.check.errors()));
  p.Family("mailvault_check_packs_read", "gauge", "Packs re-read by tonight's rotating check.");
  p.Sample("mailvault_check_packs_read", {}, static_cast<double>(r.check.packs_read));
  p.Family("mailvault_report_timestamp_seconds", "gauge", "When this report was generated.");
  p.Sample("mailvault_report_timestamp_seconds", {}, static_cast<double>(r.generated));
  return p.str();
}

}  // namespace mv::verify
