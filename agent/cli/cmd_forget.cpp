#include <charconv>
#include <cstdio>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "retention/policy.h"
#include "storage/forget.h"
#include "storage/lock.h"
#include "storage/repository.h"
#include "storage/verification.h"

namespace mv::agent {
namespace {

namespace rt = mv::retention;

struct ForgetArgs {
  // The counts as typed, so that a bad one is reported with its flag and value.
  std::string last, hourly, daily, weekly, monthly, yearly, within;
  std::vector<std::string> keep_tags;
  std::string stack, host, group_by = "host,stack", timezone;
  bool dry_run = false;
  std::vector<std::string> snapshots;  // explicit IDs or prefixes
  rt::Policy policy;
  rt::GroupBy group;
};

Status ParseCount(const std::string& flag, const std::string& text, int* out) {
  if (text.empty()) return Status::Ok();
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  if (ec != std::errc() || p != text.data() + text.size() || *out < 0 || *out > 1000000)
    return Status::Invalid(flag + " '" + text +
                           "': expected a whole number of snapshots from 0 to 1000000");
  return Status::Ok();
}

Status ParseArgs(ForgetArgs& a) {
  auto& p = a.policy;
  MV_RETURN_IF_ERROR(ParseCount("--keep-last", a.last, &p.last));
  MV_RETURN_IF_ERROR(ParseCount("--keep-hourly", a.hourly, &p.hourly));
  MV_RETURN_IF_ERROR(ParseCount("--keep-daily", a.daily, &p.daily));
  MV_RETURN_IF_ERROR(ParseCount("--keep-weekly", a.weekly, &p.weekly));
  MV_RETURN_IF_ERROR(ParseCount("--keep-monthly", a.monthly, &p.monthly));
  MV_RETURN_IF_ERROR(ParseCount("--keep-yearly", a.yearly, &p.yearly));
  if (!a.within.empty()) {
    MV_ASSIGN_OR_RETURN(p.within, rt::ParseKeepWithin(a.within));
  }
  for (const auto& t : a.keep_tags) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::Invalid("--keep-tag takes KEY=VALUE (e.g. stack=mail), got '" + t + "'");
    p.tags.emplace_back(t.substr(0, eq), t.substr(eq + 1));
  }
  p.timezone = a.timezone;
  if (!p.timezone.empty()) MV_RETURN_IF_ERROR(rt::ToCivil({}, p.timezone).status());
  MV_ASSIGN_OR_RETURN(a.group, rt::ParseGroupBy(a.group_by));
  if (!a.snapshots.empty() && !p.empty())
    return Status::Invalid(
        "give either snapshot IDs or a policy (--keep-*), not both: IDs are removed as named");
  return Status::Ok();
}

// The policy's view of a snapshot; its proof is its newest verification record (storage/
// verification.h), unverified without one.
rt::SnapshotFacts Facts(const storage::SnapshotMeta& m,
                        const std::map<std::string, storage::Verification>& proofs) {
  auto v = proofs.find(m.id);
  rt::Proof proof = v == proofs.end() ? rt::Proof::kUnverified
                    : v->second.ok    ? rt::Proof::kVerified
                                      : rt::Proof::kFailed;
  rt::SnapshotFacts f{
      m.id, m.time_ns ? m.time_ns : m.time * 1000000000LL, m.host, m.tags, {}, m.problems > 0,
      proof};
  for (const auto& s : m.sources) f.sources.push_back(s.name);
  return f;
}

bool Selected(const ForgetArgs& a, const storage::SnapshotMeta& m) {
  if (!a.host.empty() && m.host != a.host) return false;
  if (a.stack.empty()) return true;
  auto it = m.tags.find("stack");
  return it != m.tags.end() && it->second == a.stack;
}

// "2026-11-30 03:00:00 UTC", or in --timezone: "2026-11-30 04:00:00 +01:00".
std::string ShowTime(int64_t time_ns, const std::string& zone) {
  int64_t secs = time_ns / 1000000000LL;
  if (zone.empty()) return HumanTime(secs);
  auto civil = rt::ToCivil({secs}, zone);
  if (!civil.ok()) return HumanTime(secs);
  const auto& c = (*civil)[0];
  int off = c.utc_offset < 0 ? -c.utc_offset : c.utc_offset;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d %c%02d:%02d", c.year, c.month,
                c.day, c.hour, c.minute, c.second, c.utc_offset < 0 ? '-' : '+', off / 3600,
                off / 60 % 60);
  return buf;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

nlohmann::json PlanJson(const std::vector<rt::Group>& groups,
                        const std::map<std::string, const storage::SnapshotMeta*>& meta,
                        const std::map<std::string, rt::Proof>& proof, const std::string& zone) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& g : groups) {
    nlohmann::json snaps = nlohmann::json::array();
    for (const auto& d : g.decisions) {
      const auto& m = *meta.at(d.id);
      snaps.push_back({{"id", d.id},
                       {"short_id", d.id.substr(0, 8)},
                       {"time", m.time},
                       {"time_utc", HumanTime(m.time)},
                       {"time_shown", ShowTime(d.time_ns, zone)},
                       {"keep", d.keep},
                       {"reasons", d.reasons},
                       {"partial", m.problems > 0},
                       {"proof", rt::ProofName(proof.at(d.id))}});
    }
    arr.push_back({{"group", g.key}, {"snapshots", snaps}});
  }
  return arr;
}

