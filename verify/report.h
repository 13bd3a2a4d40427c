// The nightly integrity report: a value type gathered by the agent (verify
// runs, a rotating check, repository statistics) and pure renderers for its four outputs. The
// renderers return text; writing files is the caller's job.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/snapshot.h"
#include "verify/check.h"
#include "verify/snapshot_verify.h"

namespace mv::verify {

// The group a snapshot belongs to: its "stack" tag, else "sources:<sorted source names>".
std::string GroupOf(const storage::SnapshotMeta& m);

// Night number for pack rotation: days since the epoch (UTC). Pack bucket (night mod N) + 1 is
// read on that night, so every pack is re-read within N nights (verify/check.h SubsetBucket).
uint32_t RotationBucket(int64_t now, uint32_t nights);

struct HistoryPoint {
  int64_t time = 0;
  uint64_t messages = 0;          // census total of that snapshot
  uint64_t repository_bytes = 0;  // cumulative packed bytes up to and including it
};

struct GroupReport {
  std::string name;               // stack or source group
  std::string snapshot;           // latest snapshot ID
  int64_t last_time = 0;          // its start time
  int64_t last_success_time = 0;  // latest snapshot without unreadable files
  int64_t age_seconds = 0;
  bool stale = false;     // no successful backup within max_age
  bool verified = false;  // verify ran
  // Why verify did not run tonight (a remote repository without --full-verify); empty otherwise.
  std::string verify_skipped;
  bool verify_ok = false;
  std::string verify_error;                // verify could not run (Status text)
  std::vector<std::string> verify_errors;  // VerifyResult::Errors()
  uint64_t lost_messages = 0, messages = 0, snapshots = 0;
  int64_t oldest_time = 0;  // the oldest restorable point: the group's oldest snapshot
  // The newest snapshot whose latest verification record (docs/FORMAT.md §11) says ok, and its
  // start time; empty and 0 when none is proven. Retention never removes it while newer ones
  // are unproven.
  std::string last_verified_snapshot;
  int64_t last_verified_time = 0;
  double backup_seconds = 0;    // how long the latest snapshot's backup took (its stats)
  uint64_t added_bytes = 0;     // packed bytes the latest snapshot added to the repository
  int last_run_exit_code = -1;  // the agent's run that preceded this report; -1: not known
  std::map<std::string, uint64_t> mailbox_messages;  // from the latest census
  std::map<std::string, std::string> hooks;          // "hook.*" tags of the latest snapshot
  std::vector<HistoryPoint> history;                 // oldest first
  nlohmann::json verify_json;                        // ToJson(VerifyResult), for the JSON output
};

struct Report {
  int64_t generated = 0;
  std::string version;     // of the mailvault that wrote the report (mailvault_build_info)
  int run_exit_code = -1;  // the agent's whole run before this report; -1: not run by the agent
  std::string repository;
  int64_t max_age_seconds = 0;
  uint32_t rotate_nights = 0, rotation_bucket = 0;
  uint64_t repository_bytes = 0;  // everything under the repository directory
  uint64_t downloaded_bytes = 0;  // what this report read from a remote repository (S3)
  uint64_t pack_bytes = 0;
  uint64_t logical_bytes = 0;     // sum of file bytes over all snapshots
  double dedup_ratio = 0;         // logical_bytes / pack_bytes
  uint64_t growth_bytes_24h = 0;  // packed bytes added by snapshots of the last 24 h
  uint64_t snapshots = 0;
  int64_t prune_reclaimed_bytes = -1;  // given back by the prune before this report; -1: none
  // Deleted mail held by `forget --keep-deleted-mail` (docs/FORMAT.md §12), not yet expired.
  uint64_t held_messages = 0, held_bytes = 0;
  CheckResult check;  // the rotating check
  std::string check_error;
  std::vector<GroupReport> groups;
  bool damage() const;  // a verify failed or the check found damage
  bool stale() const;
  // The code `mailvault report` exits with, written into the JSON report. Chosen by the CLI
  // (agent/cli/cli.h ReportExitCode) from damage() and stale(), which the renderers read.
  int exit_code = 0;
};

nlohmann::json RenderJson(const Report& r);
std::string RenderMarkdown(const Report& r);
std::string RenderHtml(const Report& r);        // self-contained: inline CSS and SVG, no scripts
std::string RenderPrometheus(const Report& r);  // node_exporter textfile format

}  // namespace mv::verify
