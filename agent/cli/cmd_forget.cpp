#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "agent/cli/lock_wait.h"
#include "agent/cli/policy_flags.h"
#include "agent/cli/prune_output.h"
#include "retention/forget_run.h"
#include "retention/policy.h"
#include "retention/prune.h"
#include "storage/repository.h"

namespace mv::agent {
namespace {

namespace rt = mv::retention;

struct ForgetArgs {
  PolicyFlags flags;  // the --keep-* rules and --timezone, as typed
  std::string stack, host, group_by = "host,stack";
  bool dry_run = false, prune = false;
  std::string retry_lock;
  std::vector<std::string> snapshots;  // explicit IDs or prefixes
  rt::Policy policy;
  rt::GroupBy group;
  int64_t keep_deleted_mail_ns = 0;
};

Status ParseArgs(ForgetArgs& a) {
  MV_RETURN_IF_ERROR(ParsePolicy(a.flags, &a.policy));
  MV_RETURN_IF_ERROR(ParseKeepDeletedMail(a.flags, &a.keep_deleted_mail_ns));
  auto& p = a.policy;
  MV_ASSIGN_OR_RETURN(a.group, rt::ParseGroupBy(a.group_by));
  if (!a.snapshots.empty() && !p.empty())
    return Status::Invalid(
        "give either snapshot IDs or a policy (--keep-*), not both: IDs are removed as named");
  return Status::Ok();
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
                        const std::map<std::string, storage::SnapshotMeta>& meta,
                        const std::map<std::string, rt::Proof>& proof, const std::string& zone) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& g : groups) {
    nlohmann::json snaps = nlohmann::json::array();
    for (const auto& d : g.decisions) {
      const auto& m = meta.at(d.id);
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
               const std::map<std::string, storage::SnapshotMeta>& meta, const std::string& zone) {
  for (const auto& g : groups) {
    size_t kept = 0;
    for (const auto& d : g.decisions) kept += d.keep;
    std::printf("group %s: keep %zu, remove %zu\n", g.key.c_str(), kept, g.decisions.size() - kept);
    for (const auto& d : g.decisions)
      std::printf("  %-8s  %-25s  %-6s  %s%s\n", d.id.substr(0, 8).c_str(),
                  ShowTime(d.time_ns, zone).c_str(), d.keep ? "keep" : "remove",
                  Join(d.reasons).c_str(), meta.at(d.id).problems ? " (partial)" : "");
  }
}

// Lists, decides, and (unless --dry-run) removes under the exclusive lock (retention/
// forget_run.h); with --prune, then prunes. Returns the exit code.
int RunForget(CliContext& ctx, ForgetArgs& a) {
  auto repo = OpenRepoOrReport(ctx);
  if (!repo) return ctx.exit_code;
  auto wait = ParseRetryLock(a.retry_lock, ctx);
  if (!wait.ok()) return ReportError(ctx, wait.status());
  rt::ForgetRequest req;
  req.policy = a.policy;
  req.group = a.group;
  req.refs = a.snapshots;
  req.stack = a.stack;
  req.host = a.host;
  req.dry_run = a.dry_run;
  req.keep_deleted_mail_ns = a.keep_deleted_mail_ns;
  req.lock_wait = *wait;
  auto done = rt::Forget(*repo, req);
  if (!done.ok()) return ReportError(ctx, done.status());
  const rt::ForgetOutcome& o = *done;
  if (!o.took_over_stale.empty()) std::cerr << "note: took over a " << o.took_over_stale << "\n";
  for (const auto& w : o.warnings) std::cerr << "mailvault: warning: " << w << "\n";
  const auto& zone = a.policy.timezone;
  if (o.status.code() == Code::kInvalidArgument) {  // refused: nothing was removed
    if (!ctx.json) PrintPlan(o.groups, o.meta, zone);
    return ReportError(ctx, o.status);
  }
  // Prune only after a complete forget: what a failed one left is for the next run to judge.
  std::optional<Result<rt::PruneResult>> pruned;
  if (a.prune && o.status.ok()) {
    rt::PruneOptions po;
    po.dry_run = a.dry_run;
    po.lock_wait = *wait;
    pruned = rt::Prune(*repo, po);
  }
  if (ctx.json) {
    nlohmann::json j = {
        {"dry_run", a.dry_run},
        {"policy_empty", o.policy_empty},
        {"groups", PlanJson(o.groups, o.meta, o.proof, zone)},
        {"removed", a.dry_run ? nlohmann::json::array() : nlohmann::json(o.removed)},
        {"would_remove", a.dry_run ? nlohmann::json(o.removed) : nlohmann::json::array()}};
    if (a.keep_deleted_mail_ns)
      j["held_mail"] = {
          {"messages", o.held_messages}, {"bytes", o.held_bytes}, {"expired", o.held_expired}};
    if (pruned && pruned->ok()) j["prune"] = PruneJson(**pruned);
    PrintJson(j);
  } else {
    if (!ctx.quiet || a.dry_run) PrintPlan(o.groups, o.meta, zone);
    if (o.policy_empty)
      std::printf("policy is empty: nothing removed (give --keep-* rules or snapshot IDs)\n");
    else if (a.dry_run)
      std::printf("dry run: would remove %zu snapshot(s); nothing was changed\n", o.removed.size());
    else
      std::printf("removed %zu snapshot(s)%s\n", o.removed.size(),
                  a.prune ? "" : "; the data only they used stays in the repository until a prune");
    if (a.keep_deleted_mail_ns && !o.policy_empty)
      std::printf("deleted mail: %s %llu message(s) (%s) that only the removed snapshots held%s\n",
                  a.dry_run ? "would hold" : "held", (unsigned long long)o.held_messages,
                  HumanBytes(o.held_bytes).c_str(),
                  o.held_expired ? (", " + std::to_string(o.held_expired) +
                                    " more were last seen longer ago than --keep-deleted-mail")
                                       .c_str()
                                 : "");
    if (pruned && pruned->ok() && !ctx.quiet) PrintPruneHuman(**pruned);
  }
  if (!o.status.ok()) return ReportError(ctx, o.status);
  if (pruned && !pruned->ok()) return ReportError(ctx, pruned->status());
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
    "Deleted mail (--keep-deleted-mail D, e.g. 30d; none of restic, borg or kopia has it): a\n"
    "daily/weekly policy loses every message that lived only between two kept snapshots. With\n"
    "this option, each message (a file in a Maildir's cur/ or new/) that only the removed\n"
    "snapshots held is recorded in the repository (its mailbox, folder, unique name, content) and\n"
    "prune keeps it until D after the newest snapshot that held it. `mailvault restore\n"
    "--deleted-since DATE [--mailbox M] [--message NAME]` brings such messages back; `snapshots`\n"
    "says how many are held. A year counts 365 days, a month 30.\n"
    "\n"
    "Output: per group, one line per snapshot, newest first: ID, time, keep/remove and the\n"
    "rules that kept it (\"daily 3\" = the 3rd daily bucket; \"within 30d\", \"tag K=V\").\n"
    "--json: {\"dry_run\", \"policy_empty\", \"groups\": [{\"group\", \"snapshots\": [{\"id\",\n"
    "\"time\", \"keep\", \"reasons\", \"partial\", \"proof\"}]}], \"removed\", \"would_remove\"}, "
    "and\n"
    "with --keep-deleted-mail \"held_mail\": {\"messages\", \"bytes\", \"expired\"}.\n"
    "\n"
    "Examples:\n"
    "  mailvault forget -r /srv/repo --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run\n"
    "  mailvault forget -r /srv/repo --stack mail --keep-within 30d --timezone Europe/Berlin\n"
    "  mailvault forget -r /srv/repo 1a2b3c4d 9f8e\n"
    "  mailvault forget -r /srv/repo --keep-daily 7 --keep-weekly 4 --prune --retry-lock 10m\n"
    "  mailvault forget -r /srv/repo --keep-daily 7 --keep-deleted-mail 30d --prune\n"
    "\n"
    "--prune runs `mailvault prune` (default options; --json adds its result as \"prune\") after\n"
    "a forget that removed what it decided; --retry-lock waits that long for a held lock (both\n"
    "the forget's and the prune's).\n"
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
  AddPolicyOptions(sub, &a->flags);
  sub->add_option("--stack", a->stack, "Only snapshots with the tag stack=S");
  sub->add_option("--host", a->host, "Only snapshots of this host");
  sub->add_option("--group-by", a->group_by,
                  "host,stack (default), sources, host,sources, ... or none");
  sub->add_flag("-n,--dry-run", a->dry_run, "Print what would be kept and removed; change nothing");
  sub->add_flag("--prune", a->prune,
                "Then prune (as `mailvault prune` with its defaults): give back the space of the "
                "data only the removed snapshots used");
  AddRetryLockOption(sub, &a->retry_lock);
  sub->add_option("snapshot", a->snapshots, "Snapshot IDs or unique prefixes to remove");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    if (Status st = ParseArgs(*a); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    ctx.exit_code = RunForget(ctx, *a);
  });
}

}  // namespace mv::agent
