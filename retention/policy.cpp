#include "retention/policy.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace mv::retention {
namespace {

constexpr int64_t kNanos = 1000000000LL;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Days from 1970-01-01 to the proleptic Gregorian y-m-d; m and d may be out of range and are
// normalized the way Go's time.Date does (months carry into years, then days into months).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y += FloorDiv(m - 1, 12);
  m = m - 1 - FloorDiv(m - 1, 12) * 12 + 1;
  int64_t day_offset = d - 1;  // from the first of the month
  int64_t yy = y - (m <= 2);
  const int64_t era = FloorDiv(yy, 400);
  const int64_t yoe = yy - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468 + day_offset;
}

void CivilFromDays(int64_t z, int* y, int* m, int* d) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2));
}

// Fills the ISO week (Monday-Sunday; week 1 holds the year's first Thursday) of `days`.
void IsoWeek(int64_t days, int* iso_year, int* iso_week) {
  int64_t monday0 = FloorDiv(days + 3, 7) * 7 - 3;  // 1970-01-01 was a Thursday
  int64_t thursday = monday0 + 3;
  int y, m, d;
  CivilFromDays(thursday, &y, &m, &d);
  *iso_year = y;
  *iso_week = static_cast<int>((thursday - DaysFromCivil(y, 1, 1)) / 7 + 1);
}

// The local calendar fields of an instant `local_seconds` (UTC seconds + the zone's offset).
CivilTime FromLocalSeconds(int64_t local_seconds, int offset) {
  CivilTime c;
  int64_t days = FloorDiv(local_seconds, 86400);
  int64_t sod = local_seconds - days * 86400;
  CivilFromDays(days, &c.year, &c.month, &c.day);
  c.hour = static_cast<int>(sod / 3600);
  c.minute = static_cast<int>(sod / 60 % 60);
  c.second = static_cast<int>(sod % 60);
  IsoWeek(days, &c.iso_year, &c.iso_week);
  c.utc_offset = offset;
  return c;
}

// A zone name is a relative path under /usr/share/zoneinfo to a TZif file (never "..": the name
// comes from the command line).
Status CheckZone(const std::string& zone) {
  const std::string accepted =
      " (use an IANA zone name from /usr/share/zoneinfo, e.g. Europe/Berlin or UTC)";
  if (zone.front() == '/' || zone.find("..") != std::string::npos ||
      zone.find(',') != std::string::npos)
    return Status::Invalid("--timezone '" + zone + "': not a zone name" + accepted);
  std::string path = "/usr/share/zoneinfo/" + zone;
  struct stat st {};
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !in.read(magic, 4) ||
      std::string_view(magic, 4) != "TZif")
    return Status::Invalid("--timezone '" + zone + "': unknown time zone" + accepted);
  return Status::Ok();
}

// localtime_r under TZ=zone. The C library keeps one process-wide zone: the mutex serializes our
// own switches (TZ is restored before it is released); code elsewhere in the process that reads
// local time meanwhile may see the zone, which is why mailvault's libraries use UTC elsewhere.
std::mutex tz_mu;

std::vector<CivilTime> LocalCivil(const std::vector<int64_t>& secs, const std::string& zone) {
  std::lock_guard<std::mutex> lock(tz_mu);
  const char* old = std::getenv("TZ");
  std::string saved = old ? old : "";
  setenv("TZ", (":" + zone).c_str(), 1);
  tzset();
  std::vector<CivilTime> out;
  out.reserve(secs.size());
  for (int64_t s : secs) {
    time_t t = static_cast<time_t>(s);
    struct tm tm {};
    localtime_r(&t, &tm);
    out.push_back(FromLocalSeconds(s + tm.tm_gmtoff, static_cast<int>(tm.tm_gmtoff)));
  }
  if (old)
    setenv("TZ", saved.c_str(), 1);
  else
    unsetenv("TZ");
  tzset();
  return out;
}

struct Sorted {
  const SnapshotFacts* s;
  CivilTime civil;
};

// restic's bucket functions: ymdh, ymd, ISO year-week, ym, y.
int64_t BucketOf(int rule, const CivilTime& c) {
  switch (rule) {
    case 1:
      return c.year * 1000000LL + c.month * 10000 + c.day * 100 + c.hour;
    case 2:
      return c.year * 10000LL + c.month * 100 + c.day;
    case 3:
      return c.iso_year * 100LL + c.iso_week;
    case 4:
      return c.year * 100LL + c.month;
    default:
      return c.year;
  }
}

