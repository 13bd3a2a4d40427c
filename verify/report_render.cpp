// The report's Markdown and self-contained HTML (inline CSS and SVG, no scripts, no fetches).
#include <cstdio>
#include <ctime>
#include <sstream>

#include "verify/report.h"

namespace mv::verify {
namespace {

std::string Bytes(uint64_t n) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, i++;
  char b[32];
  std::snprintf(b, sizeof b, i ? "%.1f %s" : "%.0f %s", v, u[i]);
  return b;
}

std::string Time(int64_t t) {
  if (t <= 0) return "never";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char b[40];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", &tm);
  return b;
}

std::string Age(int64_t s) {
  char b[32];
  if (s < 7200)
    std::snprintf(b, sizeof b, "%lld min", static_cast<long long>(s / 60));
  else if (s < 172800)
    std::snprintf(b, sizeof b, "%lld h", static_cast<long long>(s / 3600));
  else
    std::snprintf(b, sizeof b, "%lld days", static_cast<long long>(s / 86400));
  return b;
}

std::string Status(const GroupReport& g) {
  if (!g.verify_error.empty()) return "VERIFY ERROR";
  if (g.verified && !g.verify_ok) return "FAILED";
  if (g.stale) return "STALE";
  if (!g.verified && !g.verify_skipped.empty()) return "OK (checked, not restored)";
  return "OK";
}

std::string Esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '&':
        o += "&amp;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

// A small line chart of `v` (oldest first) with its last value and range.
std::string Chart(const std::string& title, const std::vector<double>& v, bool bytes) {
  const int w = 320, h = 90, pad = 6;
  std::ostringstream s;
  s << "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" viewBox=\"0 0 " << w << " " << h << "\" role=\"img\" aria-label=\"" << Esc(title)
    << "\">"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#f7f7f9\"/>";
  if (!v.empty()) {
    double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    if (hi == lo) hi = lo + 1;
    s << "<polyline fill=\"none\" stroke=\"#2b6cb0\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < v.size(); i++) {
      double x = v.size() == 1 ? w / 2.0 : pad + (w - 2.0 * pad) * i / (v.size() - 1);
      double y = h - pad - (h - 2.0 * pad) * (v[i] - lo) / (hi - lo);
      s << (i ? " " : "") << x << "," << y;
    }
    s << "\"/>";
  }
  auto fmt = [&](double x) {
    return bytes ? Bytes(static_cast<uint64_t>(x)) : std::to_string(static_cast<uint64_t>(x));
  };
  s << "</svg><figcaption>" << Esc(title);
  if (!v.empty())
    s << ": " << fmt(v.back()) << " (range " << fmt(*std::min_element(v.begin(), v.end())) << " - "
      << fmt(*std::max_element(v.begin(), v.end())) << ", " << v.size() << " snapshots)";
  s << "</figcaption></figure>";
  return s.str();
}

// The verdict line: damage wins over staleness.
const char* Banner(const Report& r) {
  return r.damage() ? "DAMAGE OR LOSS FOUND" : r.stale() ? "STALE BACKUPS" : "OK";
}

}  // namespace

std::string RenderMarkdown(const Report& r) {
  std::ostringstream s;
  s << "# mailvault nightly report\n\n"
    << "**" << Banner(r) << "** - generated " << Time(r.generated) << " for `" << r.repository
    << "`\n\n"
    << "| stack | status | latest snapshot | age | messages | lost |\n|---|---|---|---|---|---|\n";
  for (const auto& g : r.groups)
    s << "| " << g.name << " | " << Status(g) << " | " << g.snapshot.substr(0, 8) << " ("
      << Time(g.last_time) << ") | " << Age(g.age_seconds) << " | " << g.messages << " | "
      << g.lost_messages << " |\n";
  s << "\nRepository: " << Bytes(r.repository_bytes) << " (" << Bytes(r.pack_bytes)
    << " in packs), " << r.snapshots << " snapshots, dedup ratio "
    << std::to_string(r.dedup_ratio).substr(0, 5) << ", +" << Bytes(r.growth_bytes_24h)
    << " in 24 h."
    << (r.downloaded_bytes ? " Read " + Bytes(r.downloaded_bytes) + " from the remote repository."
                           : "")
    << (r.held_messages ? " Deleted mail held: " + std::to_string(r.held_messages) +
                              " message(s), " + Bytes(r.held_bytes) + "."
                        : "")
    << "\n\n"
    << "Check (rotation night " << r.rotation_bucket + 1 << "/" << r.rotate_nights
    << "): " << r.check.packs_read << " of " << r.check.packs << " packs re-read, "
    << r.check.blobs_hashed << " blobs re-hashed, " << r.check.errors() << " problem(s)."
    << (r.check_error.empty() ? "" : " Error: " + r.check_error) << "\n";
  for (const auto& g : r.groups) {
    s << "\n## " << g.name << "\n\n";
    if (g.stale)
      s << "- **stale**: no successful backup for " << Age(g.age_seconds) << " (limit "
        << Age(r.max_age_seconds) << ")\n";
    if (!g.verify_error.empty()) s << "- verify could not run: " << g.verify_error << "\n";
    for (const auto& e : g.verify_errors) s << "- **" << e << "**\n";
    s << "- " << g.snapshots << " snapshots kept; oldest restorable point " << Time(g.oldest_time)
      << "; newest verified snapshot "
      << (g.last_verified_time
              ? g.last_verified_snapshot.substr(0, 8) + " (" + Time(g.last_verified_time) + ")"
              : std::string("none"))
      << "\n";
    if (g.hooks.empty()) s << "- hooks: none recorded\n";
    for (const auto& [k, v] : g.hooks) s << "- " << k << ": " << v << "\n";
    for (const auto& [mb, n] : g.mailbox_messages) s << "- `" << mb << "`: " << n << " messages\n";
  }
  for (const auto& p : r.check.problems)
    s << "\n- " << (p.warning ? "warning" : "**damage**") << " [" << p.kind << "] " << p.message
      << " (" << p.where << "; affects " << p.affected_total << " file(s))";
  s << "\n";
  return s.str();
}

