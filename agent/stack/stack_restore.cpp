// RestoreStack (stack_ops.h): restore pre-hooks -> RunRestore into live volumes -> post-hooks.
#include <algorithm>

#include "agent/stack/discovery_labels.h"
#include "agent/stack/stack_hooks.h"
#include "agent/stack/stack_ops.h"
#include "storage/repository.h"

namespace mv::agent {
namespace {

using detail::Join;

Result<storage::SnapshotMeta> FindSnapshot(const storage::Repository& repo, const std::string& id) {
  MV_ASSIGN_OR_RETURN(auto all, repo.ListSnapshots());
  for (auto& m : all)
    if (m.id == id) return std::move(m);
  return Status::NotFound("snapshot " + id + " is not in the repository", repo.path());
}

// Live volumes to restore into: in the snapshot, on this node, and selected by the filters.
Result<std::map<std::string, std::string>> Targets(const StackPlan& st,
                                                   const storage::SnapshotMeta& meta,
                                                   const StackRestoreOptions& opts) {
  std::vector<std::string> in_snapshot;
  for (const auto& s : meta.sources) in_snapshot.push_back(s.name);
  const ServicePlan* only_service = nullptr;
  if (!opts.service.empty() && !(only_service = st.FindService(opts.service)))
    return Status::Invalid("stack " + st.name + " has no service '" + opts.service + "'");
  std::map<std::string, std::string> targets;
  std::vector<std::string> known;
  for (const auto& v : st.volumes) {
    known.push_back(v.name);
    bool wanted = std::find(in_snapshot.begin(), in_snapshot.end(), v.name) != in_snapshot.end();
    if (only_service)
      wanted &= std::find(only_service->volumes.begin(), only_service->volumes.end(), v.name) !=
                only_service->volumes.end();
    if (!opts.volume.empty()) wanted &= v.name == opts.volume;
    if (!wanted) continue;
    if (v.mountpoint.empty())
      return Status::Invalid("volume " + v.docker_name + " of stack " + st.name +
                             " does not exist on this node: deploy the stack here (or restore "
                             "with --target DIR) first");
    targets[v.name] = v.mountpoint;
  }
  if (targets.empty())
    return Status::Invalid("nothing to restore: snapshot " + meta.id.substr(0, 8) + " holds [" +
                           Join(in_snapshot, ", ") + "], stack " + st.name + " has volumes [" +
                           Join(known, ", ") + "]" +
                           (opts.volume.empty() ? "" : ", --volume " + opts.volume) +
                           (opts.service.empty() ? "" : ", --service " + opts.service));
  return targets;
}

}  // namespace

Result<StackRestoreOutcome> RestoreStack(storage::Repository& repo, const StackRestoreOptions& opts,
                                         const ProgressFn& progress) {
  MV_ASSIGN_OR_RETURN(storage::SnapshotMeta meta, FindSnapshot(repo, opts.base.snapshot));
  std::string tagged = meta.tags.count("stack") ? meta.tags.at("stack") : "";
  std::string stack = opts.stack.empty() ? tagged : opts.stack;
  if (stack.empty())
    return Status::Invalid("snapshot " + meta.id.substr(0, 8) +
                           " has no stack tag (it was not a stack backup): give --stack NAME or "
                           "--target DIR");
  detail::StackHooks hooks(opts);
  MV_RETURN_IF_ERROR(hooks.Init(stack));
  const StackPlan* st = nullptr;
  for (const auto& s : hooks.plan().stacks)
    if (s.name == stack) st = &s;
  if (!st) return Status::NotFound("stack " + stack + " is not deployed on this swarm");
  if (!tagged.empty() && tagged != stack)
    hooks.Event(StackEvent::kWarning, stack, "",
                "snapshot " + meta.id.substr(0, 8) + " was taken of stack " + tagged +
                    ", restoring it into stack " + stack);

  StackRestoreOutcome out;
  out.stack = stack;
  MV_ASSIGN_OR_RETURN(out.targets, Targets(*st, meta, opts));
  std::vector<const ServicePlan*> services;  // those mounting a restored volume
  for (const auto& s : st->services)
    for (const auto& v : s.volumes)
      if (out.targets.count(v)) {
        services.push_back(&s);
        break;
      }

  RestoreOptions r = opts.base;
  r.source_targets = out.targets;
  auto restore = [&]() -> Result<RestoreResult> {
    MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
    return opts.run ? opts.run(*blobs, r, progress) : RunRestore(*blobs, r, progress);
  };
  if (r.dry_run) {
    auto res = restore();
    if (!res.ok()) return res.status();
    out.restore = std::move(*res);
    out.message = "dry run: no hooks were run";
    return out;
  }
  bool pre_ok = hooks.RunPhase(*st, services, "restore pre-hook", &HookSet::restore_pre, out.hooks);
  if (!pre_ok) {
    out.status = StackStatus::kFailed;
    out.message = detail::FirstFailure(out.hooks) + "; nothing was restored";
  } else {
    auto res = restore();
    if (!res.ok()) {
      out.status = StackStatus::kFailed;
      out.message = "restore failed: " + res.status().ToString();
    } else {
      out.restore = std::move(*res);
      if (!out.restore->problems.empty()) {
        out.status = StackStatus::kPartial;
        out.message = std::to_string(out.restore->problems.size()) + " file(s) not restored";
      }
    }
  }
  size_t post_from = out.hooks.size();
  if (!hooks.RunPhase(*st, services, "restore post-hook", &HookSet::restore_post, out.hooks)) {
    std::string failure = detail::FirstFailure(out.hooks, post_from);
    out.message += (out.message.empty() ? "files restored, but " : "; also ") + failure;
    out.status = StackStatus::kFailed;
  }
  return out;
}

}  // namespace mv::agent
