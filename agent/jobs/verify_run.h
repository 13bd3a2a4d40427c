// Running one snapshot verification end to end (shared by `verify` and `report`): restore into a
// private scratch directory (agent/restorer/restore.h re-hashes every blob), compare
// (verify/snapshot_verify.h), and remove the scratch directory unless asked to keep it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "storage/repository.h"
#include "storage/status.h"
#include "verify/snapshot_verify.h"

namespace mv::agent {

struct VerifyRunOptions {
  std::string snapshot;        // full ID
  std::string scratch_parent;  // default: $TMPDIR or /var/tmp
  bool keep = false;           // keep the restored tree (its path is returned)
  bool against_snapshot = true, against_live = true;
  // Live sources by snapshot source name. Empty and against_live: the host paths the snapshot
  // recorded, for those that exist as directories here.
  std::map<std::string, std::string> live;
  std::vector<std::string> sqlite_tables;
  int threads = 0;
  // Record the verdict in the repository (storage/verification.h, docs/FORMAT.md §11), where
  // `snapshots` shows it and retention keeps the newest snapshot proven to restore.
  bool record = true;
};

struct VerifyRun {
  verify::VerifyResult result;
  std::string scratch;  // where it was restored (removed unless keep)
  double restore_seconds = 0, compare_seconds = 0;
  std::string record_problem;  // why the verdict could not be recorded; empty when it was
};

Result<VerifyRun> RunVerify(storage::Repository& repo, const VerifyRunOptions& opts);

}  // namespace mv::agent
