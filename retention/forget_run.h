// One forget (`mailvault forget`, and the sidecar after a successful night): list the snapshots,
// decide with retention/policy.h, refuse what the rails refuse, and remove the rest under the
// exclusive lock. The library half of agent/cli/cmd_forget.cpp, so the agent runs the same code.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "retention/policy.h"
#include "storage/lock.h"
#include "storage/repository.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::retention {

struct ForgetRequest {
  Policy policy;
  GroupBy group;
  std::vector<std::string> refs;  // snapshot IDs or unique prefixes (instead of a policy)
  std::string stack, host;        // a policy looks only at these snapshots (empty: all)
  bool dry_run = false;           // decide and report; remove nothing, take no lock
  // --keep-deleted-mail: hold the messages only removed snapshots have, for this long after the
  // newest snapshot that had them (retention/deleted_mail.h); 0: hold nothing.
  int64_t keep_deleted_mail_ns = 0;
  storage::LockWait lock_wait;
};

struct ForgetOutcome {
  std::vector<Group> groups;                          // every decision, per group
  std::map<std::string, storage::SnapshotMeta> meta;  // of the snapshots decided on
  std::map<std::string, Proof> proof;
  bool policy_empty = false;          // no rule and no ID: nothing removed
  std::vector<std::string> removed;   // removed (a dry run: would be)
  std::vector<std::string> warnings;  // damaged manifests or records, left alone
  std::string took_over_stale;        // the stale lock taken over, if any
  // --keep-deleted-mail: the messages held by this forget (a dry run: would be), their bytes,
  // and those whose period had already ended (not held).
  uint64_t held_messages = 0, held_bytes = 0, held_expired = 0;
  // A refusal (a whole group, kInvalid) or a removal that failed part way (`removed` lists what
  // went). The decisions are filled either way, for the caller to show.
  Status status;
};

// Errors (Status) for what stops it before any decision: the lock, an unreadable repository, a
// reference that matches no snapshot or several, an unknown time zone.
Result<ForgetOutcome> Forget(storage::Repository& repo, const ForgetRequest& req);

}  // namespace mv::retention
