// The label rules applied to ServiceSpecs (see discovery.h): one StackBuilder per
// stack parses labels, collects volumes, applies selections, then resolves them on this node.
#include "agent/stack/discovery.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "agent/stack/discovery_labels.h"

namespace mv::agent {

using detail::Join;
using detail::ServiceLabels;
using detail::SplitComma;
using detail::StripStack;
using detail::Trim;

namespace {

// What the labels select in one volume.
struct Selection {
  std::string excluded_by;  // non-empty: left out, and why
  bool all = false;         // some rule asked for the whole volume
  bool selected = false;    // some rule named paths
  std::set<std::string> paths;
};

struct StackBuilder {
  StackPlan& st;
  const std::vector<const ServiceSpec*>& specs;
  std::vector<ServiceLabels> labels;
  const NodeState* node;
  const PlanOptions& opts;
  std::map<std::string, Selection> sel;  // by VolumePlan name

  VolumePlan* FindVolume(const std::string& name) {
    for (auto& v : st.volumes)
      if (v.name == name) return &v;
    return nullptr;
  }

  std::string VolumeName(const MountSpec& m) const {
    return m.external ? m.source : StripStack(m.source, st.name);
  }

  void AddMounts(const ServiceSpec& spec, ServicePlan& sp) {
    for (const auto& m : spec.mounts) {
      if (m.type != "volume") {
        sp.not_backed_up.push_back(m.type + " mount " +
                                   (m.source.empty() ? "" : m.source + " -> ") + m.target + ": " +
                                   m.type + " mounts are not backed up");
        continue;
      }
      if (m.source.empty()) {
        sp.not_backed_up.push_back("anonymous volume at " + m.target +
                                   ": not backed up (give it a name in the compose file)");
        continue;
      }
      std::string name = VolumeName(m);
      VolumePlan* v = FindVolume(name);
      if (!v) {
        st.volumes.push_back({});
        v = &st.volumes.back();
        v->name = name;
        v->docker_name = m.source;
        v->external = m.external;
      }
      v->mounts.push_back(sp.short_name + ":" + m.target);
      if (std::find(sp.volumes.begin(), sp.volumes.end(), name) == sp.volumes.end())
        sp.volumes.push_back(name);
    }
  }

  void Place(ServicePlan& sp) {
    if (!node) return;
    if (auto it = node->containers.find(sp.name); it != node->containers.end())
      sp.containers = it->second;
    std::set<std::string> others;
    if (auto it = node->task_nodes.find(sp.name); it != node->task_nodes.end())
      for (const auto& n : it->second)
        if (n != node->node_id) others.insert(n);
    if (!sp.containers.empty()) {
      sp.placement = "this node";
    } else if (!others.empty()) {
      sp.placement = "other node(s): " + Join({others.begin(), others.end()}, ", ");
      if (sp.enabled)
        st.warnings.push_back("service " + sp.name + " runs on " + sp.placement +
                              ", not on this node: its volumes and hooks are NOT backed up "
                              "here; run mailvault on that node as well");
    } else {
      sp.placement = "no running task";
      if (sp.enabled)
        st.warnings.push_back("service " + sp.name +
                              " has no running task: its hooks cannot "
                              "run (a backup pre-hook then fails the stack's backup)");
    }
  }

  void ApplyVolumeLabels(const ServicePlan& sp, const ServiceLabels& l) {
    for (const auto& [vol, vl] : l.volumes) {
      std::string key = "backupbot.backup.volumes." + vol;
      if (!FindVolume(vol)) {
        std::vector<std::string> names;
        for (const auto& v : st.volumes) names.push_back(v.name);
        st.warnings.push_back("service " + sp.name + ": label " + key +
                              " names a volume no service of stack " + st.name +
                              " mounts (its volumes: " + Join(names, ", ") +
                              "; names are without the '" + st.name + "_' prefix)");
        continue;
      }
      Selection& s = sel[vol];
      if (vl.include) {
        auto b = ParseBool(*vl.include);
        if (b == false)
          s.excluded_by = key + "=false (service " + sp.name + ")";
        else if (!b)
          st.warnings.push_back("service " + sp.name + ": " + key + "='" + *vl.include +
                                "': only 'false' excludes a volume; it is backed up");
      }
      if (vl.paths) AddPaths(sp, key + ".path", vol, *vl.paths, s);
    }
  }

  void AddPaths(const ServicePlan& sp, const std::string& key, const std::string& vol,
                const std::string& value, Selection& s) {
    s.selected = true;
    auto parts = SplitComma(value);
    if (parts.empty()) {
      st.warnings.push_back("service " + sp.name + ": " + key + " is empty: the whole volume " +
                            vol + " is backed up");
      s.all = true;
    }
    for (const auto& p : parts) {
      auto norm = NormalizeVolumePath(p);
      if (!norm.ok()) {
        st.errors.push_back("service " + sp.name + ": " + key + ": " + norm.status().message());
      } else if (norm->empty()) {
        s.all = true;
      } else {
        s.paths.insert(*norm);
      }
    }
  }

