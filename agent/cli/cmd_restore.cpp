#include <unistd.h>

#include <ctime>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/restorer/restore.h"
#include "agent/cli/snapshot_ref.h"
#include "agent/cli/stack_report.h"

namespace mv::agent {
namespace {

nlohmann::json ToJson(const RestoreResult& r, const std::string& id, bool dry) {
  nlohmann::json j = {{"snapshot", id},
                      {"dry_run", dry},
                      {"files_written", r.stats.files_written},
                      {"files_failed", r.stats.files_failed},
                      {"files_unchanged", r.stats.files_unchanged},
                      {"files_conflict", r.stats.files_conflict},
                      {"dirs_created", r.stats.dirs_created},
                      {"symlinks_created", r.stats.symlinks_created},
                      {"bytes_written", r.stats.bytes_written},
                      {"seconds", r.stats.seconds},
                      {"problems", nlohmann::json::array()}};
  for (const auto& p : r.problems)
    j["problems"].push_back({{"path", p.path}, {"message", p.message}});
  j["kept"] = nlohmann::json::array();
  for (const auto& p : r.kept) j["kept"].push_back({{"path", p.path}, {"message", p.message}});
  if (dry) j["would_write"] = r.written;
  j[dry ? "would_remove" : "removed"] = r.removed;
  return j;
}

// Restoring into live volumes from a snapshot that is not the newest, or over a day old, asks
// first on a terminal; says how old it is in any case.
bool ConfirmOldSnapshot(CliContext& ctx, const storage::Repository& repo, const std::string& id,
                        bool yes) {
  auto snaps = repo.ListSnapshots();
  if (!snaps.ok()) return true;
  int64_t age = 0;
  bool newest = !snaps->empty() && snaps->back().id == id;
  for (const auto& m : *snaps)
    if (m.id == id) age = static_cast<int64_t>(::time(nullptr)) - m.time;
  std::cerr << "snapshot " << id.substr(0, 8) << " was taken " << HumanAge(age) << " ago"
            << (newest ? "" : " (newer snapshots exist)") << "\n";
  if (yes || (newest && age < 86400) || !::isatty(STDIN_FILENO)) return true;
  std::cerr << "Restore it into the LIVE volumes? Mail that arrived since is kept. [y/N] "
            << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer == "y" || answer == "Y" || answer == "yes") return true;
  std::cerr << "not restored\n";
  ctx.exit_code = kExitError;
  return false;
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
      "A file appears under its name only complete (written to a temp name, hash-checked,\n"
      "then renamed): after a kill or a full disk, run the same restore again.\n\n"
      "Exit: 0 ok (files kept because they differ are listed, not an error), 1 error, 2 usage,\n"
      "3 partial (some files could not be restored; listed, one line each).");
  AddRepoOption(sub, ctx);
  auto o = std::make_shared<RestoreOptions>();
  auto snap = std::make_shared<std::string>();
  sub->add_option("--snapshot", *snap, "Snapshot ID, unique prefix, or 'latest'")->required();
  sub->add_option("-t,--target", o->target, "Directory to restore into (created if missing)");
  sub->add_option("-i,--include", o->includes,
                  "Only this path and below, e.g. mail/alice@example.org; repeatable");
  sub->add_flag("--overwrite", o->overwrite, "Replace existing files whose content differs");
  sub->add_flag("-n,--dry-run", o->dry_run,
                "Print what would be written (and, with --exact, removed); change nothing");
  sub->add_flag("--exact", o->exact,
                "Make the restored trees identical to the snapshot: also remove what the snapshot "
                "does not hold (lists it) and replace differing files");
  auto yes = std::make_shared<bool>(false);
  sub->add_flag("-y,--yes", *yes,
                "Do not ask for confirmation before restoring an old snapshot into live volumes");
  sub->add_option("--threads", o->threads, "Parallel pack readers (default: number of cores)");
  auto st = std::make_shared<StackRestoreOptions>();
  sub->add_option(
      "--stack", st->stack,
      "Without --target: the stack to restore into (default: the snapshot's stack tag)");
  sub->add_option("--service", st->service, "Without --target: only the volumes of this service");
  sub->add_option("--volume", st->volume,
                  "Without --target: only this volume (label name, e.g. mail)");
  AddStackOptions(sub, *st);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, o, snap, st, yes] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    std::string id = ResolveOrReport(ctx, *repo, *snap);
    if (id.empty()) return;
    o->snapshot = id;
    if (o->target.empty() && !o->dry_run && !ConfirmOldSnapshot(ctx, *repo, id, *yes)) return;
    ProgressPrinter pp(ctx);
    if (o->target.empty()) {
      st->base = *o;
      ctx.exit_code = RunAndReportStackRestore(ctx, *repo, *st, pp.fn());
      pp.Done();
      WarnDamagedIndex(*repo);
      return;
    }
    auto blobs = repo->OpenBlobReader();
    auto res =
        blobs.ok() ? RunRestore(**blobs, *o, pp.fn()) : Result<RestoreResult>(blobs.status());
    pp.Done();
    WarnDamagedIndex(*repo);
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    if (ctx.json) {
      PrintJson(ToJson(*res, id, o->dry_run));
    } else {
      for (const auto& p : res->kept) std::cerr << p.path << ": " << p.message << "\n";
      for (const auto& p : res->problems) std::cerr << p.path << ": " << p.message << "\n";
      for (const auto& r : res->removed)
        std::cout << (o->dry_run ? "would remove " : "removed ") << r << "\n";
      if (o->dry_run)
        for (const auto& w : res->written) std::cout << "would restore " << w << "\n";
      const auto& s = res->stats;
      std::cout << (o->dry_run ? "dry run: would restore " : "restored ") << s.files_written
                << " files (" << HumanBytes(s.bytes_written) << ") from snapshot "
                << id.substr(0, 8) << " into " << o->target << "; " << s.files_unchanged
                << " already present, " << s.files_conflict << " kept (differ), " << s.dirs_created
                << " directories created";
      if (!o->dry_run) std::cout << ", in " << s.seconds << " s";
      std::cout << "\n";
      if (s.files_failed)
        std::cout << "PARTIAL: " << s.files_failed
                  << " failed: file(s) not restored (listed above, one line "
                  << "each; nothing is left under their names); fix what the lines say and run the "
                     "restore again\n";
    }
    ctx.exit_code = res->problems.empty() ? kExitOk : kExitPartial;
  });
}

}  // namespace mv::agent
