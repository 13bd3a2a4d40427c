#include "agent/sidecar/sidecar.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>

#include "storage/fs.h"

namespace mv::agent {
namespace {

using namespace std::chrono;
namespace fs = storage::fs;

Seconds Now() { return floor<seconds>(system_clock::now()); }

const char* ResultName(RunOutcome o) {
  switch (o) {
    case RunOutcome::kOk:
      return "ok";
    case RunOutcome::kPartial:
      return "partial";
    case RunOutcome::kFailed:
      break;
  }
  return "error";
}

// The health file's content; rewritten atomically so the healthcheck never reads half of it.
class Health {
 public:
  Health(const AgentOptions& o, const AgentLogFn& log) : opts_(o), log_(log) {
    doc_ = {{"pid", static_cast<int>(::getpid())},
            {"state", "starting"},
            {"runs", 0},
            {"failures_in_a_row", 0}};
    if (o.schedule) doc_["schedule"] = o.schedule->expression();
  }
  void SetState(const char* state) { doc_["state"] = state; }
  void SetReady(const Result<std::string>& r, Seconds when) {
    doc_["ready"] = {{"ok", r.ok()},
                     {"checked", FormatUtc(when)},
                     {r.ok() ? "detail" : "problem", r.ok() ? r.value() : r.status().ToString()}};
  }
  void SetNext(std::optional<Seconds> t) {
    if (t)
      doc_["next_run"] = FormatUtc(*t), doc_["next_run_unix"] = t->time_since_epoch().count();
    else
      doc_.erase("next_run"), doc_.erase("next_run_unix");
  }
  void RecordRun(Seconds started, Seconds finished, const RunResult& r) {
    nlohmann::json run = {{"started", FormatUtc(started)},
                          {"finished", FormatUtc(finished)},
                          {"seconds", (finished - started).count()},
                          {"exit_code", r.exit_code},
                          {"result", ResultName(r.outcome)}};
    doc_["last_run"] = run;
    doc_["runs"] = doc_["runs"].get<int>() + 1;
    doc_["failures_in_a_row"] =
        r.outcome != RunOutcome::kFailed ? 0 : doc_["failures_in_a_row"].get<int>() + 1;
    if (!opts_.report_dir.empty()) WriteReport(run, started);
  }
  // Rewrites the file with a fresh heartbeat. A failure is logged, never fatal: backups matter
  // more than their health report.
  void Beat() {
    if (opts_.health_file.empty()) return;
    Seconds now = Now();
    doc_["heartbeat"] = FormatUtc(now);
    doc_["heartbeat_unix"] = now.time_since_epoch().count();
    Status st = fs::WriteFileAtomic(opts_.health_file, doc_.dump(2) + "\n");
    if (!st.ok() && !warned_) log_("cannot write the health file: " + st.ToString());
    warned_ = !st.ok();
  }

 private:
  void WriteReport(const nlohmann::json& run, Seconds started) {
    std::string name = "run-" + FormatUtc(started) + ".json";
    for (char& c : name)
      if (c == ':') c = '-';
    nlohmann::json report = run;
    if (opts_.schedule) report["schedule"] = opts_.schedule->expression();
    Status st = fs::MakeDirs(opts_.report_dir, 0755);
    if (st.ok()) st = fs::WriteFileAtomic(fs::Join(opts_.report_dir, name), report.dump(2) + "\n");
    if (!st.ok()) log_("cannot write the run report: " + st.ToString());
  }

