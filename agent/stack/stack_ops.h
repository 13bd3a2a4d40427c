// Backup and restore of labelled swarm stacks: discovery -> hooks -> RunBackup /
// RunRestore -> hooks, one stack at a time. The CLI (cmd_backup, cmd_restore, cmd_agent) calls
// these when no --source / --target is given and prints the outcomes; nothing here prints.
//
// Hook contract: a failed or timed-out backup pre-hook aborts THAT stack's snapshot (a stale
// dump is worse than a loud failure); other stacks go on. Post-hooks always run once the
// pre-hook phase started, also after a failure. Hooks of a service running on another node
// are not run here (its volumes are not backed up here either); a service with a hook and no
// running task anywhere fails its stack.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/archiver/backup.h"
#include "agent/stack/discovery.h"
#include "agent/restorer/restore.h"
#include "hooks/exec.h"
#include "storage/status.h"

namespace mv::storage {
class Repository;
}

namespace mv::agent {

enum class StackStatus { kOk, kPartial, kFailed, kSkipped };
const char* StackStatusName(StackStatus s);  // "ok", "partial", "failed", "skipped"

struct HookRun {
  std::string service;  // "mailu_admin"
  std::string phase;    // "backup pre-hook", "restore post-hook", ...
  std::string command;
  std::string container;  // where it ran; empty when it could not run
  hooks::ExecResult result;
  std::string error;     // why it could not run (no container, exec failed); empty if it ran
  bool skipped = false;  // not run here on purpose (service on another node, dry run)
  bool ok() const { return skipped || (error.empty() && result.ok()); }
  std::string Describe() const;  // "backup pre-hook of mailu_admin failed: exit code 3"
};

// Things worth telling the operator as they happen (the CLI logs them).
struct StackEvent {
  enum Kind { kInfo, kWarning, kHookOutput } kind = kInfo;
  std::string stack, service, text;
  hooks::StreamId stream = hooks::StreamId::kStdout;  // for kHookOutput
};
using StackEventFn = std::function<void(const StackEvent&)>;

// Runs `command` in `container` for `service`; the default goes through the Engine API.
using HookExecutor = std::function<Result<hooks::ExecResult>(
    const std::string& container, const std::string& service, const std::string& command)>;

struct StackOpsCommon {
  std::string docker_host;                 // "" = $DOCKER_HOST, else /var/run/docker.sock
  std::chrono::seconds hook_timeout{600};  // per hook; default 10 minutes
  StackEventFn on_event;
  // Seams for tests: a ready plan instead of discovery, and a hook executor instead of exec.
  const Plan* plan = nullptr;
  HookExecutor executor;
};

struct StackBackupOptions : StackOpsCommon {
  std::string stack;   // empty = every enabled stack; a named stack that is not enabled fails
  BackupOptions base;  // compression, threads, parent, host; sources and tags are set here
};

struct StackBackupOutcome {
  std::string stack;
  StackStatus status = StackStatus::kOk;
  std::string message;  // why failed / skipped / partial
  std::vector<HookRun> hooks;
  std::map<std::string, std::string> tags;  // stack, service, volume, host, version
  std::vector<SourceSpec> sources;
  std::optional<BackupResult> backup;  // set when a snapshot was committed
  std::vector<std::string> warnings;   // the plan's warnings for this stack
};

struct StackBackupReport {
  std::vector<StackBackupOutcome> stacks;
  std::vector<std::string> warnings;  // plan-wide, and loud ones of stacks not backed up
  bool AnyFailed() const;
  bool AnyPartial() const;
};

// What the next BackupStacks needs from the swarm, checked without running a hook or reading a
// volume: the daemon answers, and some stack is enabled (opts.stack: that one is). Ok gives the
// enabled stacks' names; an error says what is missing and how to fix it.
Result<std::vector<std::string>> StacksReady(const StackBackupOptions& opts);

// Errors are for the run as a whole (daemon unreachable, no such stack); per-stack failures
// are outcomes.
Result<StackBackupReport> BackupStacks(storage::Repository& repo, const StackBackupOptions& opts,
                                       const ProgressFn& progress = {});

struct StackRestoreOptions : StackOpsCommon {
  std::string stack;    // empty = the snapshot's "stack" tag
  std::string service;  // only the volumes this service mounts (name or short name)
  std::string volume;   // only this volume (label name, e.g. "mail")
  RestoreOptions base;  // snapshot (full ID), includes, overwrite, dry_run, threads;
                        // target and source_targets are set here
  // What restores into the live volumes (between the hooks; also in a dry run): RunRestore
  // unless set (restore --into-folder sets its own).
  std::function<Result<RestoreResult>(const storage::BlobReader&, const RestoreOptions&,
                                      const ProgressFn&)>
      run;
};

struct StackRestoreOutcome {
  std::string stack;
  StackStatus status = StackStatus::kOk;
  std::string message;
  std::vector<HookRun> hooks;
  std::map<std::string, std::string> targets;  // snapshot source -> live volume Mountpoint
  std::optional<RestoreResult> restore;
};

// Restore pre-hooks, RunRestore into the live volumes, restore post-hooks (skipped in dry run).
Result<StackRestoreOutcome> RestoreStack(storage::Repository& repo, const StackRestoreOptions& opts,
                                         const ProgressFn& progress = {});

}  // namespace mv::agent
