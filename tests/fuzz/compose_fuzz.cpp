// libFuzzer target: the compose YAML reader (agent/stack/compose.h): parse, interpolate, merge.
// The input is one compose file; a second, fixed file is merged over it so the merge rules run.
#include <map>

#include "agent/stack/compose.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::agent;
  static const std::map<std::string, std::string> kVars = {{"ROOT", "/srv/mailu"}, {"EMPTY", ""}};
  VarLookup lookup = [](const std::string& name) -> std::optional<std::string> {
    auto it = kVars.find(name);
    if (it == kVars.end()) return std::nullopt;
    return it->second;
  };
  std::vector<std::string> warnings;
  std::vector<ComposeInput> files = {{"fuzz.yml", std::string(mv::fuzz::AsView(data, size))}};
  (void)ComposeServices(files, "mailu", lookup, &warnings);
  files.push_back(
      {"override.yml",
       "services:\n  imap:\n    deploy:\n      labels:\n        - backupbot.backup=true\n"});
  (void)ComposeServices(files, "mailu", lookup, &warnings);
  std::vector<std::string> unset;
  (void)Interpolate(files[0].text, lookup, &unset);
  (void)ParseEnvFile(files[0].text, "fuzz.env");
  return 0;
}
