#include "agent/cli/lock_wait.h"

#include <iostream>
#include <memory>

#include "agent/sidecar/schedule.h"

namespace mv::agent {

void AddRetryLockOption(CLI::App* sub, std::string* text) {
  sub->add_option("--retry-lock", *text,
                  "When another process holds the repository lock, retry for up to this long "
                  "(90s, 10m, 1h30m) instead of failing at once");
}

Result<storage::LockWait> ParseRetryLock(const std::string& text, const CliContext& ctx) {
  storage::LockWait wait;
  if (text.empty()) return wait;
  auto d = ParseDuration(text);
  if (!d.ok())
    return Status::Invalid("--retry-lock '" + text + "': " + d.status().message() +
                           " (give a duration such as 90s, 10m or 1h30m)");
  wait.timeout_ms = static_cast<int64_t>(d->count()) * 1000;
  if (ctx.quiet) return wait;
  auto last = std::make_shared<std::string>();
  wait.on_held = [last](const Status& held) {
    if (held.message() == *last) return;
    *last = held.message();
    std::string who = held.message();
    if (auto dot = who.find(". Wait for it"); dot != std::string::npos) who.resize(dot);
    std::cerr << "waiting for the lock: " << who << "\n";
  };
  return wait;
}

}  // namespace mv::agent