  const MountSpec* MountAt(const ServiceSpec& spec, const std::string& path) const {
    const MountSpec* best = nullptr;
    for (const auto& m : spec.mounts) {
      std::string t = m.target;
      while (t.size() > 1 && t.back() == '/') t.pop_back();
      bool inside = path == t || path.rfind(t == "/" ? t : t + "/", 0) == 0;
      if (inside && (!best || t.size() > best->target.size())) best = &m;
    }
    return best;
  }

  void ApplyLegacyPaths(const ServiceSpec& spec, const ServicePlan& sp, const ServiceLabels& l);
  void ResolveVolumes();
  void CheckPaths(const VolumePlan& v);
  void CheckDatabaseHooks();
  void Build();
};

void StackBuilder::ApplyLegacyPaths(const ServiceSpec& spec, const ServicePlan& sp,
                                    const ServiceLabels& l) {
  std::set<std::string> named;
  std::map<std::string, std::vector<std::string>> v2;  // volume -> relative paths ("" = all)
  for (const auto& raw : SplitComma(*l.legacy_paths)) {
    std::string p = Trim(raw);
    const MountSpec* m = MountAt(spec, p);
    if (!m) {
      st.warnings.push_back("service " + sp.name + ": legacy backupbot.backup.path '" + p +
                            "' is not inside any volume mounted by the service: nothing is "
                            "backed up for it");
      continue;
    }
    if (m->type != "volume" || m->source.empty()) {
      st.warnings.push_back("service " + sp.name + ": legacy backupbot.backup.path '" + p +
                            "' is on a " + m->type + " mount (" + m->target +
                            "): not backed up, only named volumes are");
      continue;
    }
    std::string vol = VolumeName(*m);
    std::string rel = p.substr(std::min(p.size(), m->target.size()));
    Selection& s = sel[vol];
    named.insert(vol);
    std::string key = "backupbot.backup.path";
    AddPaths(sp, key, vol, rel.empty() ? "/" : rel, s);
    auto norm = NormalizeVolumePath(rel);
    v2[vol].push_back(norm.ok() ? *norm : rel);
  }
  std::vector<std::string> equivalent;
  for (const auto& [vol, rels] : v2) {
    bool all = std::find(rels.begin(), rels.end(), "") != rels.end();
    if (!all) equivalent.push_back("backupbot.backup.volumes." + vol + ".path=" + Join(rels, ","));
  }
  for (const auto& vol : sp.volumes) {
    if (named.count(vol)) continue;
    Selection& s = sel[vol];
    if (s.excluded_by.empty() && !s.selected)
      s.excluded_by = "not named by legacy backupbot.backup.path of service " + sp.name;
    equivalent.push_back("backupbot.backup.volumes." + vol + "=false");
  }
  st.warnings.push_back(
      "service " + sp.name + ": backupbot.backup.path='" + *l.legacy_paths +
      "' is the legacy v1 syntax (container paths); v2 equivalent: " +
      (equivalent.empty() ? std::string("no label (whole volumes)") : Join(equivalent, " ")));
}

void StackBuilder::ResolveVolumes() {
  for (auto& v : st.volumes) {
    Selection& s = sel[v.name];
    if (!s.all) v.paths.assign(s.paths.begin(), s.paths.end());
    bool by_enabled = false, enabled_here = false, enabled_anywhere = false;
    for (const auto& sp : st.services) {
      if (!sp.enabled ||
          std::find(sp.volumes.begin(), sp.volumes.end(), v.name) == sp.volumes.end())
        continue;
      by_enabled = true;
      if (!sp.containers.empty()) enabled_here = true;
      if (sp.placement != "no running task") enabled_anywhere = true;
    }
    if (node) {
      if (auto it = node->mountpoints.find(v.docker_name); it != node->mountpoints.end())
        v.mountpoint = it->second;
    }
    if (!st.enabled)
      v.reason = "stack not enabled (no service has backupbot.backup=true)";
    else if (!by_enabled)
      v.reason = "only mounted by services with backupbot.backup=false";
    else if (!s.excluded_by.empty())
      v.reason = "excluded by " + s.excluded_by;
    else if (node && !enabled_here && enabled_anywhere)
      v.reason = "its services run on other nodes: not backed up here";
    else if (node && v.mountpoint.empty())
      v.reason = "volume " + v.docker_name + " does not exist on this node";
    v.backed_up = v.reason.empty();
    if (v.backed_up) CheckPaths(v);
  }
}

void StackBuilder::CheckPaths(const VolumePlan& v) {
  for (const auto& p : v.paths) {
    bool exists = true;
    if (node && !v.mountpoint.empty()) exists = opts.path_exists(v.mountpoint + "/" + p);
    std::string container_hint;
    for (const auto& mount : v.mounts) {
      std::string target = mount.substr(mount.find(':') + 1);
      auto t = NormalizeVolumePath(target);
      if (!t.ok() || t->empty()) continue;
      if (p == *t || p.rfind(*t + "/", 0) == 0) {
        std::string rel =
            p == *t ? "(the whole volume: drop the label)" : "'" + p.substr(t->size() + 1) + "'";
        container_hint = "it looks like a container path (" + v.name + " is mounted at " + target +
                         "); paths are relative to the volume root: write " + rel;
      }
    }
    std::string where = "volume " + v.name + ": selected path '" + p + "'";
    if (!container_hint.empty() && !exists)
      st.warnings.push_back(where + " does not exist; " + container_hint);
    else if (!container_hint.empty() && !node)
      st.warnings.push_back(where + ": " + container_hint);
    else if (!exists)
      st.warnings.push_back(where + " does not exist (" + v.mountpoint + "/" + p +
                            "): nothing is backed up from it");
  }
}

void StackBuilder::CheckDatabaseHooks() {
  for (const auto& sp : st.services) {
    if (!sp.enabled || sp.hooks.backup_pre.empty() || !sp.hooks.restore_post.empty()) continue;
    for (const auto& v : st.volumes) {
      if (std::find(sp.volumes.begin(), sp.volumes.end(), v.name) == sp.volumes.end()) continue;
      if (!v.backed_up) continue;
      if (!LooksLikeDatabase(v.name, Join(v.mounts, " "))) continue;
      st.warnings.push_back("service " + sp.name +
                            " has a backup pre-hook and the "
                            "database-looking volume " +
                            v.name +
                            " but no backupbot.restore.post-hook: the dump it writes would "
                            "never be re-imported by a restore");
      break;
    }
  }
}

void StackBuilder::Build() {
  for (const auto* spec : specs) {
    labels.push_back(detail::ParseServiceLabels(*spec, st.name, st));
    detail::CheckMisplacedLabels(*spec, node, st);
    if (st.version.empty()) st.version = labels.back().version;
    if (labels.back().backup == true) st.enabled = true;
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    ServicePlan sp;
    sp.name = specs[i]->name;
    sp.short_name = StripStack(sp.name, st.name);
    sp.enabled = st.enabled && labels[i].backup != false;
    sp.hooks = labels[i].hooks;
    AddMounts(*specs[i], sp);
    Place(sp);
    st.services.push_back(std::move(sp));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    ApplyVolumeLabels(st.services[i], labels[i]);
    if (labels[i].legacy_paths) ApplyLegacyPaths(*specs[i], st.services[i], labels[i]);
  }
  ResolveVolumes();
  CheckDatabaseHooks();
  if (st.enabled && st.BackedUpVolumes().empty())
    st.warnings.push_back("stack " + st.name +
                          " is enabled but none of its volumes is backed "
                          "up on this node");
}

}  // namespace

Plan BuildPlan(const std::vector<ServiceSpec>& services, const NodeState* node,
               const PlanOptions& opts) {
  PlanOptions o = opts;
  if (!o.path_exists)
    o.path_exists = [](const std::string& p) {
      std::error_code ec;
      return std::filesystem::exists(p, ec);
    };
  std::map<std::string, std::vector<const ServiceSpec*>> by_stack;
  for (const auto& s : services) {
    std::string stack = s.stack.empty() ? s.name : s.stack;
    if (!o.only_stack.empty() && stack != o.only_stack) continue;
    by_stack[stack].push_back(&s);
  }
  Plan plan;
  if (node) plan.node_id = node->node_id, plan.node_name = node->node_name;
  for (auto& [name, specs] : by_stack) {
    std::sort(specs.begin(), specs.end(),
              [](const ServiceSpec* a, const ServiceSpec* b) { return a->name < b->name; });
    StackPlan st;
    st.name = name;
    StackBuilder b{st, specs, {}, node, o, {}};
    b.Build();
    std::sort(st.volumes.begin(), st.volumes.end(),
              [](const VolumePlan& a, const VolumePlan& b) { return a.name < b.name; });
    plan.stacks.push_back(std::move(st));
  }
  if (!o.only_stack.empty() && plan.stacks.empty())
    plan.warnings.push_back("no stack named '" + o.only_stack + "' was found");
  return plan;
}

}  // namespace mv::agent
