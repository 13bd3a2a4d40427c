// The nightly report (agent/jobs/report_run.h): verify per group, rotating check, statistics,
// files.
#include "agent/jobs/report_run.h"

#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>

#include "agent/common/json_text.h"
#include "agent/jobs/verify_run.h"
#include "storage/fs.h"
#include "storage/held_mail.h"
#include "storage/verification.h"
#include "verify/verify_json.h"

namespace mv::agent {

namespace {

// Every object's size (one listing; on S3 a few requests).
uint64_t RepoSize(const storage::Repository& repo) {
  auto objects = repo.backend().List("");
  uint64_t n = 0;
  if (objects.ok())
    for (const auto& o : *objects) n += o.size;
  return n;
}

void FillGroup(storage::Repository& repo, const std::vector<storage::SnapshotMeta>& snaps,
               const std::map<std::string, uint64_t>& cumulative, const NightlyReportOptions& a,
               verify::Report& rep, verify::GroupReport& g) {
  const auto& last = snaps.back();
  g.snapshot = last.id;
  g.last_time = last.time;
  g.snapshots = snaps.size();
  g.oldest_time = snaps.front().time;
  for (const auto& s : snaps) {
    if (s.problems == 0) g.last_success_time = s.time;
    uint64_t msgs = 0;
    for (const auto& c : s.census) msgs += c.messages;
    g.history.push_back({s.time, msgs, cumulative.at(s.id)});
  }
  g.age_seconds = rep.generated - (g.last_success_time ? g.last_success_time : last.time);
  g.stale = g.last_success_time == 0 || g.age_seconds > rep.max_age_seconds;
  for (const auto& c : last.census)
    g.mailbox_messages[c.mailbox] += c.messages, g.messages += c.messages;
  // Hook results, where the backup recorded them: tags "hook.*" or stats {"hooks": {name: result}}.
  for (const auto& [k, v] : last.tags)
    if (k.rfind("hook", 0) == 0) g.hooks[k] = v;
  auto stats =
      nlohmann::json::parse(last.stats_json.empty() ? "{}" : last.stats_json, nullptr, false);
  if (stats.is_object() && stats.contains("seconds") && stats["seconds"].is_number())
    g.backup_seconds = stats["seconds"].get<double>();
  g.added_bytes = last.bytes_packed;
  if (auto code = a.stack_exit_codes.find(g.name); code != a.stack_exit_codes.end())
    g.last_run_exit_code = code->second;
  if (stats.is_object() && stats.contains("hooks") && stats["hooks"].is_object())
    for (const auto& [k, v] : stats["hooks"].items())
      g.hooks["hook." + k] = v.is_string() ? v.get<std::string>() : v.dump();
  if (repo.backend().local_root().empty() && !a.full_verify) {
    // Remote: a scratch restore would download the whole snapshot every night. The rotating
    // check below still reads a share of the packs; the proof by restore runs when asked.
    g.verify_skipped =
        "remote repository: not restored tonight (run `mailvault verify`, or the report with "
        "--full-verify, to prove it; or verify the local copy it was copied from)";
    return;
  }
  VerifyRunOptions vo;
  vo.snapshot = last.id;
  vo.scratch_parent = a.scratch;
  vo.live = a.live;
  auto run = RunVerify(repo, vo);
  g.verified = true;
  if (!run.ok()) {
    g.verify_error = run.status().ToString();
    return;
  }
  g.verify_ok = run->result.ok();
  g.verify_errors = run->result.Errors();
  g.lost_messages = run->result.lost_messages();
  g.verify_json = verify::ToJson(run->result, 50);
}

}  // namespace

Result<verify::Report> GatherReport(storage::Repository& repo, const NightlyReportOptions& a) {
  verify::Report rep;
  rep.generated = a.at ? a.at : static_cast<int64_t>(::time(nullptr));
  rep.repository = repo.path();
  rep.max_age_seconds = a.max_age_seconds;
  rep.rotate_nights = a.rotate_nights;
  rep.rotation_bucket = verify::RotationBucket(rep.generated, a.rotate_nights);
  rep.prune_reclaimed_bytes = a.prune_reclaimed_bytes;
  rep.version = a.version;
  rep.run_exit_code = a.run_exit_code;
  std::vector<std::string> bad_held;  // the rotating check below reports a damaged record
  if (auto held = storage::LoadHeldMail(repo, &bad_held); held.ok()) {
    auto sum = storage::SummarizeHeld(*held, repo.env()->NowNanos());
    rep.held_messages = sum.messages;
    rep.held_bytes = sum.bytes;
  }
  MV_ASSIGN_OR_RETURN(auto snaps, repo.ListSnapshots());
  rep.snapshots = snaps.size();
  std::map<std::string, std::vector<storage::SnapshotMeta>> groups;
  std::map<std::string, uint64_t> cumulative;  // snapshot -> packed bytes up to it
  uint64_t total = 0;
  for (const auto& s : snaps) {
    total += s.bytes_packed;
    cumulative[s.id] = total;
    rep.logical_bytes += s.bytes;
    if (s.time >= rep.generated - 86400) rep.growth_bytes_24h += s.bytes_packed;
    groups[verify::GroupOf(s)].push_back(s);
  }
  for (const auto& [name, list] : groups) {
    verify::GroupReport g;
    g.name = name;
    FillGroup(repo, list, cumulative, a, rep, g);
    rep.groups.push_back(std::move(g));
  }
  // After tonight's verifications, which recorded their verdicts (docs/FORMAT.md §11). Records
  // that cannot be read prove nothing; the verify runs above report damage themselves.
  auto proofs = storage::LoadVerifications(repo);
  if (proofs.ok())
    for (auto& g : rep.groups) {
      const auto& list = groups.at(g.name);
      for (auto it = list.rbegin(); it != list.rend(); ++it) {
        auto p = proofs->find(it->id);
        if (p != proofs->end() && p->second.ok) {
          g.last_verified_snapshot = it->id;
          g.last_verified_time = it->time;
          break;
        }
      }
    }
  verify::CheckOptions co;
  co.read = verify::PackRead::kData;
  co.select = verify::SubsetBucket(rep.rotation_bucket + 1, a.rotate_nights);
  auto check = verify::CheckRepository(repo, co);
  if (check.ok())
    rep.check = std::move(check).value();
  else
    rep.check_error = check.status().ToString();
  rep.pack_bytes = rep.check.pack_bytes;
  rep.repository_bytes = RepoSize(repo);
  rep.downloaded_bytes = repo.backend().stats().bytes_down;
  rep.dedup_ratio =
      rep.pack_bytes ? static_cast<double>(rep.logical_bytes) / static_cast<double>(rep.pack_bytes)
                     : 0;
  return rep;
}

Status WriteReportFiles(const verify::Report& rep, const NightlyReportOptions& a,
                        std::vector<std::string>* written) {
  MV_RETURN_IF_ERROR(storage::fs::MakeDirs(a.out, 0755));
  std::set<std::string> want;
  std::stringstream ss(a.formats);
  for (std::string f; std::getline(ss, f, ',');) want.insert(f);
  for (const auto& f : want) {
    std::string name, text;
    if (f == "json")
      name = "mailvault-report.json", text = Dump(verify::RenderJson(rep), 2) + "\n";
    else if (f == "md")
      name = "mailvault-report.md", text = verify::RenderMarkdown(rep);
    else if (f == "html")
      name = "mailvault-report.html", text = verify::RenderHtml(rep);
    else if (f == "prom")
      name = "mailvault.prom", text = verify::RenderPrometheus(rep);
    else
      return Status::Invalid("unknown report format '" + f + "': use md, html, json, prom");
    std::string path = storage::fs::Join(a.out, name);
    MV_RETURN_IF_ERROR(storage::fs::WriteFileAtomic(path, text));
    ::chmod(path.c_str(), 0644);  // node_exporter and web servers run as other users
    written->push_back(path);
  }
  return Status::Ok();
}

}  // namespace mv::agent
