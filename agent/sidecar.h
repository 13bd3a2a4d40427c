// The sidecar's scheduler loop and its health file (`mailvault agent`).
//
// One run at a time: a run starts at the next cron time plus a random jitter, and slots missed
// while a run was going are skipped, not queued. SIGTERM/SIGINT/SIGHUP while idle stop the loop
// at once; during a run they let it finish (a second signal abandons it, which is safe: a
// snapshot exists only once its manifest is renamed into place, docs/FORMAT.md §8).
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agent/schedule.h"
#include "storage/status.h"

namespace mv::agent {

struct AgentOptions {
  std::optional<CronSchedule> schedule;     // required unless once
  std::chrono::seconds jitter{0};           // a run starts up to this long after its slot
  bool once = false;                        // one run now, then return its exit code
  std::string health_file;                  // rewritten at least every heartbeat; "" = none
  std::string report_dir;                   // one run-<time>.json per run; "" = none
  std::chrono::seconds heartbeat{30};
};

// One backup run; returns its exit code (cli.h ExitCode: 0 ok, 1 error, 3 partial).
using AgentRunFn = std::function<int()>;
// Where the loop says what it does ("next run at ...").
using AgentLogFn = std::function<void(const std::string&)>;

// The loop. Returns the exit code for the process: the run's for --once, else 0 after a clean
// stop. Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and the run thread it starts)
// and takes them with sigtimedwait, so no signal handler runs. When a second signal arrives
// during a run, it sets *abandoned and returns at once without joining the run thread: the
// caller must end the process immediately (std::_Exit) and not return through static destructors.
int RunAgentLoop(const AgentOptions& opts, const AgentRunFn& run, const AgentLogFn& log,
                 bool* abandoned);

// ---- health (the file the Docker healthcheck reads) ----

// The verdict on a health file's content at `now`: Ok (healthy, with a one-line summary in
// *summary) or an error saying why the agent is unhealthy. Unhealthy when the heartbeat is
// older than `max_silence` (the agent hung or died) or the last run failed (exit code 1).
// A partial run (3) is healthy but says so in the summary.
Status HealthVerdict(const nlohmann::json& health, Seconds now, std::chrono::seconds max_silence,
                     std::string* summary);

// Reads `path` and applies HealthVerdict.
Status CheckHealthFile(const std::string& path, Seconds now, std::chrono::seconds max_silence,
                       std::string* summary);

}  // namespace mv::agent
