// libFuzzer target: the sidecar's cron expressions and durations (agent/sidecar/schedule.h). A
// parsed expression's next run must be a minute it matches.
#include "agent/sidecar/schedule.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::agent;
  std::string_view in = mv::fuzz::AsView(data, size);
  (void)ParseDuration(in);
  auto cron = CronSchedule::Parse(in);
  if (!cron.ok()) return 0;
  Seconds t{std::chrono::seconds(1796116818)};
  auto next = cron->Next(t);
  if (next && !cron->Matches(*next)) mv::fuzz::Fail("Next() returned a minute that does not match");
  return 0;
}
