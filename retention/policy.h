// Which snapshots a retention policy keeps (`mailvault forget`): a pure function of the
// snapshots' facts, the policy and the current time. Reads nothing, writes nothing.
//
// Semantics are restic 0.14's ApplyPolicy, so an operator's restic policy keeps the same set:
//   - the rules are ORed, and one snapshot fills every bucket it falls in;
//   - --keep-last N: the N newest snapshots;
//   - --keep-hourly/daily/weekly/monthly/yearly N: walking from the newest snapshot back, the
//     newest snapshot of each of the first N calendar hours/days/ISO weeks/months/years that
//     HAVE a snapshot (empty ones do not count); buckets are calendar boundaries in the
//     policy's time zone (UTC by default), not relative to now;
//   - --keep-within D: every snapshot younger than D before the newest snapshot (not before
//     now); snapshots dated after `now` are ignored when finding the newest;
//   - --keep-tag K=V: every snapshot with that tag.
// Beyond restic (the safety rails):
//   - an empty policy removes nothing;
//   - the newest snapshot of a group (not counting snapshots dated in the future) is kept;
//   - snapshots dated in the future are kept;
//   - the newest snapshot with proof kVerified is kept while newer ones are unverified or failed;
//   - within one bucket the newest COMPLETE snapshot (no problems) fills it when the bucket has
//     one; restic takes the newest, partial or not;
//   - a decision that would remove every snapshot of a group is refused (RefuseWholeGroups).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "retention/keep_within.h"
#include "storage/status.h"

namespace mv::retention {

enum class Proof { kUnverified, kVerified, kFailed };
const char* ProofName(Proof p);  // "unverified", "verified", "failed"

// What the policy needs to know of one snapshot.
struct SnapshotFacts {
  std::string id;
  int64_t time_ns = 0;  // nanoseconds since the epoch
  std::string host;
  std::map<std::string, std::string> tags;  // incl. "stack"
  std::vector<std::string> sources;         // source names, any order
  bool partial = false;                     // the backup could not read some files
  Proof proof = Proof::kUnverified;         // the latest `verify` result
};

// How snapshots are grouped: each group gets the policy on its own, so one stack's policy never
// removes another's snapshots. `stack` groups by the "stack" tag, and a snapshot without one by
// its sorted source names instead. All false = one group.
struct GroupBy {
  bool host = true, stack = true, sources = false;
};
// "host,stack" (the default), "sources", "host,sources", "none", ...: a comma list of host,
// stack and sources, or "none". Anything else is kInvalid naming the text.
Result<GroupBy> ParseGroupBy(const std::string& text);

struct Policy {
  // The counts; 0 = the rule is off.
  int last = 0, hourly = 0, daily = 0, weekly = 0, monthly = 0, yearly = 0;
  KeepWithin within;
  std::vector<std::pair<std::string, std::string>> tags;  // --keep-tag K=V
  std::string timezone;  // an IANA zone name ("Europe/Berlin"); empty = UTC
  bool empty() const;
};

struct Decision {
  std::string id;
  int64_t time_ns = 0;
  bool keep = false;
  // Why it is kept, in rule order: "last 1", "hourly 2", "daily 3", "weekly 1", "monthly 1",
  // "yearly 1", "within 30d", "tag stack=mail", "newest", "future", "verified" (the count is
  // the bucket's position, 1 = the newest bucket); "policy is empty"; "not named" (explicit
  // forget). Empty when removed.
  std::vector<std::string> reasons;
};

struct Group {
  std::string key;                  // "host=mx1 stack=mail", "host=mx1 sources=data,mail", "all"
  std::vector<Decision> decisions;  // newest first
};

// Applies `policy` to `snapshots` (any order), group by group. `now_ns` decides which
// snapshots are in the future. Fails only for an unknown policy.timezone.
Result<std::vector<Group>> ApplyPolicy(const std::vector<SnapshotFacts>& snapshots,
                                       const Policy& policy, const GroupBy& group_by,
                                       int64_t now_ns);

// Removes exactly the snapshots named in `ids` (full IDs), grouped the same way.
std::vector<Group> ForgetNamed(const std::vector<SnapshotFacts>& snapshots,
                               const std::vector<std::string>& ids, const GroupBy& group_by);

// kInvalid naming the first group of which every snapshot would be removed, and how to
// proceed; OK otherwise.
Status RefuseWholeGroups(const std::vector<Group>& groups);

// The calendar fields of an instant in a time zone ("" = UTC); exposed for the tests.
struct CivilTime {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  int iso_year = 0, iso_week = 0;
  int utc_offset = 0;  // seconds east of UTC
};
// kInvalid naming `zone` when /usr/share/zoneinfo has no such zone.
Result<std::vector<CivilTime>> ToCivil(const std::vector<int64_t>& unix_seconds,
                                       const std::string& zone);

}  // namespace mv::retention
