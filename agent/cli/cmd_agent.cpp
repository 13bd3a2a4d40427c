// `mailvault agent`: the sidecar. Backs up the labelled stacks on a cron schedule (or once, for
// swarm-cronjob), writes a health file, and answers the Docker healthcheck.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/sidecar/sidecar.h"
#include "agent/jobs/report_run.h"
#include "agent/cli/output.h"
#include "agent/cli/policy_flags.h"
#include "agent/cli/stack_report.h"
#include "agent/stack/stack_ops.h"
#include "retention/forget_run.h"
#include "retention/prune.h"
#include "storage/repository.h"
#include "storage/s3/open.h"
#include "transfer/copy.h"

namespace mv::agent {
namespace {

constexpr const char* kDefaultHealthFile = "/tmp/mailvault-health.json";

struct AgentArgs {
  std::string schedule, jitter = "0", health_file, report_dir, max_silence = "3m";
  std::string integrity_report;  // after each run, write `mailvault report` files here
  std::string copy_to;           // after each run that committed a snapshot, copy it there
  bool once = false, health_check = false;
  bool init_if_missing = false;  // --init-if-missing: create the repository at start if absent
  bool full_verify = false;      // --full-verify: the report restores even from a remote repository
  StackBackupOptions stack;      // --stack, --docker-host, --hook-timeout
  PolicyFlags keep;              // --keep-*: forget and prune after each successful run
  retention::Policy policy;      // parsed from `keep` when the agent starts
  int64_t keep_deleted_mail_ns = 0;  // --keep-deleted-mail, likewise
};

// How long the night's forget and prune wait for the lock (another host's backup, a restore's
// `repair`): long enough for a neighbour's nightly backup, short enough to finish tonight.
constexpr int64_t kRetentionLockWaitMs = 30 * 60 * 1000;

void Log(const std::string& line) {
  std::cerr << "["
            << FormatUtc(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()))
            << "] mailvault agent: " << line << std::endl;
}

// `--health-check`: exit 0 when the agent that writes the health file is alive and its last
// run did not fail; one line on stdout either way (Docker keeps it in `docker inspect`).
int HealthCheck(const AgentArgs& a) {
  auto silence = ParseDuration(a.max_silence);
  if (!silence.ok())
    return std::cout << "unhealthy: --max-silence: " << silence.status().message() << "\n",
           kExitUsage;
  std::string summary;
  Status st = CheckHealthFile(
      a.health_file, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()),
      *silence, &summary);
  std::cout << (st.ok() ? summary : "unhealthy: " + st.ToString()) << std::endl;
  return st.ok() ? kExitOk : kExitError;
}

// One run: exactly what `mailvault backup` with no --source does, on a freshly opened repository
// (a run must not depend on state left by the previous one).
// After a successful run only (a night with problems never rotates anything out): forget by the
// policy, as `mailvault forget` with default grouping, then prune. Returns the bytes the prune
// gave back, or an error that the run then reports (exit 1).
Result<uint64_t> ApplyRetention(storage::Repository& repo, const AgentArgs& a) {
  retention::ForgetRequest req;
  req.policy = a.policy;
  req.keep_deleted_mail_ns = a.keep_deleted_mail_ns;
  req.lock_wait.timeout_ms = kRetentionLockWaitMs;
  MV_ASSIGN_OR_RETURN(auto forgot, retention::Forget(repo, req));
  for (const auto& w : forgot.warnings) Log("retention: warning: " + w);
  MV_RETURN_IF_ERROR(forgot.status);
  size_t kept = 0;
  for (const auto& g : forgot.groups)
    for (const auto& d : g.decisions) kept += d.keep;
  Log("retention: kept " + std::to_string(kept) + " snapshot(s), removed " +
      std::to_string(forgot.removed.size()));
  if (a.keep_deleted_mail_ns)
    Log("retention: held " + std::to_string(forgot.held_messages) + " deleted message(s) (" +
        HumanBytes(forgot.held_bytes) + ") that only the removed snapshots had");
  retention::PruneOptions po;
  po.lock_wait.timeout_ms = kRetentionLockWaitMs;
  MV_ASSIGN_OR_RETURN(auto pruned, retention::Prune(repo, po));
  uint64_t reclaimed =
      pruned.size_before > pruned.size_after ? pruned.size_before - pruned.size_after : 0;
  Log("prune: " + HumanBytes(pruned.size_before) + " -> " + HumanBytes(pruned.size_after) +
      " of packs (" +
      std::to_string(pruned.deleted.packs + pruned.repacked.packs + pruned.unindexed.packs) +
      " pack(s) deleted, " + std::to_string(pruned.written.packs) + " written)");
  return reclaimed;
}

