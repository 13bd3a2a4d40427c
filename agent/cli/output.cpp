#include "agent/cli/output.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>

namespace mv::agent {

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string HumanTime(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&tt));
  return buf;
}

std::string HumanAge(int64_t s) {
  if (s < 120) return std::to_string(s) + " seconds";
  if (s < 7200) return std::to_string(s / 60) + " minutes";
  if (s < 172800) return std::to_string(s / 3600) + " hours";
  return std::to_string(s / 86400) + " days";
}

void PrintJson(const nlohmann::json& j) { std::cout << Dump(j) << std::endl; }

ProgressPrinter::ProgressPrinter(const CliContext& ctx)
    : enabled_(!ctx.json && !ctx.quiet && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

ProgressFn ProgressPrinter::fn() {
  if (!enabled_) return {};
  return [this](const Progress& p) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double rate = secs > 0 ? static_cast<double>(p.bytes_done) / secs : 0;
    std::string eta = "-";
    if (rate > 0 && p.bytes_total > p.bytes_done)
      eta = std::to_string(
                static_cast<int>(static_cast<double>(p.bytes_total - p.bytes_done) / rate)) +
            "s";
    std::fprintf(stderr, "\r\033[K%-7s %llu/%llu files  %s/%s  %s/s  ETA %s", p.phase.c_str(),
                 static_cast<unsigned long long>(p.files_done),
                 static_cast<unsigned long long>(p.files_total), HumanBytes(p.bytes_done).c_str(),
                 HumanBytes(p.bytes_total).c_str(), HumanBytes(static_cast<uint64_t>(rate)).c_str(),
                 eta.c_str());
    drawn_ = true;
  };
}

nlohmann::json WithStorage(nlohmann::json j, const storage::BackendStats& io) {
  if (io.requests)
    j["storage"] = {{"requests", io.requests},     {"retries", io.retries},
                    {"bytes_up", io.bytes_up},     {"bytes_down", io.bytes_down},
                    {"cache_hits", io.cache_hits}, {"cache_bytes", io.cache_bytes}};
  return j;
}

void PrintStorageLine(const CliContext& ctx, const storage::BackendStats& io) {
  if (ctx.json || !ctx.verbose || !io.requests) return;
  std::cerr << "storage: " << io.requests << " request(s), " << io.retries << " retried, "
            << HumanBytes(io.bytes_up) << " up, " << HumanBytes(io.bytes_down) << " down; "
            << io.cache_hits << " file(s) (" << HumanBytes(io.cache_bytes) << ") from the cache\n";
}

void ProgressPrinter::Done() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace mv::agent