// Keeps, for each of the first `count` runs of equal bucket values (newest first), its newest
// complete snapshot, else its newest. Rule 0 (last) makes every snapshot its own run.
void FillBuckets(int rule, int count, const std::vector<Sorted>& list, std::vector<Decision>& out) {
  static const char* kNames[] = {"last", "hourly", "daily", "weekly", "monthly", "yearly"};
  int filled = 0;
  for (size_t i = 0; i < list.size() && filled < count;) {
    size_t end = i + 1;
    if (rule != 0)
      while (end < list.size() && BucketOf(rule, list[end].civil) == BucketOf(rule, list[i].civil))
        end++;
    size_t pick = i;
    for (size_t j = i; j < end; j++)
      if (!list[j].s->partial) {
        pick = j;
        break;
      }
    filled++;
    out[pick].keep = true;
    out[pick].reasons.push_back(std::string(kNames[rule]) + " " + std::to_string(filled));
    i = end;
  }
}

// restic: latest.AddDate(-y, -m, -d).Add(-h hours), in the zone of the snapshot times.
int64_t WithinThresholdNs(int64_t latest_ns, const CivilTime& c, const KeepWithin& w) {
  int64_t nanos = latest_ns - FloorDiv(latest_ns, kNanos) * kNanos;
  int64_t local = DaysFromCivil(c.year - w.years, c.month - w.months, c.day - w.days) * 86400 +
                  c.hour * 3600 + c.minute * 60 + c.second;
  return (local - c.utc_offset - w.hours * 3600LL) * kNanos + nanos;
}

std::string GroupKey(const SnapshotFacts& s, const GroupBy& g) {
  std::string key;
  auto add = [&](const std::string& part) { key += (key.empty() ? "" : " ") + part; };
  if (g.host) add("host=" + s.host);
  auto stack = s.tags.find("stack");
  bool by_sources = g.sources || (g.stack && stack == s.tags.end());
  if (g.stack && stack != s.tags.end()) add("stack=" + stack->second);
  if (by_sources) {
    std::vector<std::string> names = s.sources;
    std::sort(names.begin(), names.end());
    std::string joined;
    for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
    add("sources=" + joined);
  }
  return key.empty() ? "all" : key;
}

// Snapshots per group key, each group newest first (ties by ID, so the order is total).
std::map<std::string, std::vector<const SnapshotFacts*>> Grouped(
    const std::vector<SnapshotFacts>& snapshots, const GroupBy& group_by) {
  std::map<std::string, std::vector<const SnapshotFacts*>> groups;
  for (const auto& s : snapshots) groups[GroupKey(s, group_by)].push_back(&s);
  for (auto& [key, list] : groups)
    std::sort(list.begin(), list.end(), [](const SnapshotFacts* a, const SnapshotFacts* b) {
      return a->time_ns != b->time_ns ? a->time_ns > b->time_ns : a->id > b->id;
    });
  return groups;
}

std::vector<int64_t> Seconds(const std::vector<const SnapshotFacts*>& list) {
  std::vector<int64_t> secs;
  for (const auto* s : list) secs.push_back(FloorDiv(s->time_ns, kNanos));
  return secs;
}

// The rails beyond restic (retention/policy.h): future, newest, verified.
void ApplyRails(const std::vector<Sorted>& list, int64_t now_ns, std::vector<Decision>& out) {
  bool newest_seen = false;
  for (size_t i = 0; i < list.size(); i++) {
    if (list[i].s->time_ns >= now_ns) {
      out[i].keep = true;
      out[i].reasons.push_back("future");
    } else if (!newest_seen) {
      newest_seen = true;
      out[i].keep = true;
      out[i].reasons.push_back("newest");
    }
  }
  for (size_t i = 0; i < list.size(); i++)
    if (list[i].s->proof == Proof::kVerified) {
      if (i > 0) {
        out[i].keep = true;
        out[i].reasons.push_back("verified");
      }
      break;
    }
}