// --copy-to: the snapshots the off-site repository lacks (the night's, and any an earlier
// failed copy left behind) go there, as `mailvault copy` (transfer/copy.h).
Status CopyOffsite(const CliContext& ctx, const storage::Repository& repo, const AgentArgs& a) {
  MV_ASSIGN_OR_RETURN(auto to, OpenRepositoryAt(ctx, a.copy_to));
  transfer::CopyOptions opts;
  opts.lock_wait.timeout_ms = kRetentionLockWaitMs;
  MV_ASSIGN_OR_RETURN(auto res, transfer::Copy(repo, *to, opts));
  if (!res.took_over_stale.empty()) Log("copy: note: " + res.took_over_stale);
  storage::BackendStats io = to->backend().stats();
  Log("copy: " + std::to_string(res.copied.size()) + " snapshot(s) to " + to->path() + ", " +
      std::to_string(res.packs_sent) + " pack(s) sent (" + HumanBytes(res.bytes_sent) + ")" +
      (res.packs_resumed ? ", " + std::to_string(res.packs_resumed) + " from an earlier try"
                         : std::string()) +
      (io.retries ? ", " + std::to_string(io.retries) + " request(s) retried" : std::string()));
  return Status::Ok();
}

int RunOnceCode(CliContext& ctx, const AgentArgs& a) {
  auto repo = OpenRepository(ctx);
  if (!repo.ok()) return ReportError(ctx, repo.status());
  std::map<std::string, int> per_stack;
  int code = RunAndReportStackBackup(ctx, **repo, a.stack, {}, &per_stack);
  // A partial snapshot is still the newest copy of most of the mail: it goes off-site too.
  bool committed = code == kExitOk || code == kExitPartial;
  int64_t reclaimed = -1;
  if (code == kExitOk && !a.policy.empty()) {
    auto r = ApplyRetention(**repo, a);
    if (!r.ok()) {
      Log("retention failed: " + r.status().ToString());
      code = kExitError;
    } else {
      reclaimed = static_cast<int64_t>(*r);
    }
  }
  // After retention, so that what it forgot is not sent.
  if (!a.copy_to.empty() && committed) {
    if (Status st = CopyOffsite(ctx, **repo, a); !st.ok()) {
      Log("copy to " + a.copy_to + " failed (the next run resumes it): " + st.ToString());
      code = kExitError;
    }
  }
  if (a.integrity_report.empty()) return code;
  // The nightly integrity report after the backup (mailvault report): verify, rotate-check, write.
  NightlyReportOptions ro;
  ro.out = a.integrity_report;
  ro.full_verify = a.full_verify;
  ro.prune_reclaimed_bytes = reclaimed;
  ro.version = MAILVAULT_VERSION;
  ro.run_exit_code = code;
  ro.stack_exit_codes = per_stack;
  auto rep = GatherReport(**repo, ro);
  if (rep.ok()) rep->exit_code = ReportExitCode(rep->damage(), rep->stale());
  std::vector<std::string> written;
  Status st = rep.ok() ? WriteReportFiles(*rep, ro, &written) : rep.status();
  if (!st.ok()) return std::max(code, ReportError(ctx, st));
  return code;
}

// --init-if-missing: a repository that does not exist yet (no config) is created at start, as
// `mailvault init` would: encrypted with the passphrase when one is given, plain otherwise.
Status InitIfMissing(const CliContext& ctx) {
  MV_ASSIGN_OR_RETURN(auto backend, storage::s3::OpenBackend(ctx.repo, ctx.s3));
  auto config = storage::ReadRepoConfig(*backend);
  if (config.ok() || config.status().code() != Code::kNotFound) return Status::Ok();
  KeyFiles keys = KeyFilesOf(ctx);
  if (keys.password.empty() && (!keys.identity.empty() || !keys.agent.empty()))
    return Status::Invalid(
        "--init-if-missing cannot create a public-key repository from an identity or agent key: "
        "create it once with `mailvault init --repo " +
        ctx.repo + " --recipient age1...`, or give --password-file");
  MV_RETURN_IF_ERROR(InitRepository(ctx, nullptr, !keys.password.empty()));
  Log("created the repository " + ctx.repo + (keys.password.empty() ? "" : " (encrypted)") +
      " (--init-if-missing)");
  return Status::Ok();
}