void PrintPlan(const std::vector<rt::Group>& groups,
               const std::map<std::string, const storage::SnapshotMeta*>& meta,
               const std::string& zone) {
  for (const auto& g : groups) {
    size_t kept = 0;
    for (const auto& d : g.decisions) kept += d.keep;
    std::printf("group %s: keep %zu, remove %zu\n", g.key.c_str(), kept, g.decisions.size() - kept);
    for (const auto& d : g.decisions)
      std::printf("  %-8s  %-25s  %-6s  %s%s\n", d.id.substr(0, 8).c_str(),
                  ShowTime(d.time_ns, zone).c_str(), d.keep ? "keep" : "remove",
                  Join(d.reasons).c_str(), meta.at(d.id)->problems ? " (partial)" : "");
  }
}

// Lists, decides, and (unless --dry-run) removes under the exclusive lock. Returns the exit code.
int RunForget(CliContext& ctx, ForgetArgs& a) {
  auto repo = OpenRepoOrReport(ctx);
  if (!repo) return ctx.exit_code;
  std::unique_ptr<storage::RepoLock> lock;
  std::string stale;
  if (!a.dry_run) {
    auto l = storage::RepoLock::AcquireExclusive(repo->path(), "forget", &stale, repo->env());
    if (!l.ok()) return ReportError(ctx, l.status());
    lock = std::move(l).value();
    if (!stale.empty()) std::cerr << "note: took over a " << stale << "\n";
  }
  std::vector<storage::DamagedFile> damaged;
  auto list = repo->ListSnapshots(&damaged);
  if (!list.ok()) return ReportError(ctx, list.status());
  for (const auto& d : damaged)
    std::cerr << "mailvault: warning: " << d.path << ": snapshot manifest is damaged (" << d.reason
              << "); it is left alone: run `mailvault check`\n";
  std::vector<std::string> ids;
  for (const auto& ref : a.snapshots) {
    auto id = repo->ResolveSnapshot(ref);
    if (!id.ok()) return ReportError(ctx, id.status());
    ids.push_back(*id);
  }
  std::vector<std::string> damaged_proofs;
  auto proofs = storage::LoadVerifications(*repo, &damaged_proofs);
  if (!proofs.ok()) return ReportError(ctx, proofs.status());
  for (const auto& d : damaged_proofs)
    std::cerr << "mailvault: warning: " << d
              << ": verification record cannot be read; its snapshot counts as unverified\n";
  std::vector<rt::SnapshotFacts> facts;
  std::map<std::string, const storage::SnapshotMeta*> meta;
  std::map<std::string, rt::Proof> proof;
  for (const auto& m : *list)
    if (!ids.empty() || Selected(a, m)) {
      facts.push_back(Facts(m, *proofs));
      meta[m.id] = &m;
      proof[m.id] = facts.back().proof;
    }
  for (const auto& id : ids)
    if (!meta.count(id))
      return ReportError(ctx, Status::Corruption("snapshot " + id +
                                                 " cannot be read (damaged manifest): run "
                                                 "`mailvault check`"));
  std::vector<rt::Group> groups;
  if (!ids.empty()) {
    groups = rt::ForgetNamed(facts, ids, a.group);
  } else {
    auto decided = rt::ApplyPolicy(facts, a.policy, a.group, repo->env()->NowNanos());
    if (!decided.ok()) return ReportError(ctx, decided.status());
    groups = std::move(decided).value();
  }
  if (Status st = rt::RefuseWholeGroups(groups); !st.ok()) {
    if (!ctx.json) PrintPlan(groups, meta, a.policy.timezone);
    return ReportError(ctx, st);
  }
  std::vector<std::string> removed;
  Status failed;
  for (const auto& g : groups)
    for (const auto& d : g.decisions) {
      if (d.keep || !failed.ok()) continue;
      if (!a.dry_run) failed = storage::RemoveSnapshot(*repo, d.id);
      // Its records go after it: a record without its snapshot is harmless, the reverse is not.
      if (!a.dry_run && failed.ok()) failed = storage::RemoveVerifications(*repo, d.id);
      if (failed.ok()) removed.push_back(d.id);
    }
  bool empty_policy = ids.empty() && a.policy.empty();
  if (ctx.json) {
    PrintJson({{"dry_run", a.dry_run},
               {"policy_empty", empty_policy},
               {"groups", PlanJson(groups, meta, proof, a.policy.timezone)},
               {"removed", a.dry_run ? nlohmann::json::array() : nlohmann::json(removed)},
               {"would_remove", a.dry_run ? nlohmann::json(removed) : nlohmann::json::array()}});
  } else {
    if (!ctx.quiet || a.dry_run) PrintPlan(groups, meta, a.policy.timezone);
    if (empty_policy)
      std::printf("policy is empty: nothing removed (give --keep-* rules or snapshot IDs)\n");
    else if (a.dry_run)
      std::printf("dry run: would remove %zu snapshot(s); nothing was changed\n", removed.size());
    else
      std::printf(
          "removed %zu snapshot(s); the data only they used stays in the repository "
          "until a prune\n",
          removed.size());
  }
  if (!failed.ok()) return ReportError(ctx, failed);
  return kExitOk;
}

