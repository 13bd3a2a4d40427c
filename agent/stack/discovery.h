// Discovery: backupbot v2 labels -> a Plan of what to back up (README "Backing up the swarm").
//
// Two front ends feed the same rules: the live swarm (Engine API JSON, discovery_engine.cpp)
// and compose files before deploy (compose.h). Both produce ServiceSpecs; BuildPlan applies the
// label rules to them and, for a live swarm, to what runs on this node (NodeState).
// BuildPlan is a pure function (file existence is asked through PlanOptions::path_exists).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "storage/status.h"

namespace mv::hooks {
class DockerClient;
}

namespace mv::agent {

// ---- Input: services as the rules see them -------------------------------------------------

struct MountSpec {
  std::string type;       // "volume", "bind", "tmpfs", ...
  std::string source;     // docker volume name ("mailu_mail") or host path for binds
  std::string target;     // container path ("/mail")
  bool external = false;  // volume not created by the stack: keeps its full name in labels
};

struct ServiceSpec {
  std::string name;                                     // full service name ("mailu_imap")
  std::string stack;                                    // com.docker.stack.namespace ("mailu")
  std::map<std::string, std::string> labels;            // service labels (compose deploy.labels)
  std::map<std::string, std::string> container_labels;  // container labels (compose labels:)
  std::vector<MountSpec> mounts;
};

// What the engine says about this node; absent for compose files.
struct NodeState {
  std::string node_id, node_name;
  std::map<std::string, std::vector<std::string>> containers;  // service -> running containers here
  // container id -> its own labels (to catch backupbot.* written under compose `labels:`)
  std::map<std::string, std::map<std::string, std::string>> container_labels;
  std::map<std::string, std::set<std::string>> task_nodes;  // service -> nodes running it
  std::map<std::string, std::string> mountpoints;           // volume name -> host Mountpoint
};

// ---- Output: the plan ----------------------------------------------------------------------

struct HookSet {
  std::string backup_pre, backup_post, restore_pre, restore_post;  // empty = none
};

struct VolumePlan {
  std::string name;         // label/snapshot name: without "<stack>_"; external volumes in full
  std::string docker_name;  // "mailu_mail"
  bool external = false;
  std::vector<std::string> mounts;  // "imap:/mail" for every service mounting it
  std::string mountpoint;          // host path; empty for compose plans or when absent on this node
  std::vector<std::string> paths;  // selected subtrees, volume-relative; empty = everything
  bool backed_up = false;          // will be copied by a backup of this stack on this node
  std::string reason;              // why not, when !backed_up
};

struct ServicePlan {
  std::string name;        // "mailu_imap"
  std::string short_name;  // "imap"
  bool enabled = false;    // in an enabled stack and not backupbot.backup=false itself
  HookSet hooks;
  std::vector<std::string> containers;  // running task containers on this node
  std::string placement;  // "this node", "other node(s): ...", "no running task", "" (compose)
  std::vector<std::string> volumes;        // VolumePlan names
  std::vector<std::string> not_backed_up;  // bind/tmpfs/anonymous mounts, each with the reason
};

struct StackPlan {
  std::string name;
  bool enabled = false;  // some service has backupbot.backup=true
  std::string version;   // coop-cloud.<stack>.version label, when present
  std::vector<ServicePlan> services;
  std::vector<VolumePlan> volumes;
  std::vector<std::string> warnings;
  std::vector<std::string> errors;  // the stack must not be backed up until these are fixed
  std::vector<const VolumePlan*> BackedUpVolumes() const;
  const ServicePlan* FindService(const std::string& name_or_short) const;
};

struct Plan {
  std::string source;  // "docker unix:///var/run/docker.sock" or "compose a.yml,b.yml"
  std::string node_id, node_name;
  std::vector<StackPlan> stacks;  // sorted by name
  std::vector<std::string> warnings;
  bool HasErrors() const;
};

struct PlanOptions {
  std::string only_stack;  // empty = every stack
  // Asked whether <mountpoint>/<path> exists (live plans only). Default: std::filesystem.
  std::function<bool(const std::string&)> path_exists;
};

// Applies the label rules. `node` is null for compose plans (no placement, no mountpoints).
Plan BuildPlan(const std::vector<ServiceSpec>& services, const NodeState* node,
               const PlanOptions& opts);

// ---- The live swarm --------------------------------------------------------------------------

// The Engine API answers discovery reads: GET /services, GET /containers/json, GET /tasks
// (desired-state running), GET /volumes, GET /info.
struct EngineState {
  nlohmann::json services, containers, tasks, volumes, info;
};
std::vector<ServiceSpec> ServicesFromEngine(const nlohmann::json& services);
NodeState NodeFromEngine(const EngineState& state);
Plan PlanFromEngine(const EngineState& state, const PlanOptions& opts);
Result<EngineState> FetchEngineState(const hooks::DockerClient& docker);
Result<Plan> DiscoverPlan(const hooks::DockerClient& docker, const PlanOptions& opts);

// ---- Helpers the rules use, exposed for tests ----------------------------------------------

// Volume-relative form of a label path: trimmed, leading '/' dropped, "." and empty parts
// removed; InvalidArgument for "..". "" means the whole volume.
Result<std::string> NormalizeVolumePath(const std::string& raw);
// Parses "true"/"false" in any case; nullopt otherwise.
std::optional<bool> ParseBool(const std::string& value);
bool LooksLikeDatabase(const std::string& volume_name, const std::string& target);

nlohmann::json PlanToJson(const Plan& plan);

}  // namespace mv::agent
