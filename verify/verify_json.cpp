#include "verify/verify_json.h"

namespace mv::verify {
namespace {

nlohmann::json Refs(const std::vector<MessageRef>& v, size_t max) {
  nlohmann::json a = nlohmann::json::array();
  for (size_t i = 0; i < v.size() && i < max; i++) {
    const auto& m = v[i];
    nlohmann::json j = {
        {"source", m.source}, {"mailbox", m.mailbox}, {"folder", m.folder}, {"unique", m.unique}};
    if (!m.base_path.empty()) j["snapshot_path"] = m.base_path, j["snapshot_size"] = m.base_size;
    if (!m.other_path.empty()) j["other_path"] = m.other_path, j["other_size"] = m.other_size;
    a.push_back(std::move(j));
  }
  return a;
}

}  // namespace

nlohmann::json ToJson(const std::vector<FolderDiff>& d) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& f : d)
    a.push_back({{"source", f.source},
                 {"mailbox", f.mailbox},
                 {"folder", f.folder},
                 {"missing_in_base", f.missing_in_base},
                 {"missing_in_other", f.missing_in_other},
                 {"base_messages", f.base_messages},
                 {"other_messages", f.other_messages},
                 {"base_bytes", f.base_bytes},
                 {"other_bytes", f.other_bytes},
                 {"digest_differs", f.digest_differs}});
  return a;
}

nlohmann::json ToJson(const MessageDiff& d, size_t max) {
  return {{"only_snapshot_count", d.only_base.size()},
          {"only_snapshot", Refs(d.only_base, max)},
          {"only_other_count", d.only_other.size()},
          {"only_other", Refs(d.only_other, max)},
          {"changed_count", d.changed.size()},
          {"changed", Refs(d.changed, max)},
          {"moved_count", d.moved.size()},
          {"moved", Refs(d.moved, max)}};
}

nlohmann::json ToJson(const VerifyResult& r, size_t max) {
  nlohmann::json j = {{"snapshot", r.snapshot_id},
                      {"time", r.snapshot_time},
                      {"ok", r.complete()},
                      {"partial", r.partial()},
                      {"unreadable_at_backup", r.unreadable_at_backup},
                      {"unreadable_paths", r.unreadable_paths},
                      {"errors", r.Errors()},
                      {"files", r.files},
                      {"bytes", r.bytes},
                      {"messages", r.messages},
                      {"mailboxes", r.mailboxes},
                      {"folders", r.folders},
                      {"lost_messages", r.lost_messages()},
                      {"restore_problems", r.restore_problems}};
  nlohmann::json damaged = nlohmann::json::array();
  for (const auto& d : r.damaged_files)
    damaged.push_back({{"path", d.path},
                       {"mailbox", d.mailbox},
                       {"what", d.what},
                       {"other_snapshots", d.other_snapshots}});
  j["damaged_files"] = damaged;
  j["census_recorded_vs_manifest"] = ToJson(r.recorded_vs_manifest);
  j["census_recorded_vs_restored"] = ToJson(r.recorded_vs_restored);
  nlohmann::json m = ToJson(r.snapshot_vs_restored, max);
  j["messages_snapshot_vs_restored"] = {
      {"lost", m["only_snapshot"]}, {"lost_count", m["only_snapshot_count"]},
      {"changed", m["changed"]},    {"changed_count", m["changed_count"]},
      {"misplaced", m["moved"]},    {"unexpected", m["only_other"]}};
  nlohmann::json live = nlohmann::json::array();
  for (const auto& l : r.live) {
    nlohmann::json lm = ToJson(l.messages, max);
    live.push_back({{"source", l.source},
                    {"path", l.path},
                    {"census", ToJson(l.census)},
                    {"arrived_since", lm["only_other"]},
                    {"arrived_since_count", lm["only_other_count"]},
                    {"deleted_since", lm["only_snapshot"]},
                    {"deleted_since_count", lm["only_snapshot_count"]},
                    {"changed", lm["changed"]},
                    {"changed_count", lm["changed_count"]},
                    {"moved", lm["moved"]},
                    {"moved_count", lm["moved_count"]},
                    {"problems", l.problems}});
  }
  j["live"] = live;
  nlohmann::json dbs = nlohmann::json::array();
  for (const auto& d : r.databases) {
    nlohmann::json dj = {{"path", d.path},
                         {"integrity_ok", d.integrity_ok},
                         {"integrity_problems", d.integrity_problems},
                         {"matches_recorded_image", d.content_matches},
                         {"loss", d.loss()}};
    if (d.raw_copy) dj["raw_copy"] = true;
    if (!d.live_path.empty()) {
      dj["live_path"] = d.live_path;
      dj["live_unchanged_since_snapshot"] = d.live_unchanged_since;
      static const char* kLive[] = {"not compared", "ok", "missing", "unreadable", "damaged"};
      dj["live"] = kLive[static_cast<int>(d.live)];
      if (!d.live_problem.empty()) dj["live_problem"] = d.live_problem;
      if (d.vs_live) dj["vs_live"] = ToJson(*d.vs_live);
      if (!d.error.empty()) dj["error"] = d.error;
    }
    dbs.push_back(std::move(dj));
  }
  j["databases"] = dbs;
  return j;
}

nlohmann::json ToJson(const CheckResult& r) {
  nlohmann::json probs = nlohmann::json::array();
  for (const auto& p : r.problems) {
    nlohmann::json aff = nlohmann::json::array();
    for (const auto& a : p.affected)
      aff.push_back({{"snapshot", a.snapshot}, {"path", a.path}, {"mailbox", a.mailbox}});
    nlohmann::json pj = {{"kind", p.kind},
                         {"where", p.where},
                         {"message", p.message},
                         {"warning", p.warning},
                         {"affected", aff},
                         {"affected_total", p.affected_total},
                         {"affected_mailboxes", p.affected_mailboxes}};
    if (!p.pack.empty()) pj["pack"] = p.pack;
    if (!p.blob.empty()) pj["blob"] = p.blob;
    if (!p.snapshot.empty()) pj["snapshot"] = p.snapshot;
    probs.push_back(std::move(pj));
  }
  return {{"ok", r.ok()},
          {"errors", r.errors()},
          {"snapshots", r.snapshots},
          {"held_messages", r.held_messages},
          {"index_files", r.index_files},
          {"packs", r.packs},
          {"packs_read", r.packs_read},
          {"blobs", r.blobs},
          {"blobs_hashed", r.blobs_hashed},
          {"pack_bytes", r.pack_bytes},
          {"problems", probs}};
}

}  // namespace mv::verify
