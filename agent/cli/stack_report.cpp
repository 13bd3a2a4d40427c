#include "agent/cli/stack_report.h"

#include <iostream>

namespace mv::agent {
namespace {

constexpr size_t kMaxProblemsShown = 20;

nlohmann::json HooksToJson(const std::vector<HookRun>& hooks) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : hooks) {
    nlohmann::json j = {{"service", h.service},
                        {"phase", h.phase},
                        {"command", h.command},
                        {"ok", h.ok()},
                        {"result", h.Describe()}};
    if (!h.container.empty()) j["container"] = h.container;
    if (!h.error.empty()) j["error"] = h.error;
    if (h.error.empty() && !h.skipped) {
      j["exit_code"] = h.result.exit_code;
      j["timed_out"] = h.result.timed_out;
      j["seconds"] = h.result.seconds;
      j["output_tail"] = h.result.output_tail;
    }
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json ProblemsToJson(const std::vector<FileProblem>& problems) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : problems) out.push_back({{"path", p.path}, {"message", p.message}});
  return out;
}

void PrintProblems(const std::vector<FileProblem>& problems) {
  for (size_t i = 0; i < problems.size() && i < kMaxProblemsShown; ++i)
    std::cout << "    " << problems[i].path << ": " << problems[i].message << "\n";
  if (problems.size() > kMaxProblemsShown)
    std::cout << "    ... and " << problems.size() - kMaxProblemsShown << " more (see --json)\n";
}

void PrintBackupOutcome(const StackBackupOutcome& s) {
  std::cout << "stack " << s.stack << ": " << StackStatusName(s.status);
  if (s.backup) {
    const BackupStats& st = s.backup->stats;
    std::cout << ", snapshot " << s.backup->snapshot_id.substr(0, 8) << " (volumes "
              << (s.tags.count("volume") ? s.tags.at("volume") : "") << "; " << st.files
              << " files, " << st.bytes_new << " new bytes)";
  }
  if (!s.message.empty()) std::cout << ": " << s.message;
  std::cout << "\n";
  for (const auto& h : s.hooks)
    if (!h.ok()) std::cout << "  " << h.Describe() << "\n" << h.result.output_tail;
  if (s.backup) PrintProblems(s.backup->problems);
  if (s.backup)
    PrintProblems(s.backup->warnings);  // stored as last read / raw: listed, not partial
}

int ExitCodeFor(bool any_failed, bool any_partial) {
  if (any_failed) return kExitError;
  if (any_partial) return kExitPartial;
  return kExitOk;
}

}  // namespace

void AddStackOptions(CLI::App* sub, StackOpsCommon& opts) {
  sub->add_option("--docker-host", opts.docker_host,
                  "Docker daemon socket, unix:///path (default: $DOCKER_HOST, else "
                  "unix:///var/run/docker.sock)");
  sub->add_option_function<int>(
         "--hook-timeout", [&opts](int s) { opts.hook_timeout = std::chrono::seconds(s); },
         "Seconds each backupbot hook may run before it counts as failed (default 600)")
      ->check(CLI::PositiveNumber);
}

StackEventFn StackEventLogger(const CliContext& ctx) {
  bool quiet = ctx.quiet;
  return [quiet](const StackEvent& e) {
    std::string where = e.stack + (e.service.empty() ? "" : "/" + e.service);
    if (e.kind == StackEvent::kWarning) {
      std::cerr << "mailvault: " << where << ": warning: " << e.text << "\n";
    } else if (!quiet) {
      std::string sep = e.kind == StackEvent::kHookOutput
                            ? (e.stream == hooks::StreamId::kStderr ? " ! " : " | ")
                            : ": ";
      std::cerr << where << sep << e.text << "\n";
    }
  };
}

