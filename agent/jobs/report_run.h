// The nightly integrity report as a library call (used by `mailvault report`, and meant for the
// sidecar to run after its nightly backup): gather (verify/report.h) and write the files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/repository.h"
#include "storage/status.h"
#include "verify/report.h"

namespace mv::agent {

struct NightlyReportOptions {
  std::string out;                            // directory for the report files (created)
  std::string formats = "md,html,json,prom";  // any of md, html, json, prom
  int64_t max_age_seconds = 26 * 3600;        // a stack without a successful backup since is stale
  uint32_t rotate_nights = 7;                 // every pack is re-read within this many nights
  int64_t at = 0;                             // evaluate as of this Unix time; 0 = now
  std::string scratch;                        // parent of the scratch restores; "" = default
  std::map<std::string, std::string> live;    // live sources by name; empty = recorded paths
  int64_t prune_reclaimed_bytes = -1;         // what tonight's prune gave back; -1: none ran
  // Restore each group's latest snapshot to scratch and verify it even when the repository is
  // remote (S3), which downloads all of its data. Without it a remote repository's report checks
  // structure and tonight's rotating share of packs only; a local one always verifies.
  bool full_verify = false;
  std::string version;  // mailvault's version, for mailvault_build_info
  // Set by `mailvault agent`: the exit code of the run before the report, as a whole and per
  // stack (0 ok, 1 failed, 3 partial). -1 / empty when the report runs on its own.
  int run_exit_code = -1;
  std::map<std::string, int> stack_exit_codes;
};

// Verifies the latest snapshot of each group, runs tonight's rotating check, gathers statistics.
// Verification failures are in the Report (not a Status); Status only when the repository
// cannot be listed.
Result<verify::Report> GatherReport(storage::Repository& repo, const NightlyReportOptions& opts);

// Writes mailvault-report.{json,md,html} and mailvault.prom, each through a temp file and a
// rename (node_exporter never reads half a file), mode 0644. Appends the paths to `written`.
Status WriteReportFiles(const verify::Report& rep, const NightlyReportOptions& opts,
                        std::vector<std::string>* written);

}  // namespace mv::agent
