#include <cctype>
#include <cstdio>
#include <iostream>

#include "agent/archiver/backup.h"
#include "agent/cli/cli.h"
#include "agent/cli/lock_wait.h"
#include "agent/cli/output.h"
#include "agent/cli/stack_report.h"
#include "agent/cli/time_arg.h"
#include "storage/repository.h"

namespace mv::agent {
namespace {

struct BackupArgs {
  std::vector<std::string> sources, tags;
  std::string retry_lock;
  std::string time;  // --time, as given
  BackupOptions opts;
  StackBackupOptions stack;  // used when no --source is given
};

Status ParseArgs(BackupArgs& a) {
  if (!a.time.empty()) {
    MV_ASSIGN_OR_RETURN(int64_t ns, ParseTimeArg("--time", a.time));
    a.opts.time_ns = ns;
  }
  for (const auto& s : a.sources) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      return Status::Invalid(
          "--source takes NAME=DIR (e.g. mail=/var/lib/docker/volumes/mailu_mail/_data), got '" +
          s + "'");
    a.opts.sources.push_back({s.substr(0, eq), s.substr(eq + 1), {}});
  }
  for (const auto& t : a.tags) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::Invalid("--tag takes KEY=VALUE, got '" + t + "'");
    a.opts.tags[t.substr(0, eq)] = t.substr(eq + 1);
  }
  return Status::Ok();
}

nlohmann::json ToJson(const BackupResult& r) {
  nlohmann::json j = {{"snapshot", r.snapshot_id},
                      {"parent", r.parent_id},
                      {"files", r.stats.files},
                      {"dirs", r.stats.dirs},
                      {"symlinks", r.stats.symlinks},
                      {"files_read", r.stats.files_read},
                      {"bytes_total", r.stats.bytes_total},
                      {"bytes_read", r.stats.bytes_read},
                      {"blobs_new", r.stats.blobs_new},
                      {"bytes_new", r.stats.bytes_new},
                      {"bytes_packed", r.stats.bytes_packed},
                      {"sqlite_databases", r.stats.sqlite_databases},
                      {"seconds", r.stats.seconds},
                      {"problems", nlohmann::json::array()},
                      {"warnings", nlohmann::json::array()},
                      {"skipped", nlohmann::json::array()},
                      {"notes", r.notes}};
  for (const auto& p : r.problems)
    j["problems"].push_back({{"path", p.path}, {"message", p.message}});
  for (const auto& p : r.warnings)
    j["warnings"].push_back({{"path", p.path}, {"message", p.message}});
  for (const auto& p : r.skipped)
    j["skipped"].push_back({{"path", p.path}, {"message", p.message}});
  return j;
}

void PrintHuman(const BackupResult& r) {
  for (const auto& n : r.notes) std::cerr << "note: " << n << "\n";
  for (const auto& p : r.skipped) std::cerr << "skipped: " << p.path << ": " << p.message << "\n";
  for (const auto& p : r.warnings) std::cerr << "warning: " << p.path << ": " << p.message << "\n";
  for (const auto& p : r.problems) std::cerr << "warning: " << p.path << ": " << p.message << "\n";
  const auto& s = r.stats;
  std::cout << "snapshot " << r.snapshot_id.substr(0, 8) << " saved"
            << (r.parent_id.empty() ? "" : " (parent " + r.parent_id.substr(0, 8) + ")") << "\n"
            << "  files:   " << s.files << " (" << HumanBytes(s.bytes_total) << "), " << s.dirs
            << " directories, " << s.symlinks << " symlinks, " << s.sqlite_databases
            << " SQLite database(s) via online backup\n"
            << "  read:    " << s.files_read << " files, " << HumanBytes(s.bytes_read)
            << " (the rest unchanged since the parent)\n"
            << "  added:   " << s.blobs_new << " new blobs, " << HumanBytes(s.bytes_new) << " -> "
            << HumanBytes(s.bytes_packed) << " compressed\n"
            << "  time:    " << s.seconds << " s\n";
  if (!r.problems.empty())
    std::cout << "PARTIAL: " << r.problems.size()
              << " file(s) could not be backed up (listed above)\n";
}

}  // namespace

