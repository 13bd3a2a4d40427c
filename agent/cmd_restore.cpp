#include <iostream>

#include "agent/cli.h"
#include "agent/output.h"
#include "agent/restore.h"
#include "agent/snapshot_ref.h"
#include "agent/stack_report.h"

namespace mv::agent {
namespace {

nlohmann::json ToJson(const RestoreResult& r, const std::string& id, bool dry) {
  nlohmann::json j = {{"snapshot", id}, {"dry_run", dry},
                      {"files_written", r.stats.files_written}, {"files_unchanged", r.stats.files_unchanged},
                      {"files_conflict", r.stats.files_conflict}, {"dirs_created", r.stats.dirs_created},
                      {"symlinks_created", r.stats.symlinks_created}, {"bytes_written", r.stats.bytes_written},
                      {"seconds", r.stats.seconds}, {"problems", nlohmann::json::array()}};
  for (const auto& p : r.problems) j["problems"].push_back({{"path", p.path}, {"message", p.message}});
  if (dry) j["would_write"] = r.written;
  return j;
}

}  // namespace

void RegisterRestore(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("restore", "Restore a snapshot, or part of it, into a directory");
  sub->footer(
      "Restore snapshot --snapshot into --target: each source lands in TARGET/<source name>/.\n"
      "Content is bit-exact (every blob is re-hashed), with mode, mtime, symlinks (never\n"
      "followed) and numeric ownership when run as root. Nothing is ever written outside the\n"
      "target, whatever the snapshot's paths say.\n\n"
      "Onto a non-empty target nothing is deleted; an existing file that differs is kept and\n"
      "reported unless --overwrite; a Maildir message already present under other flags is\n"
      "not duplicated.\n\n"
      "Without --target, restores into the live volumes of the labelled swarm stacks.\n\n"
      "Exit: 0 ok, 1 error, 2 usage, 3 partial (some files kept or not restored; listed).");
  AddRepoOption(sub, ctx);
  auto o = std::make_shared<RestoreOptions>();
  auto snap = std::make_shared<std::string>();
  sub->add_option("--snapshot", *snap, "Snapshot ID, unique prefix, or 'latest'")->required();
  sub->add_option("-t,--target", o->target, "Directory to restore into (created if missing)");
  sub->add_option("-i,--include", o->includes, "Only this path and below, e.g. mail/alice@example.org; repeatable");
  sub->add_flag("--overwrite", o->overwrite, "Replace existing files whose content differs");
  sub->add_flag("-n,--dry-run", o->dry_run, "Print what would be written; change nothing");
  sub->add_option("--threads", o->threads, "Parallel pack readers (default: number of cores)");
  auto st = std::make_shared<StackRestoreOptions>();
  sub->add_option("--stack", st->stack, "Without --target: the stack to restore into (default: the snapshot's stack tag)");
  sub->add_option("--service", st->service, "Without --target: only the volumes of this service");
  sub->add_option("--volume", st->volume, "Without --target: only this volume (label name, e.g. mail)");
  AddStackOptions(sub, *st);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, o, snap, st] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    std::string id = ResolveOrReport(ctx, *repo, *snap);
    if (id.empty()) return;
    o->snapshot = id;
    ProgressPrinter pp(ctx);
    if (o->target.empty()) {
      st->base = *o;
      ctx.exit_code = RunAndReportStackRestore(ctx, *repo, *st, pp.fn());
      pp.Done();
      return;
    }
    auto res = RunRestore(*repo, *o, pp.fn());
    pp.Done();
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    if (ctx.json) {
      PrintJson(ToJson(*res, id, o->dry_run));
    } else {
      for (const auto& p : res->problems) std::cerr << p.path << ": " << p.message << "\n";
      if (o->dry_run)
        for (const auto& w : res->written) std::cout << "would restore " << w << "\n";
      const auto& s = res->stats;
      std::cout << (o->dry_run ? "dry run: would restore " : "restored ") << s.files_written << " files ("
                << HumanBytes(s.bytes_written) << ") from snapshot " << id.substr(0, 8) << " into " << o->target
                << "; " << s.files_unchanged << " already present, " << s.files_conflict << " kept (differ), "
                << s.dirs_created << " directories created";
      if (!o->dry_run) std::cout << ", in " << s.seconds << " s";
      std::cout << "\n";
    }
    ctx.exit_code = res->problems.empty() ? kExitOk : kExitPartial;
  });
}

}  // namespace mv::agent
