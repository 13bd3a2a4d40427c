// Internal to stack_ops: the plan and hook runner shared by stack backup and restore.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/stack/stack_ops.h"
#include "hooks/docker_client.h"

namespace mv::agent::detail {

class StackHooks {
 public:
  explicit StackHooks(const StackOpsCommon& opts) : opts_(opts) {}

  // Uses opts.plan, or connects to the daemon and discovers (only `stack` when non-empty).
  Status Init(const std::string& stack);
  const Plan& plan() const { return *plan_; }

  void Event(StackEvent::Kind kind, const std::string& stack, const std::string& service,
             const std::string& text) const;

  // Runs the hook `field` of every service in `services` that has one, in order, appending to
  // `out`. Returns false when one failed (the others still run).
  bool RunPhase(const StackPlan& stack, const std::vector<const ServicePlan*>& services,
                const std::string& phase, std::string HookSet::*field, std::vector<HookRun>& out);

 private:
  HookRun RunOne(const StackPlan& stack, const ServicePlan& svc, const std::string& phase,
                 const std::string& command);
  Status EnsureDocker();

  const StackOpsCommon& opts_;
  std::unique_ptr<hooks::DockerClient> docker_;
  Plan owned_;
  const Plan* plan_ = nullptr;
};

// First failing hook's description, or "".
std::string FirstFailure(const std::vector<HookRun>& runs, size_t from = 0);

}  // namespace mv::agent::detail