constexpr const char* kFooter =
    "Removes snapshots by a retention policy, or the snapshots named by ID (a full ID or a\n"
    "unique prefix of at least 4 hex digits). Only the manifests go: the packs stay until prune.\n"
    "\n"
    "Policy (the same as restic 0.14's `forget`, so a restic policy keeps the same snapshots):\n"
    "  The rules are ORed; one snapshot fills every bucket it falls in (7 daily + 4 weekly keep\n"
    "  fewer than 11 when a daily one is also a week's newest).\n"
    "  --keep-last N      the N newest snapshots\n"
    "  --keep-hourly N    walking back from the newest snapshot: the newest snapshot of each of\n"
    "  --keep-daily N     the N most recent calendar hours / days / ISO weeks (Monday-Sunday) /\n"
    "  --keep-weekly N    months / years that have a snapshot. Empty ones do not count, so\n"
    "  --keep-monthly N   --keep-daily 7 keeps 7 days even across a month of failed backups.\n"
    "  --keep-yearly N    Buckets are calendar boundaries in UTC, or in --timezone.\n"
    "  --keep-within D    every snapshot less than D (30d, 1y6m, 2d12h, 48h) older than the\n"
    "                     newest snapshot (not than now)\n"
    "  --keep-tag K=V     every snapshot with that tag (repeatable)\n"
    "\n"
    "Groups: the policy applies to each group on its own: by default host + the `stack` tag,\n"
    "and snapshots without a stack tag by host + their source names, so one stack's policy never\n"
    "removes another's snapshots. --group-by takes a comma list of host, stack, sources, or none.\n"
    "--host and --stack select which snapshots the policy looks at (the others are untouched).\n"
    "\n"
    "Safety rails (beyond restic):\n"
    "  - no rule and no ID removes nothing (and says so);\n"
    "  - the newest snapshot of each group is kept (\"newest\"), and so is every snapshot dated\n"
    "    in the future (\"future\"; such snapshots are ignored when finding the newest);\n"
    "  - the newest snapshot `verify` proved is kept while newer ones are unproven or failed\n"
    "    (\"verified\");\n"
    "  - within a bucket the newest COMPLETE snapshot fills it when the bucket has one; restic\n"
    "    takes the newest, partial (exit 3) or not;\n"
    "  - a forget that would remove every snapshot of a group is refused, naming the group.\n"
    "Explicit IDs are removed as named (only the last rail applies).\n"
    "\n"
    "Output: per group, one line per snapshot, newest first: ID, time, keep/remove and the\n"
    "rules that kept it (\"daily 3\" = the 3rd daily bucket; \"within 30d\", \"tag K=V\").\n"
    "--json: {\"dry_run\", \"policy_empty\", \"groups\": [{\"group\", \"snapshots\": [{\"id\",\n"
    "\"time\", \"keep\", \"reasons\", \"partial\", \"proof\"}]}], \"removed\", \"would_remove\"}.\n"
    "\n"
    "Examples:\n"
    "  mailvault forget -r /srv/repo --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run\n"
    "  mailvault forget -r /srv/repo --stack mail --keep-within 30d --timezone Europe/Berlin\n"
    "  mailvault forget -r /srv/repo 1a2b3c4d 9f8e\n"
    "\n"
    "Exit: 0 ok (also for a dry run), 1 error (e.g. a lock held, no such snapshot), 2 usage (a\n"
    "bad count, duration, zone or group-by; an ambiguous prefix; a refused forget). Nothing is\n"
    "removed on any error found before removing starts.";

}  // namespace

