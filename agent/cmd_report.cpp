// `mailvault report`: the nightly integrity report (verify/report.h). Verifies the latest snapshot
// of each stack (or source group), re-reads tonight's share of packs, and writes JSON, Markdown,
// HTML and a node_exporter textfile into --out.
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "agent/cli.h"
#include "agent/output.h"
#include "agent/snapshot_ref.h"
#include "agent/verify_run.h"
#include "storage/fs.h"
#include "verify/report.h"
#include "verify/verify_json.h"

namespace mv::agent {
namespace {

struct ReportArgs {
  std::string out, formats = "md,html,json,prom", max_age = "26h", scratch;
  uint32_t nights = 7;
  int64_t at = 0;
  std::vector<std::string> sources;
};

Result<int64_t> ParseDuration(const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    std::string unit = s.substr(used);
    double mul = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : -1;
    if (mul > 0 && v >= 0) return static_cast<int64_t>(v * mul);
  } catch (const std::exception&) {
  }
  return Status::Invalid("bad duration '" + s + "': give a number with s, m, h or d (e.g. 26h)");
}

uint64_t DirSize(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != decltype(it)(); it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

void FillGroup(storage::Repository& repo, const std::vector<storage::SnapshotMeta>& snaps,
               const std::map<std::string, uint64_t>& cumulative, const ReportArgs& a,
               const std::map<std::string, std::string>& live, verify::Report& rep, verify::GroupReport& g) {
  const auto& last = snaps.back();
  g.snapshot = last.id;
  g.last_time = last.time;
  g.snapshots = snaps.size();
  for (const auto& s : snaps) {
    if (s.problems == 0) g.last_success_time = s.time;
    uint64_t msgs = 0;
    for (const auto& c : s.census) msgs += c.messages;
    g.history.push_back({s.time, msgs, cumulative.at(s.id)});
  }
  g.age_seconds = rep.generated - (g.last_success_time ? g.last_success_time : last.time);
  g.stale = g.last_success_time == 0 || g.age_seconds > rep.max_age_seconds;
  for (const auto& c : last.census) g.mailbox_messages[c.mailbox] += c.messages, g.messages += c.messages;
  for (const auto& [k, v] : last.tags)
    if (k.rfind("hook", 0) == 0) g.hooks[k] = v;
  VerifyRunOptions vo;
  vo.snapshot = last.id;
  vo.scratch_parent = a.scratch;
  vo.live = live;
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

Result<verify::Report> Gather(storage::Repository& repo, const ReportArgs& a, int64_t max_age,
                              const std::map<std::string, std::string>& live) {
  verify::Report rep;
  rep.generated = a.at ? a.at : static_cast<int64_t>(::time(nullptr));
  rep.repository = repo.path();
  rep.max_age_seconds = max_age;
  rep.rotate_nights = a.nights;
  rep.rotation_bucket = verify::RotationBucket(rep.generated, a.nights);
  MV_ASSIGN_OR_RETURN(auto snaps, repo.ListSnapshots());
  rep.snapshots = snaps.size();
  std::map<std::string, std::vector<storage::SnapshotMeta>> groups;
  std::map<std::string, uint64_t> cumulative;   // snapshot -> packed bytes up to it
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
    FillGroup(repo, list, cumulative, a, live, rep, g);
    rep.groups.push_back(std::move(g));
  }
  verify::CheckOptions co;
  co.read = verify::PackRead::kData;
  co.select = verify::SubsetBucket(rep.rotation_bucket + 1, a.nights);
  auto check = verify::CheckRepository(repo, co);
  if (check.ok()) rep.check = std::move(check).value();
  else rep.check_error = check.status().ToString();
  rep.pack_bytes = rep.check.pack_bytes;
  rep.repository_bytes = DirSize(repo.path());
  rep.dedup_ratio = rep.pack_bytes ? static_cast<double>(rep.logical_bytes) / static_cast<double>(rep.pack_bytes) : 0;
  return rep;
}

// Each output is written to a temp file and renamed, so node_exporter never reads half a file.
Status WriteOutputs(const verify::Report& rep, const ReportArgs& a, std::vector<std::string>* written) {
  MV_RETURN_IF_ERROR(storage::fs::MakeDirs(a.out, 0755));
  std::set<std::string> want;
  std::stringstream ss(a.formats);
  for (std::string f; std::getline(ss, f, ',');) want.insert(f);
  for (const auto& f : want) {
    std::string name, text;
    if (f == "json") name = "mailvault-report.json", text = Dump(verify::RenderJson(rep), 2) + "\n";
    else if (f == "md") name = "mailvault-report.md", text = verify::RenderMarkdown(rep);
    else if (f == "html") name = "mailvault-report.html", text = verify::RenderHtml(rep);
    else if (f == "prom") name = "mailvault.prom", text = verify::RenderPrometheus(rep);
    else return Status::Invalid("unknown report format '" + f + "': use md, html, json, prom");
    std::string path = storage::fs::Join(a.out, name);
    MV_RETURN_IF_ERROR(storage::fs::WriteFileAtomic(path, text));
    ::chmod(path.c_str(), 0644);   // node_exporter and web servers run as other users
    written->push_back(path);
  }
  return Status::Ok();
}

}  // namespace

void RegisterReport(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("report", "Nightly integrity report: verify, rotating check, staleness, metrics");
  sub->footer(
      "Verifies the latest snapshot of each stack (tag stack=) or source group, re-reads and\n"
      "re-hashes tonight's share of the packs (every pack within --rotate-nights nights),\n"
      "flags stacks without a successful backup within --max-age, and writes into --out:\n"
      "mailvault-report.json, mailvault-report.md, mailvault-report.html (self-contained, with\n"
      "charts) and mailvault.prom (for node_exporter's textfile collector).\n\n"
      "Exit: 0 all good, 1 a snapshot failed verification or the repository has damage,\n"
      "2 usage, 4 stale (no successful backup within --max-age).");
  AddRepoOption(sub, ctx);
  auto a = std::make_shared<ReportArgs>();
  sub->add_option("--out", a->out, "Directory for the report files")->required();
  sub->add_option("--format", a->formats, "Comma-separated: md,html,json,prom (default all)");
  sub->add_option("--max-age", a->max_age, "Expected backup interval before a stack is stale (default 26h)");
  sub->add_option("--rotate-nights", a->nights, "Re-read every pack within this many nights (default 7)")
      ->check(CLI::Range(1, 366));
  sub->add_option("--scratch", a->scratch, "Directory for the scratch restores (default $TMPDIR or /var/tmp)");
  sub->add_option("--source", a->sources, "Live source NAME=DIR to compare with; repeatable");
  sub->add_option("--at", a->at, "Evaluate as of this Unix time (default now)");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    auto max_age = ParseDuration(a->max_age);
    if (!max_age.ok()) return void(ctx.exit_code = ReportError(ctx, max_age.status()));
    std::map<std::string, std::string> live;
    for (const auto& s : a->sources) {
      auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0)
        return void(ctx.exit_code = ReportError(ctx, Status::Invalid("--source '" + s + "' must be NAME=DIR")));
      live[s.substr(0, eq)] = s.substr(eq + 1);
    }
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    auto rep = Gather(*repo, *a, *max_age, live);
    if (!rep.ok()) return void(ctx.exit_code = ReportError(ctx, rep.status()));
    std::vector<std::string> written;
    if (Status st = WriteOutputs(*rep, *a, &written); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    if (ctx.json) {
      PrintJson(verify::RenderJson(*rep));
    } else {
      std::cout << verify::RenderMarkdown(*rep) << "\nwritten:";
      for (const auto& w : written) std::cout << " " << w;
      std::cout << "\n";
    }
    ctx.exit_code = rep->ExitCode();
  });
}

}  // namespace mv::agent
