// libFuzzer target: Engine API JSON -> a plan (agent/stack/discovery_engine.cpp). The input is
// one JSON object with the answers of the discovery reads under "services", "containers", "tasks",
// "volumes" and "info", as in tests/data/discovery/mailu_engine.json. Mountpoints are never
// looked up on disk.
#include <nlohmann/json.hpp>

#include "agent/stack/discovery.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::agent;
  auto j = nlohmann::json::parse(mv::fuzz::AsView(data, size), nullptr, false);
  if (j.is_discarded()) return 0;
  EngineState st;
  if (j.is_object()) {
    for (auto [key, field] : {std::pair{"services", &st.services},
                              {"containers", &st.containers},
                              {"tasks", &st.tasks},
                              {"volumes", &st.volumes},
                              {"info", &st.info}})
      if (j.contains(key)) *field = j[key];
  } else {
    st.services = st.containers = st.tasks = st.volumes = st.info = j;
  }
  PlanOptions opts;
  opts.path_exists = [](const std::string&) { return false; };
  (void)PlanFromEngine(st, opts);
  return 0;
}
