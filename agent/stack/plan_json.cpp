// The plan as JSON (`mailvault discover --json`). Field names are part of the CLI's
// machine-readable output: add fields, do not rename them.
#include "agent/stack/discovery.h"

namespace mv::agent {
namespace {

nlohmann::json HooksToJson(const HookSet& h) {
  nlohmann::json j = nlohmann::json::object();
  if (!h.backup_pre.empty()) j["backup_pre"] = h.backup_pre;
  if (!h.backup_post.empty()) j["backup_post"] = h.backup_post;
  if (!h.restore_pre.empty()) j["restore_pre"] = h.restore_pre;
  if (!h.restore_post.empty()) j["restore_post"] = h.restore_post;
  return j;
}

nlohmann::json StackToJson(const StackPlan& st) {
  nlohmann::json services = nlohmann::json::array(), volumes = nlohmann::json::array();
  for (const auto& s : st.services) {
    services.push_back({{"name", s.name},
                        {"short_name", s.short_name},
                        {"enabled", s.enabled},
                        {"hooks", HooksToJson(s.hooks)},
                        {"containers", s.containers},
                        {"placement", s.placement},
                        {"volumes", s.volumes},
                        {"not_backed_up", s.not_backed_up}});
  }
  for (const auto& v : st.volumes) {
    nlohmann::json j = {
        {"name", v.name},          {"docker_name", v.docker_name}, {"external", v.external},
        {"mounts", v.mounts},      {"mountpoint", v.mountpoint},   {"paths", v.paths},
        {"backed_up", v.backed_up}};
    if (!v.reason.empty()) j["reason"] = v.reason;
    volumes.push_back(std::move(j));
  }
  nlohmann::json j = {{"name", st.name},    {"enabled", st.enabled},   {"services", services},
                      {"volumes", volumes}, {"warnings", st.warnings}, {"errors", st.errors}};
  if (!st.version.empty()) j["version"] = st.version;
  return j;
}

}  // namespace

nlohmann::json PlanToJson(const Plan& plan) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const auto& st : plan.stacks) stacks.push_back(StackToJson(st));
  nlohmann::json j = {{"source", plan.source}, {"stacks", stacks}, {"warnings", plan.warnings}};
  if (!plan.node_id.empty()) j["node"] = {{"id", plan.node_id}, {"name", plan.node_name}};
  return j;
}

}  // namespace mv::agent
