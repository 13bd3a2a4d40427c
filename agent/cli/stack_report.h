// CLI glue for stack backups/restores: the flags they share, live event logging (hook output
// tagged with the service), the final summary or JSON, and the exit code. Used by
// cmd_backup / cmd_agent (no --source) and cmd_restore (no --target).
#pragma once

#include <map>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/cli/cli.h"
#include "agent/stack/stack_ops.h"

namespace mv::agent {

// Adds --docker-host and --hook-timeout SECONDS to `sub` (--stack is the caller's: backup and
// restore describe it differently).
void AddStackOptions(CLI::App* sub, StackOpsCommon& opts);

// Logs events on stderr: warnings always, hook output and progress unless --quiet.
StackEventFn StackEventLogger(const CliContext& ctx);

nlohmann::json StackBackupReportToJson(const StackBackupReport& report);
nlohmann::json StackRestoreOutcomeToJson(const StackRestoreOutcome& out);

// Runs, prints (summary on stdout, or JSON with --json) and returns the exit code:
// 1 if a stack failed (its pre-hook, its labels, its backup or a post-hook), 3 if one was
// partial, else 0. opts.on_event defaults to StackEventLogger(ctx). `per_stack`, when given,
// gets each stack's own code the same way (the nightly report's mailvault_last_run_exit_code).
int RunAndReportStackBackup(CliContext& ctx, storage::Repository& repo, StackBackupOptions opts,
                            const ProgressFn& progress = {},
                            std::map<std::string, int>* per_stack = nullptr);
int RunAndReportStackRestore(CliContext& ctx, storage::Repository& repo, StackRestoreOptions opts,
                             const ProgressFn& progress = {});

}  // namespace mv::agent