  const AgentOptions& opts_;
  const AgentLogFn& log_;
  nlohmann::json doc_;
  bool warned_ = false;
};

// Waits up to `d` for one of the blocked stop signals; returns it, or 0 on timeout.
int WaitSignal(const sigset_t& set, milliseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>(d.count() % 1000) * 1000000};
  int sig = ::sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

std::optional<Seconds> NextStart(const AgentOptions& o, Seconds after, std::mt19937_64& rng) {
  auto slot = o.schedule->Next(after);
  if (!slot || o.jitter.count() <= 0) return slot;
  std::uniform_int_distribution<long long> dist(0, o.jitter.count());
  return *slot + seconds{dist(rng)};
}

// AgentOptions::readiness, run at start and every check_every while idle. The log says when it
// fails, and when it is ready again; the health file has each verdict.
class Readiness {
 public:
  Readiness(const AgentOptions& o, Health& h, const AgentLogFn& log)
      : opts_(o), health_(h), log_(log) {}
  void Check() {
    if (!opts_.readiness || opts_.once) return;
    last_ = Now();
    Result<std::string> r = opts_.readiness();
    health_.SetReady(r, last_);
    if (!r.ok() && (ok_ || r.status().ToString() != problem_))
      log_("not ready for the next backup: " + r.status().ToString());
    if (r.ok() && !ok_) log_("ready for the next backup: " + r.value());
    ok_ = r.ok();
    problem_ = r.ok() ? "" : r.status().ToString();
  }
  void MaybeCheck() {
    if (Now() - last_ >= opts_.check_every) Check();
  }

 private:
  const AgentOptions& opts_;
  Health& health_;
  const AgentLogFn& log_;
  Seconds last_{};
  bool ok_ = false;
  std::string problem_;
};

// Idles until `due`, beating the heart and checking readiness; returns the stop signal that came
// first, or 0 at `due`.
int IdleUntil(Seconds due, const sigset_t& stop_set, const AgentOptions& opts, Health& health,
              Readiness& ready) {
  Seconds last_beat = Now();
  while (Now() < due) {
    if (int sig = WaitSignal(stop_set, milliseconds{500})) return sig;
    ready.MaybeCheck();
    if (Now() - last_beat >= opts.heartbeat) health.Beat(), last_beat = Now();
  }
  return 0;
}

// Runs one backup in its own thread, so this one can keep beating and take signals. A first stop
// signal sets *stopping and lets the run finish; a second abandons it (the thread is detached,
// the health file says "abandoned"): then nullopt.
std::optional<RunResult> RunInThread(const AgentRunFn& run, const sigset_t& stop_set,
                                     const AgentOptions& opts, Health& health,
                                     const AgentLogFn& log, bool* stopping) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  // Written by the run thread before `done` is set (release), read after it is seen (acquire).
  auto result = std::make_shared<RunResult>();
  std::thread worker([run, done, result] {
    *result = run();
    done->store(true, std::memory_order_release);
  });
  Seconds last_beat = Now();
  while (!done->load(std::memory_order_acquire)) {
    if (int sig = WaitSignal(stop_set, milliseconds{200})) {
      if (*stopping) {
        log(std::string("received ") + strsignal(sig) +
            " again: abandoning the running "
            "backup (nothing of it is committed unless its snapshot was already written)");
        health.SetState("abandoned");
        health.Beat();
        worker.detach();
        return std::nullopt;
      }
      *stopping = true;
      log(std::string("received ") + strsignal(sig) +
          ": finishing the running backup, then "
          "stopping (send it again to abandon the run; the repository stays consistent)");
    }
    if (Now() - last_beat >= opts.heartbeat) health.Beat(), last_beat = Now();
  }
  worker.join();
  return *result;
}

}  // namespace