// What the next run needs, checked while the agent idles (AgentOptions::readiness): the
// repository opens (with the key given), a local one is writable, the Docker daemon answers and
// a stack is enabled for backup.
Result<std::string> NextRunReady(const CliContext& ctx, const AgentArgs& a) {
  auto opened = OpenRepository(ctx);
  if (!opened.ok() && opened.status().code() == Code::kNotFound && !a.init_if_missing)
    return Status::NotFound(
        opened.status().message() + ", or start the agent with --init-if-missing",
        opened.status().path());
  MV_ASSIGN_OR_RETURN(auto repo, std::move(opened));
  std::string detail = "repository " + ctx.repo;
  if (!ctx.repo.starts_with("s3:")) {
    struct statvfs vfs;
    if (::statvfs(repo->path().c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
      return Status::IOError(
          "repository is read-only (its file system is mounted read-only): "
          "mount it read-write for the agent",
          repo->path());
    if (::access(repo->path().c_str(), W_OK) != 0)
      return Status::FromErrno(
          errno,
          "repository cannot be written by the agent (uid " + std::to_string(::geteuid()) + ")",
          repo->path());
    detail += " (writable)";
  }
  MV_ASSIGN_OR_RETURN(auto stacks, StacksReady(a.stack));
  std::string names;
  for (const auto& n : stacks) names += (names.empty() ? "" : ", ") + n;
  return detail + ", stack(s) " + names;
}

RunResult RunOnce(CliContext& ctx, const AgentArgs& a) {
  int code = RunOnceCode(ctx, a);
  RunOutcome o = code == kExitOk        ? RunOutcome::kOk
                 : code == kExitPartial ? RunOutcome::kPartial
                                        : RunOutcome::kFailed;
  return {o, code};
}

int Run(CliContext& ctx, AgentArgs& a) {
  if (a.health_check) return HealthCheck(a);
  if (Status st = ResolveRepo(ctx); !st.ok()) return ReportError(ctx, st);
  if (Status st = ParsePolicy(a.keep, &a.policy); !st.ok()) return ReportError(ctx, st);
  if (Status st = ParseKeepDeletedMail(a.keep, &a.keep_deleted_mail_ns); !st.ok())
    return ReportError(ctx, st);
  // A write-only agent key (docs/ENCRYPTION.md) backs up; retention, the off-site copy and the
  // integrity report read the repository, which needs the identity.
  bool agent_key = OpensWithAgentKeyOnly(ctx);
  if (agent_key && (!a.policy.empty() || !a.copy_to.empty() || !a.integrity_report.empty()))
    return ReportError(
        ctx, Status::Invalid("the agent key only backs up: --keep, --copy-to and "
                             "--integrity-report read the repository and need its identity; run "
                             "them where the identity is (mailvault forget/copy/report)"));
  ctx.write_only_ok = true;
  if (a.init_if_missing)
    if (Status st = InitIfMissing(ctx); !st.ok()) return ReportError(ctx, st);
  AgentOptions opts;
  opts.readiness = [&ctx, &a] { return NextRunReady(ctx, a); };
  opts.once = a.once;
  opts.health_file = a.health_file;
  opts.report_dir = a.report_dir;
  if (!a.schedule.empty()) {
    auto s = CronSchedule::Parse(a.schedule);
    if (!s.ok()) return ReportError(ctx, s.status());
    opts.schedule = *s;
  } else if (!a.once) {
    return ReportError(ctx, Status::Invalid("give --schedule \"MIN HOUR DOM MON DOW\" (e.g. "
                                            "\"0 3 * * *\", UTC) or --once"));
  }
  if (!a.copy_to.empty()) {
    // Refuse at start what would fail every night: a copy target that is not a repository or
    // does not share the content key.
    auto from = OpenRepository(ctx);
    auto to = OpenRepositoryAt(ctx, a.copy_to);
    if (!to.ok()) return ReportError(ctx, to.status());
    if (from.ok())
      if (Status st = transfer::CheckSameContentKey(**from, **to); !st.ok())
        return ReportError(ctx, st);
  }
  auto jitter = ParseDuration(a.jitter);
  if (!jitter.ok())
    return ReportError(ctx, Status::Invalid("--jitter: " + jitter.status().message()));
  opts.jitter = *jitter;
  if (opts.once && opts.jitter.count() > 0) {
    Log("--once: starting now; --jitter applies to scheduled runs only");
  }
  Log(opts.once ? "one backup run (--once)"
                : "schedule '" + opts.schedule->expression() + "' (UTC), jitter " + a.jitter +
                      ", repository " + ctx.repo);
  LoopResult end = RunAgentLoop(
      opts, [&ctx, &a] { return RunOnce(ctx, a); }, Log);
  switch (end.end) {
    case LoopEnd::kStopped:
      return kExitOk;
    case LoopEnd::kNeverMatches:
      return kExitUsage;
    case LoopEnd::kOnceDone:
      return end.last ? end.last->exit_code : kExitError;
    case LoopEnd::kAbandoned:
      break;
  }
  // A run thread is still inside the repository: end now, without static destructors racing
  // it. Safe by design: nothing it wrote is part of a snapshot until the manifest rename.
  std::_Exit(kExitError);
}

}  // namespace

void RegisterAgent(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("agent", "Run as the backup sidecar: scheduled stack backups");
  sub->description(
      "Backs up every swarm stack enabled with backupbot labels (as `mailvault backup` with no\n"
      "--source) on a cron schedule, in UTC, starting each run up to --jitter late so that many\n"
      "hosts do not hit shared storage at once. One run at a time; slots missed during a long\n"
      "run are skipped. SIGTERM while idle stops at once; during a run it lets the run finish\n"
      "(a second SIGTERM abandons it: the repository stays consistent either way).\n\n"
      "Retention: with --keep-* rules (those of `mailvault forget`, and --timezone), each run\n"
      "whose backup succeeded (exit 0) then forgets by that policy, with forget's safety rails\n"
      "(the newest and the newest verified snapshot of each stack stay), and prunes. A run with\n"
      "problems rotates nothing out. The integrity report then shows the space it gave back\n"
      "(mailvault_prune_reclaimed_bytes). Example:\n"
      "  mailvault agent -r /backup --schedule \"0 3 * * *\" --integrity-report /srv/report \\\n"
      "      --keep-daily 7 --keep-weekly 4 --keep-monthly 12\n\n"
      "Off-site: with --copy-to REPO each run that committed a snapshot (exit 0 or 3) then copies\n"
      "the snapshots REPO lacks, as `mailvault copy` (after retention, so what was forgotten\n"
      "is not sent). Create REPO with `mailvault init --repo REPO --copy-key-from THIS_REPO`; a\n"
      "failed copy fails the run (exit 1) and the next run resumes it. The copy is not pruned\n"
      "here: run forget/prune on it from a host whose credential may delete (docs/S3.md).\n"
      "  mailvault agent -r /backup --schedule \"0 3 * * *\" \\\n"
      "      --copy-to s3:https://s3.example.net/mail-backups/mailu\n\n"
      "--health-check exits 0 when the agent writing --health-file is alive, ready for its next\n"
      "run, and its last run did not fail; use it as the container's HEALTHCHECK. Ready means:\n"
      "the repository opens with the key given (a local one is writable), the Docker daemon\n"
      "answers, and a stack is enabled for backup. The agent checks that at start and every\n"
      "5 minutes while idle, and logs what is missing, so a wrong mount or label shows now and\n"
      "not at the night's run. With --init-if-missing a repository that does not exist yet is\n"
      "created at start (the shipped deploy/stack.yml does this for its named volume).\n"
      "  mailvault agent --health-check            # in the container: exit 0 healthy, 1 not\n\n"
      "Exit: --once returns the run's code (0 ok, 1 error, 3 partial); otherwise 0 after a\n"
      "clean stop, 2 on a bad command line.");
  auto a = std::make_shared<AgentArgs>();
  a->health_file = kDefaultHealthFile;
  AddRepoOption(sub, ctx);
  sub->add_option("--schedule", a->schedule, "Cron schedule, 5 fields, UTC (e.g. \"0 3 * * *\")");
  sub->add_option("--jitter", a->jitter,
                  "Start each scheduled run up to this late (e.g. 10m; default 0)");
  sub->add_flag("--once", a->once, "Run one backup now and exit with its code (for swarm-cronjob)");
  sub->add_option("--stack", a->stack.stack,
                  "Back up only this swarm stack (default: every enabled stack)");
  AddStackOptions(sub, a->stack);
  sub->add_option("--health-file", a->health_file,
                  std::string("Health file to write (agent) or read (--health-check); default ") +
                      kDefaultHealthFile);
  sub->add_option("--report-dir", a->report_dir, "Write one run-<time>.json per run here");
  sub->add_option(
      "--integrity-report", a->integrity_report,
      "After each backup run, verify the latest snapshots and write the integrity report "
      "(md, html, json, Prometheus textfile) into this directory, as `mailvault report`");
  sub->add_option("--copy-to", a->copy_to,
                  "After each run that committed a snapshot, copy what this repository (a "
                  "directory or s3:...) lacks, as `mailvault copy`");
  sub->add_flag("--full-verify", a->full_verify,
                "--integrity-report of a remote (S3) repository: restore and verify the latest "
                "snapshots, downloading their data (as `mailvault report --full-verify`)");
  sub->add_flag("--health-check", a->health_check,
                "Check the health file and exit 0 (healthy) or 1; for a Docker HEALTHCHECK");
  sub->add_flag("--init-if-missing", a->init_if_missing,
                "Create the repository at start if it does not exist yet (as `mailvault init`; "
                "encrypted when a passphrase is given)");
  sub->add_option("--max-silence", a->max_silence,
                  "--health-check: unhealthy when the heartbeat is older than this (default 3m)");
  AddPolicyOptions(sub, &a->keep);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] { ctx.exit_code = Run(ctx, *a); });
}

}  // namespace mv::agent
