// The live-swarm front end of discovery: Engine API JSON -> ServiceSpecs + NodeState, and the
// reads that fetch that JSON. The field names are those of Engine API 1.41.
#include <string>

#include "agent/stack/discovery.h"
#include "hooks/docker_client.h"

namespace mv::agent {
namespace {

using Labels = std::map<std::string, std::string>;

Labels LabelsOf(const nlohmann::json& j) {
  Labels out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

const nlohmann::json& At(const nlohmann::json& j, std::initializer_list<const char*> path) {
  static const nlohmann::json kNull;
  const nlohmann::json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object() || !cur->contains(key)) return kNull;
    cur = &(*cur)[key];
  }
  return *cur;
}

// The string at `path`, or "" when any step is missing or not of the expected type. Engine JSON
// is read only through At/Str/LabelsOf, which never throw (json::value() throws on a field of
// another type, and an uncaught exception would end `mailvault discover` mid-way).
std::string Str(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const auto& v = At(j, path);
  return v.is_string() ? v.get<std::string>() : std::string();
}

MountSpec MountFromEngine(const nlohmann::json& m, const std::string& stack) {
  MountSpec out;
  out.type = Str(m, {"Type"});
  if (out.type.empty()) out.type = "volume";
  out.source = Str(m, {"Source"});
  out.target = Str(m, {"Target"});
  if (out.type == "volume" && !out.source.empty()) {
    // `docker stack deploy` labels the volumes it creates with the namespace; a volume
    // without it is external and keeps its full name in labels.
    Labels vl = LabelsOf(At(m, {"VolumeOptions", "Labels"}));
    auto ns = vl.find("com.docker.stack.namespace");
    out.external = ns == vl.end() || ns->second != stack;
  }
  return out;
}

}  // namespace

std::vector<ServiceSpec> ServicesFromEngine(const nlohmann::json& services) {
  std::vector<ServiceSpec> out;
  if (!services.is_array()) return out;
  for (const auto& s : services) {
    ServiceSpec spec;
    spec.name = Str(s, {"Spec", "Name"});
    spec.labels = LabelsOf(At(s, {"Spec", "Labels"}));
    spec.container_labels = LabelsOf(At(s, {"Spec", "TaskTemplate", "ContainerSpec", "Labels"}));
    if (auto it = spec.labels.find("com.docker.stack.namespace"); it != spec.labels.end())
      spec.stack = it->second;
    const auto& mounts = At(s, {"Spec", "TaskTemplate", "ContainerSpec", "Mounts"});
    if (mounts.is_array())
      for (const auto& m : mounts) spec.mounts.push_back(MountFromEngine(m, spec.stack));
    out.push_back(std::move(spec));
  }
  return out;
}

NodeState NodeFromEngine(const EngineState& state) {
  NodeState node;
  node.node_id = Str(state.info, {"Swarm", "NodeID"});
  node.node_name = Str(state.info, {"Name"});
  if (state.containers.is_array()) {
    for (const auto& c : state.containers) {
      Labels labels = LabelsOf(At(c, {"Labels"}));
      auto svc = labels.find("com.docker.swarm.service.name");
      if (svc == labels.end() || Str(c, {"State"}) != "running") continue;
      std::string id = Str(c, {"Id"});
      node.containers[svc->second].push_back(id);
      node.container_labels[id] = labels;
    }
  }
  // task_nodes needs service names for the tasks' ServiceIDs: PlanFromEngine fills it.
  return node;
}

Plan PlanFromEngine(const EngineState& state, const PlanOptions& opts) {
  std::vector<ServiceSpec> specs = ServicesFromEngine(state.services);
  NodeState node = NodeFromEngine(state);
  std::map<std::string, std::string> name_by_id;
  if (state.services.is_array())
    for (const auto& s : state.services) name_by_id[Str(s, {"ID"})] = Str(s, {"Spec", "Name"});
  if (state.tasks.is_array()) {
    for (const auto& t : state.tasks) {
      if (Str(t, {"DesiredState"}) != "running") continue;
      auto it = name_by_id.find(Str(t, {"ServiceID"}));
      if (it != name_by_id.end() && !Str(t, {"NodeID"}).empty())
        node.task_nodes[it->second].insert(Str(t, {"NodeID"}));
    }
  }
  const auto& volumes = At(state.volumes, {"Volumes"});
  if (volumes.is_array())
    for (const auto& v : volumes) node.mountpoints[Str(v, {"Name"})] = Str(v, {"Mountpoint"});
  return BuildPlan(specs, &node, opts);
}

Result<EngineState> FetchEngineState(const hooks::DockerClient& docker) {
  EngineState st;
  MV_ASSIGN_OR_RETURN(st.info, docker.Get("/info"));
  if (Str(st.info, {"Swarm", "LocalNodeState"}) != "active")
    return Status::Invalid("the Docker engine at unix://" + docker.socket_path() +
                           " is not part of a swarm (Swarm.LocalNodeState=" +
                           Str(st.info, {"Swarm", "LocalNodeState"}) +
                           "): mailvault discovers `docker stack deploy` stacks; use "
                           "--compose to check a compose file");
  auto services = docker.Get("/services");
  if (!services.ok())
    return Status(services.status().code(),
                  services.status().message() +
                      " (listing services needs a swarm manager: run mailvault on a manager "
                      "node or through a socket proxy to one)");
  st.services = std::move(*services);
  std::string running = hooks::UrlEncode(R"({"desired-state":["running"]})");
  MV_ASSIGN_OR_RETURN(st.tasks, docker.Get("/tasks?filters=" + running));
  MV_ASSIGN_OR_RETURN(st.containers, docker.Get("/containers/json"));
  MV_ASSIGN_OR_RETURN(st.volumes, docker.Get("/volumes"));
  return st;
}

Result<Plan> DiscoverPlan(const hooks::DockerClient& docker, const PlanOptions& opts) {
  MV_ASSIGN_OR_RETURN(EngineState st, FetchEngineState(docker));
  Plan plan = PlanFromEngine(st, opts);
  plan.source = "docker unix://" + docker.socket_path() + " (API " + docker.api_version() + ")";
  return plan;
}

}  // namespace mv::agent