void RegisterForget(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("forget", "Remove snapshots by a retention policy or by ID");
  sub->footer(kFooter);
  auto a = std::make_shared<ForgetArgs>();
  AddRepoOption(sub, ctx);
  sub->add_option("--keep-last", a->last, "Keep the N newest snapshots");
  sub->add_option("--keep-hourly", a->hourly, "Keep the newest of each of the last N hours");
  sub->add_option("--keep-daily", a->daily, "Keep the newest of each of the last N days");
  sub->add_option("--keep-weekly", a->weekly, "Keep the newest of each of the last N ISO weeks");
  sub->add_option("--keep-monthly", a->monthly, "Keep the newest of each of the last N months");
  sub->add_option("--keep-yearly", a->yearly, "Keep the newest of each of the last N years");
  sub->add_option("--keep-within", a->within,
                  "Keep snapshots within this duration of the newest (30d, 1y6m, 48h)");
  sub->add_option("--keep-tag", a->keep_tags, "Keep snapshots with this KEY=VALUE tag; repeatable");
  sub->add_option("--stack", a->stack, "Only snapshots with the tag stack=S");
  sub->add_option("--host", a->host, "Only snapshots of this host");
  sub->add_option("--group-by", a->group_by,
                  "host,stack (default), sources, host,sources, ... or none");
  sub->add_option("--timezone", a->timezone,
                  "IANA zone for the calendar buckets, e.g. Europe/Berlin (default UTC)");
  sub->add_flag("-n,--dry-run", a->dry_run, "Print what would be kept and removed; change nothing");
  sub->add_option("snapshot", a->snapshots, "Snapshot IDs or unique prefixes to remove");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    if (Status st = ParseArgs(*a); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    ctx.exit_code = RunForget(ctx, *a);
  });
}

}  // namespace mv::agent
