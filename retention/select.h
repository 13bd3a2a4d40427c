// Which snapshot a command means: `--stack`, `--host` and `--tag` filters, and `latest` as the
// newest snapshot of one group (one stack on one host), so that in a repository shared by stacks
// or hosts `latest` never picks another stack's snapshot.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "storage/repository.h"

namespace mv::retention {

struct SnapshotFilter {
  std::string stack, host;                                // empty: any
  std::vector<std::pair<std::string, std::string>> tags;  // every one must match
  bool empty() const { return stack.empty() && host.empty() && tags.empty(); }
  bool Matches(const storage::SnapshotMeta& m) const;
  // As given on the command line: "--stack mail --host mx1 --tag env=prod".
  std::string Describe() const;
};

// Resolves `ref`:
// - "latest": the newest readable snapshot matching `filter`. When the matching snapshots belong
//   to several groups, kInvalid listing each group with its newest snapshot and the flag that
//   picks it; none matching is kNotFound naming the filter.
// - an ID or unique prefix: as storage::Repository::ResolveSnapshot, whatever the filter (as
//   restic's --host and --tag apply to "latest" only).
Result<std::string> ResolveSnapshotRef(const storage::Repository& repo, const std::string& ref,
                                       const SnapshotFilter& filter);

}  // namespace mv::retention