std::string RenderHtml(const Report& r) {
  std::ostringstream s;
  const char* color = r.damage() ? "#c53030" : r.stale() ? "#b7791f" : "#276749";
  s << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mailvault "
       "report</title><style>"
       "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em "
       ".6em;text-align:left}"
       "figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.85em;color:#555}"
       ".banner{color:#fff;padding:.6em 1em;border-radius:4px}</style></head><body>"
    << "<h1>mailvault nightly report</h1><p class=\"banner\" style=\"background:" << color << "\">"
    << Banner(r) << " &mdash; " << Esc(Time(r.generated)) << "</p><p>Repository <code>"
    << Esc(r.repository) << "</code>: " << Bytes(r.repository_bytes) << ", " << r.snapshots
    << " snapshots, dedup ratio " << std::to_string(r.dedup_ratio).substr(0, 5)
    << ". Check: " << r.check.packs_read << " of " << r.check.packs << " packs re-read tonight, "
    << r.check.errors()
    << " problem(s).</p><table><tr><th>stack</th><th>status</th><th>latest "
       "snapshot</th><th>age</th>"
       "<th>messages</th><th>lost</th></tr>";
  for (const auto& g : r.groups)
    s << "<tr><td>" << Esc(g.name) << "</td><td>" << Status(g) << "</td><td>"
      << Esc(g.snapshot.substr(0, 8)) << " (" << Esc(Time(g.last_time)) << ")</td><td>"
      << Age(g.age_seconds) << "</td><td>" << g.messages << "</td><td>" << g.lost_messages
      << "</td></tr>";
  s << "</table>";
  for (const auto& g : r.groups) {
    s << "<h2>" << Esc(g.name) << "</h2><ul>";
    for (const auto& e : g.verify_errors) s << "<li><strong>" << Esc(e) << "</strong></li>";
    if (!g.verify_error.empty())
      s << "<li>verify could not run: " << Esc(g.verify_error) << "</li>";
    s << "<li>" << g.snapshots << " snapshots kept; oldest restorable point "
      << Esc(Time(g.oldest_time)) << "; newest verified snapshot "
      << (g.last_verified_time
              ? Esc(g.last_verified_snapshot.substr(0, 8) + " (" + Time(g.last_verified_time) + ")")
              : std::string("none"))
      << "</li>";
    for (const auto& [k, v] : g.hooks) s << "<li>" << Esc(k) << ": " << Esc(v) << "</li>";
    s << "</ul>";
    std::vector<double> bytes, msgs;
    for (const auto& h : g.history)
      bytes.push_back(static_cast<double>(h.repository_bytes)),
          msgs.push_back(static_cast<double>(h.messages));
    s << Chart("repository size", bytes, true) << Chart("messages", msgs, false);
  }
  if (!r.check.problems.empty()) {
    s << "<h2>Repository check</h2><ul>";
    for (const auto& p : r.check.problems)
      s << "<li>" << (p.warning ? "warning" : "<strong>damage</strong>") << " [" << Esc(p.kind)
        << "] " << Esc(p.message) << " <code>" << Esc(p.where) << "</code></li>";
    s << "</ul>";
  }
  s << "</body></html>\n";
  return s.str();
}

}  // namespace mv::verify