Group ApplyToGroup(const std::string& key, const std::vector<Sorted>& list, const Policy& p,
                   int64_t now_ns) {
  Group g{key, {}};
  for (const auto& e : list) g.decisions.push_back({e.s->id, e.s->time_ns, false, {}});
  if (p.empty()) {
    for (auto& d : g.decisions) d = {d.id, d.time_ns, true, {"policy is empty"}};
    return g;
  }
  const int counts[] = {p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly};
  for (int rule = 0; rule < 6; rule++)
    if (counts[rule] > 0) FillBuckets(rule, counts[rule], list, g.decisions);
  // The newest snapshot not in the future (restic's findLatestTimestamp).
  const Sorted* latest = nullptr;
  for (const auto& e : list)
    if (e.s->time_ns < now_ns) {
      latest = &e;
      break;
    }
  if (!p.within.zero()) {
    int64_t threshold =
        latest ? WithinThresholdNs(latest->s->time_ns, latest->civil, p.within) : INT64_MIN;
    for (size_t i = 0; i < list.size(); i++)
      if (list[i].s->time_ns > threshold) {
        g.decisions[i].keep = true;
        g.decisions[i].reasons.push_back("within " + p.within.ToString());
      }
  }
  for (size_t i = 0; i < list.size(); i++)
    for (const auto& [k, v] : p.tags)
      if (auto it = list[i].s->tags.find(k); it != list[i].s->tags.end() && it->second == v) {
        g.decisions[i].keep = true;
        g.decisions[i].reasons.push_back("tag " + k + "=" + v);
      }
  ApplyRails(list, now_ns, g.decisions);
  return g;
}

}  // namespace

const char* ProofName(Proof p) {
  switch (p) {
    case Proof::kVerified:
      return "verified";
    case Proof::kFailed:
      return "failed";
    default:
      return "unverified";
  }
}

bool Policy::empty() const {
  return last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0 &&
         within.zero() && tags.empty();
}

Result<GroupBy> ParseGroupBy(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid("--group-by '" + text + "': " + why +
                           " (use a comma list of host, stack and sources, or none; default "
                           "host,stack)");
  };
  if (text == "none") return GroupBy{false, false, false};
  GroupBy g{false, false, false};
  std::stringstream in(text);
  std::string part;
  int parts = 0;
  while (std::getline(in, part, ',')) {
    parts++;
    if (part == "host")
      g.host = true;
    else if (part == "stack")
      g.stack = true;
    else if (part == "sources")
      g.sources = true;
    else
      return bad(part.empty() ? "an empty field" : "unknown field '" + part + "'");
  }
  if (parts == 0 || text.back() == ',') return bad("an empty field");
  return g;
}

Result<std::vector<CivilTime>> ToCivil(const std::vector<int64_t>& unix_seconds,
                                       const std::string& zone) {
  if (zone.empty() || zone == "UTC") {
    std::vector<CivilTime> out;
    out.reserve(unix_seconds.size());
    for (int64_t s : unix_seconds) out.push_back(FromLocalSeconds(s, 0));
    return out;
  }
  MV_RETURN_IF_ERROR(CheckZone(zone));
  return LocalCivil(unix_seconds, zone);
}

Result<std::vector<Group>> ApplyPolicy(const std::vector<SnapshotFacts>& snapshots,
                                       const Policy& policy, const GroupBy& group_by,
                                       int64_t now_ns) {
  if (!policy.timezone.empty()) MV_RETURN_IF_ERROR(ToCivil({}, policy.timezone).status());
  std::vector<Group> out;
  for (const auto& [key, members] : Grouped(snapshots, group_by)) {
    MV_ASSIGN_OR_RETURN(auto civil, ToCivil(Seconds(members), policy.timezone));
    std::vector<Sorted> list;
    for (size_t i = 0; i < members.size(); i++) list.push_back({members[i], civil[i]});
    out.push_back(ApplyToGroup(key, list, policy, now_ns));
  }
  return out;
}

std::vector<Group> ForgetNamed(const std::vector<SnapshotFacts>& snapshots,
                               const std::vector<std::string>& ids, const GroupBy& group_by) {
  std::set<std::string> named(ids.begin(), ids.end());
  std::vector<Group> out;
  for (const auto& [key, members] : Grouped(snapshots, group_by)) {
    Group g{key, {}};
    for (const auto* s : members) {
      bool remove = named.count(s->id) > 0;
      g.decisions.push_back(
          {s->id, s->time_ns, !remove,
           remove ? std::vector<std::string>{} : std::vector<std::string>{"not named"}});
    }
    out.push_back(std::move(g));
  }
  return out;
}

Status RefuseWholeGroups(const std::vector<Group>& groups) {
  for (const auto& g : groups) {
    bool any_kept = std::any_of(g.decisions.begin(), g.decisions.end(),
                                [](const Decision& d) { return d.keep; });
    if (!g.decisions.empty() && !any_kept)
      return Status::Invalid("refusing to remove every snapshot of group '" + g.key + "' (" +
                             std::to_string(g.decisions.size()) +
                             " snapshot(s)); nothing was removed: keep at least one snapshot of "
                             "the group");
  }
  return Status::Ok();
}

}  // namespace mv::retention
