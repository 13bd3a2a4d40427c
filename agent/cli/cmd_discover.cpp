// `mailvault discover`: print the backup plan that the backupbot labels of the running swarm
// (or of compose files before deploy) describe, with every warning.
#include <iostream>
#include <memory>

#include "agent/cli/cli.h"
#include "agent/stack/compose.h"
#include "agent/stack/discovery.h"
#include "hooks/docker_client.h"

namespace mv::agent {
namespace {

struct DiscoverArgs {
  std::string stack;
  std::vector<std::string> compose;
  std::string env_file;
  std::string docker_host;
};

std::string Short(const std::string& id) { return id.substr(0, 12); }

void PrintHooks(std::ostream& out, const HookSet& h) {
  const std::pair<const char*, const std::string*> hooks[] = {
      {"backup pre-hook:   ", &h.backup_pre},
      {"backup post-hook:  ", &h.backup_post},
      {"restore pre-hook:  ", &h.restore_pre},
      {"restore post-hook: ", &h.restore_post}};
  for (const auto& [label, cmd] : hooks)
    if (!cmd->empty()) out << "      " << label << *cmd << "\n";
}

void PrintService(std::ostream& out, const ServicePlan& s) {
  out << "    " << s.name
      << (s.enabled ? "" : "  (not backed up: backupbot.backup=false or stack disabled)") << "\n";
  if (!s.placement.empty()) {
    out << "      runs on: " << s.placement;
    for (const auto& c : s.containers)
      out << (c == s.containers.front() ? " (container " : ", ") << Short(c);
    out << (s.containers.empty() ? "" : ")") << "\n";
  }
  PrintHooks(out, s.hooks);
  for (const auto& n : s.not_backed_up) out << "      not backed up: " << n << "\n";
}

void PrintVolume(std::ostream& out, const VolumePlan& v, bool live) {
  out << "    " << v.name << (v.external ? " (external)" : "") << "  [";
  for (size_t i = 0; i < v.mounts.size(); ++i) out << (i ? ", " : "") << v.mounts[i];
  out << "]\n";
  if (live)
    out << "      host path: " << (v.mountpoint.empty() ? "(none on this node)" : v.mountpoint)
        << "\n";
  if (!v.backed_up) {
    out << "      NOT BACKED UP: " << v.reason << "\n";
    return;
  }
  out << "      backed up: ";
  if (v.paths.empty()) out << "everything";
  for (size_t i = 0; i < v.paths.size(); ++i) out << (i ? ", " : "") << v.paths[i];
  out << "\n";
}

void PrintStack(std::ostream& out, const StackPlan& st, bool live) {
  out << "stack " << st.name << ": " << (st.enabled ? "ENABLED" : "not enabled");
  if (!st.version.empty()) out << ", version " << st.version;
  out << "\n  services:\n";
  for (const auto& s : st.services) PrintService(out, s);
  if (!st.volumes.empty()) out << "  volumes:\n";
  for (const auto& v : st.volumes) PrintVolume(out, v, live);
  for (const auto& w : st.warnings) out << "  warning: " << w << "\n";
  for (const auto& e : st.errors) out << "  ERROR: " << e << "\n";
  out << "\n";
}

void PrintPlan(std::ostream& out, const Plan& plan, const std::string& only_stack) {
  out << "source: " << plan.source;
  if (!plan.node_id.empty()) out << ", node " << plan.node_name << " (" << plan.node_id << ")";
  out << "\n\n";
  for (const auto& w : plan.warnings) out << "warning: " << w << "\n";
  if (plan.stacks.empty() && only_stack.empty()) out << "no stacks found\n";
  for (const auto& st : plan.stacks) PrintStack(out, st, !plan.node_id.empty());
  size_t enabled = 0, errors = 0;
  for (const auto& st : plan.stacks) enabled += st.enabled, errors += !st.errors.empty();
  out << plan.stacks.size() << " stack(s), " << enabled << " enabled";
  if (errors) out << ", " << errors << " with errors (these are not backed up until fixed)";
  out << "\n";
}

int RunDiscover(CliContext& ctx, const DiscoverArgs& a) {
  PlanOptions popts;
  popts.only_stack = a.stack;
  Result<Plan> plan = Status::Invalid("unreachable");
  if (!a.compose.empty()) {
    plan = PlanFromCompose({a.compose, a.env_file, a.stack}, popts);
  } else {
    if (!a.env_file.empty())
      return ReportError(ctx, Status::Invalid("--env-file only applies with --compose FILE"));
    auto docker = hooks::DockerClient::Connect(a.docker_host);
    if (!docker.ok()) return ReportError(ctx, docker.status());
    plan = DiscoverPlan(**docker, popts);
  }
  if (!plan.ok()) return ReportError(ctx, plan.status());
  if (ctx.json)
    std::cout << PlanToJson(*plan).dump(2) << std::endl;
  else
    PrintPlan(std::cout, *plan, a.stack);
  return plan->HasErrors() ? kExitError : kExitOk;
}

}  // namespace

void RegisterDiscover(CLI::App& app, CliContext& ctx) {
  auto args = std::make_shared<DiscoverArgs>();
  auto* sub = app.add_subcommand("discover", "Show what the backupbot labels select for backup");
  sub->description(
      "Show what the backupbot labels select for backup.\n\n"
      "Reads the swarm through the Docker Engine API (or compose files before they are\n"
      "deployed) and prints the plan that `mailvault backup` without --source follows: each\n"
      "stack, its services and their running containers on this node, every named volume with\n"
      "its host path and the paths selected in it, the hooks, and every warning.\n\n"
      "Labels (service labels, i.e. compose `deploy.labels`):\n"
      "  backupbot.backup=true|false            enable the whole stack (case-insensitive)\n"
      "  backupbot.backup.volumes.VOL=false     leave volume VOL (no '<stack>_' prefix) out\n"
      "  backupbot.backup.volumes.VOL.path=a,b  only these paths, relative to the volume root\n"
      "  backupbot.backup.pre-hook / post-hook  shell command in the service's container\n"
      "  backupbot.restore.pre-hook / post-hook the same around a restore\n"
      "  backupbot.backup.path=/p,/q            legacy v1: container paths (mapped, warned)\n\n"
      "Warnings include backupbot.* labels set on containers (`labels:`) instead of services\n"
      "(`deploy.labels:`), unknown backupbot.* keys, missing or container-looking paths, bind\n"
      "and tmpfs mounts (never backed up), services running on another node, and database\n"
      "volumes dumped by a pre-hook with no restore post-hook to re-import the dump.\n\n"
      "Examples:\n"
      "  mailvault discover\n"
      "  mailvault discover --stack mailu --json\n"
      "  mailvault discover --compose compose.yml --compose compose.prod.yml \\\n"
      "      --env-file .env --stack mailu\n\n"
      "Exit status: 0 plan printed (warnings allowed), 1 a stack has label errors or the\n"
      "daemon could not be read, 2 usage.");
  sub->add_option("--stack", args->stack, "Only this stack (required with --compose)");
  sub->add_option("-c,--compose", args->compose,
                  "Compose file to check instead of the running swarm; repeat to merge files "
                  "in order like `docker stack deploy -c a.yml -c b.yml`");
  sub->add_option("--env-file", args->env_file,
                  "KEY=VALUE file for ${VAR} interpolation in compose files (the process "
                  "environment wins)");
  sub->add_option("--docker-host", args->docker_host,
                  "Docker daemon socket, unix:///path (default: $DOCKER_HOST, else "
                  "unix:///var/run/docker.sock)");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, args] { ctx.exit_code = RunDiscover(ctx, *args); });
}

}  // namespace mv::agent
