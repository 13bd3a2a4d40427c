// Compose files -> ServiceSpecs -> Plan (compose.h). Merging follows `docker stack deploy`
// with several -c files: maps merge, scalars and most lists are replaced by the later file,
// service volumes merge by target, label and environment lists merge as maps.
#include "agent/stack/compose.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "agent/stack/discovery_labels.h"

namespace mv::agent {
namespace {

// node[key] without yaml-cpp's invalid "zombie" nodes: an undefined Node when absent.
YAML::Node Child(const YAML::Node& node, const std::string& key) {
  if (!node || !node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (auto it = node.begin(); it != node.end(); ++it)
    if (it->first.as<std::string>("") == key) return it->second;
  return YAML::Node(YAML::NodeType::Undefined);
}

Status InterpolateNode(YAML::Node node, const VarLookup& lookup, std::vector<std::string>* unset) {
  if (node.IsScalar()) {
    MV_ASSIGN_OR_RETURN(std::string v, Interpolate(node.Scalar(), lookup, unset));
    if (v != node.Scalar()) node = v;
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      MV_RETURN_IF_ERROR(InterpolateNode(node[i], lookup, unset));
  } else if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      MV_RETURN_IF_ERROR(InterpolateNode(it->second, lookup, unset));
  }
  return Status::Ok();
}

// ["a=b", "c"] -> {a: b, c: ""}; maps are returned as they are.
YAML::Node ListToMap(const YAML::Node& list) {
  if (!list.IsSequence()) return list;
  YAML::Node map(YAML::NodeType::Map);
  for (const auto& item : list) {
    std::string s = item.as<std::string>("");
    size_t eq = s.find('=');
    map[s.substr(0, eq)] = eq == std::string::npos ? std::string() : s.substr(eq + 1);
  }
  return map;
}

void NormalizeService(YAML::Node svc) {
  if (!svc.IsMap()) return;
  for (const char* key : {"labels", "environment"})
    if (YAML::Node n = Child(svc, key); n.IsSequence()) svc[key] = ListToMap(n);
  YAML::Node deploy = Child(svc, "deploy");
  if (YAML::Node n = Child(deploy, "labels"); n.IsSequence()) deploy["labels"] = ListToMap(n);
}

std::string VolumeTarget(const YAML::Node& v) {
  if (v.IsMap()) return Child(v, "target").as<std::string>("");
  std::string s = v.as<std::string>("");
  size_t c1 = s.find(':');
  if (c1 == std::string::npos) return s;
  size_t c2 = s.find(':', c1 + 1);
  return s.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
}

void MergeVolumes(YAML::Node dst, const YAML::Node& src) {
  for (const auto& v : src) {
    bool replaced = false;
    for (size_t i = 0; i < dst.size() && !replaced; ++i)
      if (VolumeTarget(dst[i]) == VolumeTarget(v)) dst[i] = YAML::Clone(v), replaced = true;
    if (!replaced) dst.push_back(YAML::Clone(v));
  }
}

void Merge(YAML::Node dst, const YAML::Node& src, int depth, const std::string& key) {
  for (auto it = src.begin(); it != src.end(); ++it) {
    std::string k = it->first.as<std::string>();
    YAML::Node d = dst[k];
    // depth 2 is a service's own keys (services -> NAME -> key).
    if (depth == 2 && k == "volumes" && d.IsSequence() && it->second.IsSequence())
      MergeVolumes(d, it->second);
    else if (d.IsMap() && it->second.IsMap())
      Merge(d, it->second, depth + 1, k);
    else
      dst[k] = YAML::Clone(it->second);
  }
}

Result<MountSpec> ParseMount(const YAML::Node& v, const YAML::Node& top_volumes,
                             const std::string& stack, const std::string& service) {
  MountSpec m;
  if (v.IsMap()) {
    m.type = Child(v, "type").as<std::string>("volume");
    m.source = Child(v, "source").as<std::string>("");
    m.target = Child(v, "target").as<std::string>("");
  } else {
    std::string s = v.as<std::string>("");
    size_t c = s.find(':');
    m.source = c == std::string::npos ? "" : s.substr(0, c);
    m.target = VolumeTarget(v);
    bool path =
        !m.source.empty() && (m.source[0] == '/' || m.source[0] == '.' || m.source[0] == '~');
    m.type = path ? "bind" : "volume";
  }
  if (m.type != "volume" || m.source.empty()) return m;
  YAML::Node decl = Child(top_volumes, m.source);
  if (!decl.IsDefined())
    return Status::Invalid("service " + service + " mounts volume '" + m.source +
                           "', which is not declared under the top-level `volumes:`");
  YAML::Node ext = Child(decl, "external");
  bool external = ext.IsDefined() && (ext.IsMap() || ext.as<std::string>("") == "true");
  std::string name = Child(decl, "name").as<std::string>("");
  if (external && name.empty()) name = Child(ext, "name").as<std::string>("");
  m.external = external;
  m.source = !name.empty() ? name : external ? m.source : stack + "_" + m.source;
  return m;
}

std::map<std::string, std::string> StringMap(const YAML::Node& n) {
  std::map<std::string, std::string> out;
  if (!n.IsDefined() || !n.IsMap()) return out;
  for (auto it = n.begin(); it != n.end(); ++it)
    out[it->first.as<std::string>()] = it->second.IsNull() ? "" : it->second.as<std::string>("");
  return out;
}

}  // namespace

static Result<std::vector<ServiceSpec>> ComposeServicesOrThrow(
    const std::vector<ComposeInput>& files, const std::string& stack, const VarLookup& lookup,
    std::vector<std::string>* warnings) {
  YAML::Node merged(YAML::NodeType::Map);
  for (const auto& f : files) {
    YAML::Node doc;
    try {
      doc = YAML::Load(f.text);
    } catch (const YAML::Exception& e) {
      return Status::Invalid("not valid YAML: " + std::string(e.what()), f.name);
    }
    if (!doc.IsMap()) return Status::Invalid("a compose file must be a YAML mapping", f.name);
    std::vector<std::string> unset;
    Status st = InterpolateNode(doc, lookup, &unset);
    if (!st.ok()) return Status::Invalid(st.message(), f.name);
    for (const auto& u : unset)
      if (warnings) warnings->push_back(f.name + ": variable " + u + " is not set: using \"\"");
    if (YAML::Node services = Child(doc, "services"); services.IsMap())
      for (auto it = services.begin(); it != services.end(); ++it) NormalizeService(it->second);
    Merge(merged, doc, 0, "");
  }
  std::vector<ServiceSpec> out;
  YAML::Node services = Child(merged, "services");
  if (!services.IsMap()) return out;
  for (auto it = services.begin(); it != services.end(); ++it) {
    ServiceSpec spec;
    spec.stack = stack;
    spec.name = stack + "_" + it->first.as<std::string>();
    // A copy (a Node is a handle): it->second is a member of a temporary the iterator returns,
    // so a reference to it dangles at the end of this statement (ASan: stack-use-after-scope).
    YAML::Node svc = it->second;
    spec.labels = StringMap(Child(Child(svc, "deploy"), "labels"));
    spec.labels["com.docker.stack.namespace"] = stack;
    spec.container_labels = StringMap(Child(svc, "labels"));
    YAML::Node volumes = Child(svc, "volumes");
    if (volumes.IsSequence())
      for (const auto& v : volumes) {
        MV_ASSIGN_OR_RETURN(MountSpec m, ParseMount(v, Child(merged, "volumes"), stack, spec.name));
        spec.mounts.push_back(std::move(m));
      }
    out.push_back(std::move(spec));
  }
  return out;
}

// yaml-cpp throws on shapes a compose file never has (a sequence as a mapping key, say) deep in
// the merge; such a file is invalid, not a crash (found by tests/fuzz/compose_fuzz.cpp).
Result<std::vector<ServiceSpec>> ComposeServices(const std::vector<ComposeInput>& files,
                                                 const std::string& stack, const VarLookup& lookup,
                                                 std::vector<std::string>* warnings) {
  try {
    return ComposeServicesOrThrow(files, stack, lookup, warnings);
  } catch (const YAML::Exception& e) {
    std::string names;
    for (const auto& f : files) names += (names.empty() ? "" : ", ") + f.name;
    return Status::Invalid("not a compose file mailvault can read (" + std::string(e.what()) +
                               "): keys must be plain names",
                           names);
  }
}

Result<Plan> PlanFromCompose(const ComposeOptions& opts, const PlanOptions& plan_opts) {
  if (opts.stack.empty())
    return Status::Invalid(
        "--stack NAME is required with --compose: volume and service names "
        "depend on the stack name given to `docker stack deploy`");
  std::map<std::string, std::string> env_file;
  if (!opts.env_file.empty()) {
    std::ifstream in(opts.env_file);
    if (!in) return Status::NotFound("cannot read the env file", opts.env_file);
    std::stringstream ss;
    ss << in.rdbuf();
    MV_ASSIGN_OR_RETURN(env_file, ParseEnvFile(ss.str(), opts.env_file));
  }
  VarLookup lookup = [&](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    if (auto it = env_file.find(name); it != env_file.end()) return it->second;
    return std::nullopt;
  };
  std::vector<ComposeInput> inputs;
  for (const auto& f : opts.files) {
    std::ifstream in(f);
    if (!in) return Status::NotFound("cannot read the compose file", f);
    std::stringstream ss;
    ss << in.rdbuf();
    inputs.push_back({f, ss.str()});
  }
  std::vector<std::string> warnings;
  MV_ASSIGN_OR_RETURN(auto services, ComposeServices(inputs, opts.stack, lookup, &warnings));
  PlanOptions o = plan_opts;
  o.only_stack = opts.stack;
  Plan plan = BuildPlan(services, nullptr, o);
  plan.source = "compose " + detail::Join(opts.files, ",");
  plan.warnings.insert(plan.warnings.begin(), warnings.begin(), warnings.end());
  return plan;
}

}  // namespace mv::agent
