// Compose files before deploy: the same label rules as a live swarm (discovery.h), applied to
// what `docker stack deploy -c a.yml -c b.yml NAME` would create.
//
// Variables are interpolated per file (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err},
// ${VAR:+alt}, $VAR, $$), files are merged in order (maps merged key by key, later scalars win,
// service volumes merged by target, label lists turned into maps first), and volumes are named
// "<stack>_<vol>" unless external or given an explicit `name:`.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/stack/discovery.h"
#include "storage/status.h"

namespace mv::agent {

using VarLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Interpolates one value. Unset variables without a default become "" and are added to
// `unset` (docker warns the same way). ${VAR:?msg} on an unset/empty VAR is InvalidArgument.
Result<std::string> Interpolate(const std::string& value, const VarLookup& lookup,
                                std::vector<std::string>* unset = nullptr);

// KEY=VALUE lines; blank lines, '#' comments and a leading `export ` are ignored; one pair of
// surrounding quotes is removed. InvalidArgument names file:line for a line without '='.
Result<std::map<std::string, std::string>> ParseEnvFile(const std::string& text,
                                                        const std::string& path);

struct ComposeInput {
  std::string name;  // file name, for messages
  std::string text;  // YAML
};

// Parses, interpolates and merges the files and returns the services the stack would have.
Result<std::vector<ServiceSpec>> ComposeServices(const std::vector<ComposeInput>& files,
                                                 const std::string& stack, const VarLookup& lookup,
                                                 std::vector<std::string>* warnings);

struct ComposeOptions {
  std::vector<std::string> files;  // -c/--compose, in order
  std::string env_file;            // values here are overridden by the process environment
  std::string stack;               // required: the NAME of `docker stack deploy`
};

// Reads the files and builds the Plan (no node: no placement, no host mountpoints).
Result<Plan> PlanFromCompose(const ComposeOptions& opts, const PlanOptions& plan_opts);

}  // namespace mv::agent