void RegisterBackup(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "backup", "Back up directories (or the labelled swarm stacks) into a snapshot");
  sub->footer(
      "Back up each --source NAME=DIR into one snapshot. Files unchanged since the parent\n"
      "snapshot (same device, inode, size, mtime, ctime) are not read; Maildir messages renamed\n"
      "for a flag change or moved between folders are recognised by inode and unique name and\n"
      "not read either. SQLite databases are copied through SQLite's online backup API (raw, and\n"
      "reported, only when SQLite cannot open them); their -wal/-shm/-journal files are not "
      "stored.\n"
      "Hard links are recorded as links; user.* xattrs and POSIX ACLs are kept. tmp/ of every\n"
      "Maildir is skipped.\n\n"
      "Without --source, backs up every swarm stack enabled with backupbot labels (see\n"
      "`mailvault discover`).\n\n"
      "Exit: 0 ok, 1 error (nothing committed), 2 usage, 3 partial (snapshot saved, some files\n"
      "could not be read: each is listed). Files stored with a warning (changed while being\n"
      "read: stored as last read; a file with the SQLite header that SQLite cannot open: stored\n"
      "raw) are listed and do not make the exit code 3.");
  auto a = std::make_shared<BackupArgs>();
  AddRepoOption(sub, ctx);
  sub->add_option("-s,--source", a->sources,
                  "NAME=DIR to back up; repeat for several (e.g. mail=/srv/mail)");
  sub->add_option("--tag", a->tags, "KEY=VALUE tag on the snapshot; repeatable");
  sub->add_option("--stack", a->stack.stack,
                  "Without --source: only this swarm stack (default: every enabled stack)");
  AddStackOptions(sub, a->stack);
  sub->add_option("--host", a->opts.host,
                  "Host name recorded in the snapshot (default: this host)");
  sub->add_option("--time", a->time,
                  "Record this as the snapshot's time instead of now: \"2026-11-30 03:00:00\" "
                  "(UTC), \"2026-11-30T03:00:00Z\" or with an offset \"...+01:00\" (imports, "
                  "tests of retention)");
  sub->add_option("--parent", a->opts.parent,
                  "Parent snapshot for change detection (default: latest with the same host and "
                  "sources; 'none' reads everything)");
  sub->add_option("--compression", a->opts.compression_level, "zstd level for packs (default 3)")
      ->check(CLI::Range(1, 19));
  sub->add_option("--threads", a->opts.threads,
                  "Reader/compressor threads (default: number of cores)");
  sub->add_option("--sqlite-timeout", a->opts.sqlite_busy_timeout_ms,
                  "Milliseconds to keep retrying a locked SQLite database (default 60000)");
  AddRetryLockOption(sub, &a->retry_lock);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    if (Status st = ParseArgs(*a); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    auto wait = ParseRetryLock(a->retry_lock, ctx);
    if (!wait.ok()) return void(ctx.exit_code = ReportError(ctx, wait.status()));
    a->opts.lock_wait = *wait;
    ctx.write_only_ok = true;  // a write-only agent key may back up (docs/ENCRYPTION.md)
    auto repo = OpenRepository(ctx);
    if (!repo.ok()) return void(ctx.exit_code = ReportError(ctx, repo.status()));
    ProgressPrinter pp(ctx);
    if (a->opts.sources.empty()) {
      a->stack.base = a->opts;
      ctx.exit_code = RunAndReportStackBackup(ctx, **repo, a->stack, pp.fn());
      pp.Done();
      return;
    }
    auto res = RunBackup(**repo, a->opts, pp.fn());
    pp.Done();
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    // What the backend sent (an S3 repository; a local one counts nothing): for monitoring of
    // retries and transfer volume.
    storage::BackendStats io = (*repo)->backend().stats();
    if (ctx.json)
      PrintJson(WithStorage(ToJson(*res), io));
    else if (!ctx.quiet || !res->problems.empty() || !res->warnings.empty())
      PrintHuman(*res);
    PrintStorageLine(ctx, io);
    ctx.exit_code = res->problems.empty() ? kExitOk : kExitPartial;
  });
}

}  // namespace mv::agent
