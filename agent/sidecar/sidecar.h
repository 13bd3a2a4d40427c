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

#include "agent/sidecar/schedule.h"
#include "storage/status.h"

namespace mv::agent {

struct AgentOptions {
  std::optional<CronSchedule> schedule;  // required unless once
  std::chrono::seconds jitter{0};        // a run starts up to this long after its slot
  bool once = false;                     // one run now, then return its result
  std::string health_file;               // rewritten at least every heartbeat; "" = none
  std::string report_dir;                // one run-<time>.json per run; "" = none
  std::chrono::seconds heartbeat{30};
  // What the next run needs (the repository opens and takes writes, the daemon answers, a stack
  // is enabled), checked at start and every `check_every` while idle. Its verdict goes into the
  // health file ("ready"): the Docker healthcheck fails now, not at the night's run. Ok gives a
  // one-line description of what is ready. Unset (and with `once`): not checked.
  std::function<Result<std::string>()> readiness;
  std::chrono::seconds check_every{300};
};

// How one backup run ended. `exit_code` is the code the caller (the CLI) gives the run; the loop
// records it in the health file and run reports as it is, and judges health by `outcome`.
enum class RunOutcome { kOk, kPartial, kFailed };
struct RunResult {
  RunOutcome outcome = RunOutcome::kFailed;
  int exit_code = 0;
};
using AgentRunFn = std::function<RunResult()>;
// Where the loop says what it does ("next run at ...").
using AgentLogFn = std::function<void(const std::string&)>;

// Why the loop returned.
enum class LoopEnd {
  kStopped,       // a stop signal while idle, or after the run it let finish
  kOnceDone,      // `once`: the one run finished; its result is in LoopResult::last
  kNeverMatches,  // the schedule never matches a date: nothing was run
  kAbandoned,     // a second stop signal during a run (see RunAgentLoop)
};
struct LoopResult {
  LoopEnd end = LoopEnd::kStopped;
  std::optional<RunResult> last;  // the last run's result, if any ran
};

// The loop. Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and the run thread it
// starts) and takes them with sigtimedwait, so no signal handler runs. When a second signal
// arrives during a run it returns kAbandoned at once without joining the run thread: the caller
// must end the process immediately and not return through static destructors.
LoopResult RunAgentLoop(const AgentOptions& opts, const AgentRunFn& run, const AgentLogFn& log);

// ---- health (the file the Docker healthcheck reads) ----

// The verdict on a health file's content at `now`: Ok (healthy, with a one-line summary in
// *summary) or an error saying why the agent is unhealthy. Unhealthy when the heartbeat is
// older than `max_silence` (the agent hung or died), when its last readiness check failed (the
// next run would fail), or when the last run failed (its "result" is neither "ok" nor
// "partial"). A partial run is healthy but says so in the summary.
Status HealthVerdict(const nlohmann::json& health, Seconds now, std::chrono::seconds max_silence,
                     std::string* summary);

// Reads `path` and applies HealthVerdict.
Status CheckHealthFile(const std::string& path, Seconds now, std::chrono::seconds max_silence,
                       std::string* summary);

}  // namespace mv::agent
