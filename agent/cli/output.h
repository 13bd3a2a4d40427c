// Terminal and JSON output shared by the commands: progress on a terminal only, sizes and
// times for people, JSON that survives non-UTF-8 file names.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/archiver/backup.h"
#include "agent/common/json_text.h"
#include "agent/cli/cli.h"

namespace mv::agent {

std::string HumanBytes(uint64_t n);
std::string HumanTime(int64_t unix_seconds);  // "2026-11-23 17:05:00 UTC"
std::string HumanAge(int64_t seconds);        // "3 days", "5 hours"
void PrintJson(const nlohmann::json& j);

// What a repository's backend sent and received, for monitoring retries and transfer volume:
// adds it to `j` as "storage" ({requests, retries, bytes_up, bytes_down, cache_hits,
// cache_bytes}) and returns `j`. A local repository counts nothing and adds nothing.
nlohmann::json WithStorage(nlohmann::json j, const storage::BackendStats& io);
// The same as one stderr line with -v (nothing for a local repository).
void PrintStorageLine(const CliContext& ctx, const storage::BackendStats& io);

// Draws "phase files bytes rate ETA" on stderr when it is a terminal and not --quiet/--json.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(const CliContext& ctx);
  ProgressFn fn();
  void Done();  // clears the line

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  bool drawn_ = false;
};

}  // namespace mv::agent
