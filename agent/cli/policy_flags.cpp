#include "agent/cli/policy_flags.h"

#include <charconv>

namespace mv::agent {
namespace {

Status ParseCount(const std::string& flag, const std::string& text, int* out) {
  if (text.empty()) return Status::Ok();
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  if (ec != std::errc() || p != text.data() + text.size() || *out < 0 || *out > 1000000)
    return Status::Invalid(flag + " '" + text +
                           "': expected a whole number of snapshots from 0 to 1000000");
  return Status::Ok();
}

}  // namespace

void AddPolicyOptions(CLI::App* sub, PolicyFlags* f) {
  sub->add_option("--keep-last", f->last, "Keep the N newest snapshots");
  sub->add_option("--keep-hourly", f->hourly, "Keep the newest of each of the last N hours");
  sub->add_option("--keep-daily", f->daily, "Keep the newest of each of the last N days");
  sub->add_option("--keep-weekly", f->weekly, "Keep the newest of each of the last N ISO weeks");
  sub->add_option("--keep-monthly", f->monthly, "Keep the newest of each of the last N months");
  sub->add_option("--keep-yearly", f->yearly, "Keep the newest of each of the last N years");
  sub->add_option("--keep-within", f->within,
                  "Keep snapshots within this duration of the newest (30d, 1y6m, 48h)");
  sub->add_option("--keep-tag", f->keep_tags, "Keep snapshots with this KEY=VALUE tag; repeatable");
  sub->add_option("--timezone", f->timezone,
                  "IANA zone for the calendar buckets, e.g. Europe/Berlin (default UTC)");
  sub->add_option("--keep-deleted-mail", f->keep_deleted_mail,
                  "Keep messages that only removed snapshots held restorable for D after the "
                  "last snapshot that held them (30d); `restore --deleted-since` brings them back");
}

Status ParseKeepDeletedMail(const PolicyFlags& f, int64_t* ns) {
  *ns = 0;
  if (f.keep_deleted_mail.empty()) return Status::Ok();
  MV_ASSIGN_OR_RETURN(auto d,
                      retention::ParseKeepWithin(f.keep_deleted_mail, "--keep-deleted-mail"));
  if (d.zero())
    return Status::Invalid("--keep-deleted-mail '" + f.keep_deleted_mail +
                           "': give a period of at least 1h (e.g. 30d), or leave the option out");
  constexpr int64_t kHour = 3600LL * 1000000000LL;
  *ns = ((int64_t(d.years) * 365 + int64_t(d.months) * 30 + d.days) * 24 + d.hours) * kHour;
  return Status::Ok();
}

Status ParsePolicy(const PolicyFlags& f, retention::Policy* out) {
  retention::Policy p;
  MV_RETURN_IF_ERROR(ParseCount("--keep-last", f.last, &p.last));
  MV_RETURN_IF_ERROR(ParseCount("--keep-hourly", f.hourly, &p.hourly));
  MV_RETURN_IF_ERROR(ParseCount("--keep-daily", f.daily, &p.daily));
  MV_RETURN_IF_ERROR(ParseCount("--keep-weekly", f.weekly, &p.weekly));
  MV_RETURN_IF_ERROR(ParseCount("--keep-monthly", f.monthly, &p.monthly));
  MV_RETURN_IF_ERROR(ParseCount("--keep-yearly", f.yearly, &p.yearly));
  if (!f.within.empty()) {
    MV_ASSIGN_OR_RETURN(p.within, retention::ParseKeepWithin(f.within));
  }
  for (const auto& t : f.keep_tags) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::Invalid("--keep-tag takes KEY=VALUE (e.g. stack=mail), got '" + t + "'");
    p.tags.emplace_back(t.substr(0, eq), t.substr(eq + 1));
  }
  p.timezone = f.timezone;
  if (!p.timezone.empty()) MV_RETURN_IF_ERROR(retention::ToCivil({}, p.timezone).status());
  *out = std::move(p);
  return Status::Ok();
}

}  // namespace mv::agent