LoopResult RunAgentLoop(const AgentOptions& opts, const AgentRunFn& run, const AgentLogFn& log) {
  sigset_t stop_set;
  sigemptyset(&stop_set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_set, s);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &stop_set, &old_mask);  // before any thread starts: they inherit it
  // Signals taken by sigtimedwait are consumed, so restoring the caller's mask is safe.
  struct RestoreMask {
    sigset_t* m;
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, m, nullptr); }
  } restore_mask{&old_mask};

  Health health(opts, log);
  std::mt19937_64 rng{std::random_device{}()};
  std::optional<Seconds> due =
      opts.once ? std::optional<Seconds>(Now()) : NextStart(opts, Now(), rng);
  if (!due) {
    log("schedule '" + opts.schedule->expression() + "' never matches a date; nothing to do");
    return {LoopEnd::kNeverMatches, std::nullopt};
  }
  std::optional<RunResult> last;
  bool stopping = false;
  Readiness ready(opts, health, log);
  ready.Check();
  while (!stopping) {
    health.SetState("idle");
    health.SetNext(due);
    health.Beat();
    if (!opts.once) log("next backup at " + FormatUtc(*due));
    // Idle until the start time, beating the heart, or until a stop signal.
    if (int sig = IdleUntil(*due, stop_set, opts, health, ready)) {
      log(std::string("received ") + strsignal(sig) + " while idle: stopping");
      health.SetState("stopped");
      health.Beat();
      return {LoopEnd::kStopped, last};
    }
    health.SetState("running");
    health.Beat();
    Seconds started = Now();
    log("backup run started");
    std::optional<RunResult> finished_run =
        RunInThread(run, stop_set, opts, health, log, &stopping);
    if (!finished_run) return {LoopEnd::kAbandoned, last};
    last = std::move(finished_run);
    Seconds finished = Now();
    log(std::string("backup run finished: ") + ResultName(last->outcome) + " (exit " +
        std::to_string(last->exit_code) + ") in " + std::to_string((finished - started).count()) +
        " s");
    health.RecordRun(started, finished, *last);
    if (opts.once) break;
    due = NextStart(opts, finished, rng);  // slots missed during the run are skipped
    if (!due) break;
  }
  health.SetState("stopped");
  health.SetNext(std::nullopt);
  health.Beat();
  return {opts.once ? LoopEnd::kOnceDone : LoopEnd::kStopped, last};
}

Status HealthVerdict(const nlohmann::json& h, Seconds now, std::chrono::seconds max_silence,
                     std::string* summary) {
  if (!h.is_object() || !h.contains("heartbeat_unix") || !h["heartbeat_unix"].is_number())
    return Status::Corruption("health file has no heartbeat: is it written by `mailvault agent`?");
  Seconds beat{seconds{h["heartbeat_unix"].get<long long>()}};
  std::string state = h.value("state", "?");
  if (state == "stopped" || state == "abandoned")
    return Status::NotFound("the agent has stopped (state " + state + ")");
  if (now - beat > max_silence)
    return Status::Busy("no heartbeat since " + FormatUtc(beat) + " (" +
                        std::to_string((now - beat).count()) + " s): the agent is hung or gone");
  if (h.contains("ready") && h["ready"].is_object() && !h["ready"].value("ok", true))
    return Status::IOError("not ready for the next backup (checked " +
                           h["ready"].value("checked", std::string("?")) +
                           "): " + h["ready"].value("problem", std::string("?")));
  std::string next = h.contains("next_run") ? ", next " + h["next_run"].get<std::string>() : "";
  if (h.contains("ready") && h["ready"].is_object())
    next += "; ready: " + h["ready"].value("detail", std::string("?"));
  if (!h.contains("last_run")) {
    *summary = "healthy: " + state + ", no run yet" + next;
    return Status::Ok();
  }
  const auto& r = h["last_run"];
  std::string result = r.value("result", "error");
  std::string when = r.value("finished", "?");
  if (result != "ok" && result != "partial")
    return Status::IOError("the last backup failed (exit " +
                           std::to_string(r.value("exit_code", -1)) + ", finished " + when + ", " +
                           std::to_string(h.value("failures_in_a_row", 1)) +
                           " failure(s) in a row): see the agent's log");
  *summary = "healthy: " + state + ", last backup " + result + " at " + when + next;
  return Status::Ok();
}

Status CheckHealthFile(const std::string& path, Seconds now, std::chrono::seconds max_silence,
                       std::string* summary) {
  auto text = fs::ReadFile(path);
  if (!text.ok())
    return Status::NotFound(
        "no health file: is `mailvault agent` running with this "
        "--health-file?",
        path);
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption("health file is not JSON", path);
  Status st = HealthVerdict(j, now, max_silence, summary);
  return st.ok() ? st : Status(st.code(), st.message(), path);
}

}  // namespace mv::agent
