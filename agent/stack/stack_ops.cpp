// BackupStacks (stack_ops.h): per enabled stack, pre-hooks -> RunBackup -> post-hooks.
#include "agent/stack/stack_ops.h"

#include <cstdio>

#include <unistd.h>

#include <algorithm>

#include "agent/stack/discovery_labels.h"
#include "agent/stack/stack_hooks.h"

namespace mv::agent {
namespace {

using detail::Join;

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

bool Mounts(const ServicePlan& s, const std::string& volume) {
  return std::find(s.volumes.begin(), s.volumes.end(), volume) != s.volumes.end();
}

// Sources (one per backed-up volume) and the snapshot tags of the stack.
void FillSources(const StackPlan& st, const BackupOptions& base, StackBackupOutcome& out) {
  std::vector<std::string> vols, svcs;
  for (const VolumePlan* v : st.BackedUpVolumes()) {
    out.sources.push_back({v->name, v->mountpoint, v->paths});
    vols.push_back(v->name);
    for (const auto& s : st.services)
      if (s.enabled && Mounts(s, v->name) &&
          std::find(svcs.begin(), svcs.end(), s.short_name) == svcs.end())
        svcs.push_back(s.short_name);
  }
  std::sort(svcs.begin(), svcs.end());
  out.tags = base.tags;
  out.tags["stack"] = st.name;
  out.tags["service"] = Join(svcs, ",");
  out.tags["volume"] = Join(vols, ",");
  out.tags["host"] = base.host.empty() ? HostName() : base.host;
  if (!st.version.empty()) out.tags["version"] = st.version;
}

StackBackupOutcome BackupOne(storage::Repository& repo, const StackPlan& st,
                             const StackBackupOptions& opts, detail::StackHooks& hooks,
                             const ProgressFn& progress) {
  StackBackupOutcome out;
  out.stack = st.name;
  out.warnings = st.warnings;
  for (const auto& w : st.warnings) hooks.Event(StackEvent::kWarning, st.name, "", w);
  if (!st.errors.empty()) {
    out.status = StackStatus::kFailed;
    out.message = "label errors, not backed up: " + Join(st.errors, "; ");
    return out;
  }
  FillSources(st, opts.base, out);
  if (out.sources.empty()) {
    out.status = StackStatus::kSkipped;
    out.message = "none of its volumes is backed up on this node";
    return out;
  }
  std::vector<const ServicePlan*> services;
  for (const auto& s : st.services)
    if (s.enabled) services.push_back(&s);

  if (!hooks.RunPhase(st, services, "backup pre-hook", &HookSet::backup_pre, out.hooks)) {
    out.status = StackStatus::kFailed;
    out.message = detail::FirstFailure(out.hooks) +
                  "; no snapshot taken (a stale dump is "
                  "worse than a loud failure)";
  } else {
    BackupOptions b = opts.base;
    b.sources = out.sources;
    b.tags = out.tags;
    // The pre-hooks' results travel with the snapshot (the nightly report shows them); post-hooks
    // run after the commit and are in the run's own report.
    for (const auto& h : out.hooks) {
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f", h.result.seconds);
      b.tags["hook.backup-pre." + h.service] = h.skipped ? "skipped"
                                               : h.ok()  ? std::string("ok ") + secs + " s"
                                                         : h.Describe();
    }
    hooks.Event(StackEvent::kInfo, st.name, "", "backing up volumes " + out.tags["volume"]);
    auto r = RunBackup(repo, b, progress);
    if (!r.ok()) {
      out.status = StackStatus::kFailed;
      out.message = "backup failed: " + r.status().ToString();
    } else {
      out.backup = std::move(*r);
      if (!out.backup->problems.empty()) {
        out.status = StackStatus::kPartial;
        out.message = std::to_string(out.backup->problems.size()) + " file(s) could not be read";
      }
    }
  }
  size_t post_from = out.hooks.size();
  if (!hooks.RunPhase(st, services, "backup post-hook", &HookSet::backup_post, out.hooks)) {
    std::string failure = detail::FirstFailure(out.hooks, post_from);
    if (out.status == StackStatus::kFailed) {
      out.message += "; also " + failure;
    } else {
      out.status = StackStatus::kFailed;
      out.message =
          (out.backup ? "snapshot " + out.backup->snapshot_id.substr(0, 8) + " committed, but "
                      : std::string()) +
          failure;
    }
  }
  return out;
}

}  // namespace

bool StackBackupReport::AnyFailed() const {
  for (const auto& s : stacks)
    if (s.status == StackStatus::kFailed) return true;
  return false;
}

bool StackBackupReport::AnyPartial() const {
  for (const auto& s : stacks)
    if (s.status == StackStatus::kPartial) return true;
  return false;
}

Result<std::vector<std::string>> StacksReady(const StackBackupOptions& opts) {
  detail::StackHooks hooks(opts);
  MV_RETURN_IF_ERROR(hooks.Init(opts.stack));
  std::vector<std::string> enabled;
  bool found = false;
  for (const auto& st : hooks.plan().stacks) {
    if (!opts.stack.empty() && st.name != opts.stack) continue;
    found = true;
    if (st.enabled) enabled.push_back(st.name);
  }
  if (!opts.stack.empty() && !found)
    return Status::NotFound("no stack named '" + opts.stack + "' is deployed on this swarm");
  if (enabled.empty())
    return Status::NotFound(
        opts.stack.empty()
            ? "no stack on this swarm is enabled for backup: label a service of each stack to back "
              "up with backupbot.backup=true (deploy.labels), then check with `mailvault discover`"
            : "stack " + opts.stack +
                  " is not enabled: no service has backupbot.backup=true (see `mailvault "
                  "discover --stack " +
                  opts.stack + "`)");
  return enabled;
}

Result<StackBackupReport> BackupStacks(storage::Repository& repo, const StackBackupOptions& opts,
                                       const ProgressFn& progress) {
  detail::StackHooks hooks(opts);
  MV_RETURN_IF_ERROR(hooks.Init(opts.stack));
  const Plan& plan = hooks.plan();
  StackBackupReport report;
  report.warnings = plan.warnings;
  bool found = false;
  for (const auto& st : plan.stacks) {
    if (!opts.stack.empty() && st.name != opts.stack) continue;
    found = true;
    if (!st.enabled) {
      // Still loud: a misplaced backupbot.backup label is why most stacks are silently skipped.
      for (const auto& w : st.warnings)
        if (w.find("MISPLACED LABEL") != std::string::npos) report.warnings.push_back(w);
      if (opts.stack.empty()) continue;
      StackBackupOutcome out;
      out.stack = st.name;
      out.status = StackStatus::kFailed;
      out.message = "stack " + st.name + " is not enabled: no service has backupbot.backup=true";
      out.warnings = st.warnings;
      report.stacks.push_back(std::move(out));
      continue;
    }
    report.stacks.push_back(BackupOne(repo, st, opts, hooks, progress));
  }
  if (!opts.stack.empty() && !found)
    return Status::NotFound("no stack named '" + opts.stack + "' is deployed on this swarm");
  return report;
}

}  // namespace mv::agent