nlohmann::json StackBackupReportToJson(const StackBackupReport& report) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& s : report.stacks) {
    nlohmann::json j = {
        {"stack", s.stack}, {"status", StackStatusName(s.status)}, {"message", s.message},
        {"tags", s.tags},   {"hooks", HooksToJson(s.hooks)},       {"warnings", s.warnings}};
    if (s.backup) {
      j["snapshot"] = s.backup->snapshot_id;
      j["files"] = s.backup->stats.files;
      j["bytes_new"] = s.backup->stats.bytes_new;
      j["problems"] = ProblemsToJson(s.backup->problems);
      j["file_warnings"] = ProblemsToJson(s.backup->warnings);
    }
    stacks.push_back(std::move(j));
  }
  return {{"stacks", stacks},
          {"warnings", report.warnings},
          {"failed", report.AnyFailed()},
          {"partial", report.AnyPartial()}};
}

nlohmann::json StackRestoreOutcomeToJson(const StackRestoreOutcome& out) {
  nlohmann::json j = {{"stack", out.stack},
                      {"status", StackStatusName(out.status)},
                      {"message", out.message},
                      {"targets", out.targets},
                      {"hooks", HooksToJson(out.hooks)}};
  if (out.restore) {
    const RestoreStats& st = out.restore->stats;
    j["files_written"] = st.files_written;
    j["files_failed"] = st.files_failed;
    j["files_unchanged"] = st.files_unchanged;
    j["files_conflict"] = st.files_conflict;
    j["written"] = out.restore->written;
    j["problems"] = ProblemsToJson(out.restore->problems);
    j["kept"] = ProblemsToJson(out.restore->kept);
  }
  return j;
}

int RunAndReportStackBackup(CliContext& ctx, storage::Repository& repo, StackBackupOptions opts,
                            const ProgressFn& progress, std::map<std::string, int>* per_stack) {
  if (!opts.on_event) opts.on_event = StackEventLogger(ctx);
  auto report = BackupStacks(repo, opts, progress);
  if (!report.ok()) return ReportError(ctx, report.status());
  if (per_stack)
    for (const auto& s : report->stacks)
      if (s.status != StackStatus::kSkipped)
        (*per_stack)[s.stack] =
            ExitCodeFor(s.status == StackStatus::kFailed, s.status == StackStatus::kPartial);
  if (ctx.json) {
    std::cout << StackBackupReportToJson(*report).dump() << std::endl;
  } else {
    for (const auto& w : report->warnings) std::cerr << "mailvault: warning: " << w << "\n";
    if (report->stacks.empty())
      std::cout << "no stack is enabled for backup (see mailvault discover)\n";
    for (const auto& s : report->stacks) PrintBackupOutcome(s);
  }
  return ExitCodeFor(report->AnyFailed(), report->AnyPartial());
}

int RunAndReportStackRestore(CliContext& ctx, storage::Repository& repo, StackRestoreOptions opts,
                             const ProgressFn& progress) {
  if (!opts.on_event) opts.on_event = StackEventLogger(ctx);
  auto out = RestoreStack(repo, opts, progress);
  if (!out.ok()) return ReportError(ctx, out.status());
  if (ctx.json) {
    std::cout << StackRestoreOutcomeToJson(*out).dump() << std::endl;
  } else {
    std::cout << "stack " << out->stack << ": " << StackStatusName(out->status);
    if (out->restore)
      std::cout << (opts.base.dry_run ? ", would write " : ", ")
                << out->restore->stats.files_written << " file(s) written, "
                << out->restore->stats.files_failed << " failed, "
                << out->restore->stats.files_unchanged << " unchanged";
    if (!out->message.empty()) std::cout << ": " << out->message;
    std::cout << "\n";
    for (const auto& [source, dir] : out->targets)
      std::cout << "  " << source << " -> " << dir << "\n";
    for (const auto& h : out->hooks)
      if (!h.ok()) std::cout << "  " << h.Describe() << "\n" << h.result.output_tail;
    if (out->restore) PrintProblems(out->restore->problems);
  }
  if (out->status == StackStatus::kFailed) return kExitError;
  return out->status == StackStatus::kPartial ? kExitPartial : kExitOk;
}

}  // namespace mv::agent
