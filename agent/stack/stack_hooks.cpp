#include "agent/stack/stack_hooks.h"

#include <cstdio>

namespace mv::agent {

const char* StackStatusName(StackStatus s) {
  switch (s) {
    case StackStatus::kOk:
      return "ok";
    case StackStatus::kPartial:
      return "partial";
    case StackStatus::kFailed:
      return "failed";
    case StackStatus::kSkipped:
      return "skipped";
  }
  return "?";
}

std::string HookRun::Describe() const {
  std::string what = phase + " of " + service;
  if (skipped) return what + " not run: " + error;
  if (!error.empty()) return what + " could not run: " + error;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f s", result.seconds);
  if (result.timed_out)
    return what + " timed out after " + secs + " (it may still be running in container " +
           container.substr(0, 12) + ")";
  if (result.exit_code != 0)
    return what + " failed: exit code " + std::to_string(result.exit_code) + " after " + secs;
  return what + " succeeded in " + secs;
}

namespace detail {

std::string FirstFailure(const std::vector<HookRun>& runs, size_t from) {
  for (size_t i = from; i < runs.size(); ++i)
    if (!runs[i].ok()) return runs[i].Describe();
  return {};
}

Status StackHooks::EnsureDocker() {
  if (docker_) return Status::Ok();
  MV_ASSIGN_OR_RETURN(docker_, hooks::DockerClient::Connect(opts_.docker_host));
  return Status::Ok();
}

Status StackHooks::Init(const std::string& stack) {
  if (opts_.plan) {
    plan_ = opts_.plan;
    return Status::Ok();
  }
  MV_RETURN_IF_ERROR(EnsureDocker());
  PlanOptions po;
  po.only_stack = stack;
  MV_ASSIGN_OR_RETURN(owned_, DiscoverPlan(*docker_, po));
  plan_ = &owned_;
  return Status::Ok();
}

void StackHooks::Event(StackEvent::Kind kind, const std::string& stack, const std::string& service,
                       const std::string& text) const {
  if (!opts_.on_event) return;
  StackEvent e;
  e.kind = kind;
  e.stack = stack;
  e.service = service;
  e.text = text;
  opts_.on_event(e);
}

HookRun StackHooks::RunOne(const StackPlan& stack, const ServicePlan& svc, const std::string& phase,
                           const std::string& command) {
  HookRun run;
  run.service = svc.name;
  run.phase = phase;
  run.command = command;
  if (svc.containers.empty()) {
    if (svc.placement.rfind("other node", 0) == 0) {
      run.skipped = true;
      run.error = "the service runs on " + svc.placement + ", not on this node";
    } else {
      run.error = "no running container of " + svc.name + " on this node (" +
                  (svc.placement.empty() ? "unknown placement" : svc.placement) + ")";
    }
    return run;
  }
  run.container = svc.containers.front();
  Event(StackEvent::kInfo, stack.name, svc.name,
        "running " + phase + " in container " + run.container.substr(0, 12) + ": " + command);
  Result<hooks::ExecResult> r = Status::Invalid("no executor");
  if (opts_.executor) {
    r = opts_.executor(run.container, svc.name, command);
  } else if (Status st = EnsureDocker(); !st.ok()) {
    r = st;
  } else {
    hooks::ExecOptions eo;
    eo.container_id = run.container;
    eo.command = command;
    eo.service = svc.name;
    eo.timeout = opts_.hook_timeout;
    r = hooks::RunHook(
        *docker_, eo, [&](const std::string& service, hooks::StreamId id, const std::string& line) {
          if (!opts_.on_event) return;
          StackEvent e{StackEvent::kHookOutput, stack.name, service, line, id};
          opts_.on_event(e);
        });
  }
  if (r.ok())
    run.result = *r;
  else
    run.error = r.status().message();
  return run;
}

bool StackHooks::RunPhase(const StackPlan& stack, const std::vector<const ServicePlan*>& services,
                          const std::string& phase, std::string HookSet::*field,
                          std::vector<HookRun>& out) {
  bool ok = true;
  for (const ServicePlan* svc : services) {
    const std::string& command = svc->hooks.*field;
    if (command.empty()) continue;
    out.push_back(RunOne(stack, *svc, phase, command));
    const HookRun& run = out.back();
    ok &= run.ok();
    Event(run.ok() ? StackEvent::kInfo : StackEvent::kWarning, stack.name, svc->name,
          run.Describe());
  }
  return ok;
}

}  // namespace detail
}  // namespace mv::agent
