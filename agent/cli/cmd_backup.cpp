#include <cctype>
#include <cstdio>
#include <iostream>

#include "agent/archiver/backup.h"
#include "agent/cli/cli.h"
#include "agent/cli/lock_wait.h"
#include "agent/cli/output.h"
#include "agent/cli/stack_report.h"
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

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// --time: "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS", UTC unless followed by "Z" or an
// offset "+HH:MM"/"-HH:MM". Years 1970-9999. Returns nanoseconds since the epoch.
Result<int64_t> ParseSnapshotTime(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid("--time '" + text + "': " + why +
                           " (use \"YYYY-MM-DD HH:MM:SS\" (UTC), \"YYYY-MM-DDTHH:MM:SSZ\" or an "
                           "offset: \"2026-11-30T03:00:00+01:00\")");
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, n = 0;
  char sep = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &se,
                  &n) != 7 ||
      n != 19 || (sep != ' ' && sep != 'T') || text[4] != '-' || text[7] != '-')
    return bad("not a date and time");
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18})
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad("not a date and time");
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap))
    return bad("no such date (years 1970-9999)");
  if (h > 23 || mi > 59 || se > 59) return bad("no such time of day");
  std::string_view zone = std::string_view(text).substr(19);
  int offset = 0;
  if (zone == "Z" || zone.empty()) {
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
             std::isdigit(static_cast<unsigned char>(zone[1])) &&
             std::isdigit(static_cast<unsigned char>(zone[2])) &&
             std::isdigit(static_cast<unsigned char>(zone[4])) &&
             std::isdigit(static_cast<unsigned char>(zone[5]))) {
    int oh = (zone[1] - '0') * 10 + (zone[2] - '0'), om = (zone[4] - '0') * 10 + (zone[5] - '0');
    if (oh > 23 || om > 59) return bad("offset out of range");
    offset = (oh * 3600 + om * 60) * (zone[0] == '-' ? -1 : 1);
  } else {
    return bad("unknown time zone suffix '" + std::string(zone) + "'");
  }
  int64_t secs = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  if (secs < 0) return bad("before 1970");
  return secs * 1000000000LL;
}

Status ParseArgs(BackupArgs& a) {
  if (!a.time.empty()) {
    MV_ASSIGN_OR_RETURN(int64_t ns, ParseSnapshotTime(a.time));
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
    auto repo = storage::Repository::Open(ctx.repo);
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
    if (ctx.json)
      PrintJson(ToJson(*res));
    else if (!ctx.quiet || !res->problems.empty() || !res->warnings.empty())
      PrintHuman(*res);
    ctx.exit_code = res->problems.empty() ? kExitOk : kExitPartial;
  });
}

}  // namespace mv::agent
