#include <cstdio>
#include <ctime>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "storage/held_mail.h"
#include "storage/verification.h"

namespace mv::agent {

nlohmann::json MetaJson(const storage::SnapshotMeta& m) {
  nlohmann::json j = {{"id", m.id},
                      {"damaged", false},
                      {"short_id", m.id.substr(0, 8)},
                      {"time", m.time},
                      {"time_utc", HumanTime(m.time)},
                      {"host", m.host},
                      {"parent", m.parent},
                      {"tags", m.tags},
                      {"files", m.files},
                      {"bytes", m.bytes},
                      {"bytes_new", m.bytes_new},
                      {"bytes_packed", m.bytes_packed},
                      {"problems", m.problems},
                      {"sources", nlohmann::json::array()},
                      {"census", nlohmann::json::array()}};
  for (const auto& s : m.sources) j["sources"].push_back({{"name", s.name}, {"path", s.path}});
  for (const auto& c : m.census)
    j["census"].push_back({{"source", c.source},
                           {"mailbox", c.mailbox},
                           {"folder", c.folder},
                           {"messages", c.messages},
                           {"bytes", c.bytes},
                           {"digest", c.digest}});
  return j;
}

void RegisterSnapshots(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("snapshots", "List snapshots, oldest first");
  sub->footer(
      "List the repository's snapshots, oldest first: ID, time, host, tags, files,\n"
      "size, data added, and mailbox/message counts from the Maildir census.\n"
      "STATE is complete, or partial when the backup could not read some files (it\n"
      "exited 3; `mailvault verify` lists them). PROOF is the newest verdict of\n"
      "`mailvault verify` or `mailvault report` on that snapshot: verified (restored and\n"
      "compared without error), FAILED, or - (never verified). Retention never forgets\n"
      "the newest verified snapshot while newer ones are unverified or failed.\n"
      "A snapshot whose manifest cannot be read is listed as DAMAGED (with --json:\n"
      "\"damaged\": true, \"path\", \"error\") after the others, which are not affected.\n\n"
      "Exit: 0 ok, 1 error, 3 some manifests are damaged (each listed; see `mailvault check`).");
  AddRepoOption(sub, ctx);
  auto tag = std::make_shared<std::string>();
  sub->add_option("--tag", *tag, "Only snapshots with this KEY=VALUE tag");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, tag] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    std::vector<storage::DamagedFile> damaged;
    auto snaps = repo->ListSnapshots(&damaged);
    if (!snaps.ok()) return void(ctx.exit_code = ReportError(ctx, snaps.status()));
    std::vector<storage::SnapshotMeta> shown;
    for (auto& m : *snaps) {
      if (!tag->empty()) {
        auto eq = tag->find('=');
        std::string k = tag->substr(0, eq), v = eq == std::string::npos ? "" : tag->substr(eq + 1);
        auto it = m.tags.find(k);
        if (it == m.tags.end() || (eq != std::string::npos && it->second != v)) continue;
      }
      shown.push_back(m);
    }
    // Damaged manifests: their tags are unknown, so a --tag filter keeps them.
    for (const auto& d : damaged)
      std::cerr << "mailvault: warning: " << d.path << ": snapshot manifest is damaged ("
                << d.reason
                << "); this snapshot cannot be read, the others are not affected: run `mailvault "
                   "check`\n";
    if (!damaged.empty()) ctx.exit_code = kExitPartial;
    std::vector<std::string> bad_records;
    auto proofs = storage::LoadVerifications(*repo, &bad_records);
    if (!proofs.ok()) {
      std::cerr << "mailvault: warning: verification records not read: "
                << proofs.status().ToString() << "\n";
      proofs = std::map<std::string, storage::Verification>{};
    }
    for (const auto& b : bad_records)
      std::cerr << "mailvault: warning: verification record skipped: " << b << "\n";
    auto proof_of = [&](const std::string& id) -> const storage::Verification* {
      auto it = proofs->find(id);
      return it == proofs->end() ? nullptr : &it->second;
    };
    auto damaged_id = [](const storage::DamagedFile& d) {
      return d.path.substr(d.path.size() - 32);
    };
    if (ctx.json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& m : shown) {
        auto j = MetaJson(m);
        j["complete"] = m.problems == 0;
        const auto* p = proof_of(m.id);
        j["verification"] = p ? nlohmann::json{{"ok", p->ok},
                                               {"time", p->time},
                                               {"time_utc", HumanTime(p->time)},
                                               {"host", p->host},
                                               {"summary", p->summary}}
                              : nlohmann::json(nullptr);
        arr.push_back(std::move(j));
      }
      for (const auto& d : damaged)
        arr.push_back({{"id", damaged_id(d)},
                       {"short_id", damaged_id(d).substr(0, 8)},
                       {"damaged", true},
                       {"path", d.path},
                       {"error", d.reason}});
      return PrintJson(arr);
    }
    std::printf("%-8s  %-23s  %-12s  %8s  %10s  %10s  %9s  %-8s  %-8s  %s\n", "ID", "TIME", "HOST",
                "FILES", "SIZE", "ADDED", "MESSAGES", "STATE", "PROOF", "TAGS");
    for (const auto& m : shown) {
      uint64_t msgs = 0;
      for (const auto& c : m.census) msgs += c.messages;
      std::string tags;
      for (const auto& [k, v] : m.tags) tags += (tags.empty() ? "" : ",") + k + "=" + v;
      const auto* p = proof_of(m.id);
      std::printf("%-8s  %-23s  %-12s  %8llu  %10s  %10s  %9llu  %-8s  %-8s  %s\n",
                  m.id.substr(0, 8).c_str(), HumanTime(m.time).c_str(),
                  m.host.substr(0, 12).c_str(), static_cast<unsigned long long>(m.files),
                  HumanBytes(m.bytes).c_str(), HumanBytes(m.bytes_packed).c_str(),
                  static_cast<unsigned long long>(msgs), m.problems ? "partial" : "complete",
                  !p      ? "-"
                  : p->ok ? "verified"
                          : "FAILED",
                  tags.c_str());
    }
    for (const auto& d : damaged)
      std::printf("%-8s  DAMAGED: %s (%s)\n", damaged_id(d).substr(0, 8).c_str(), d.reason.c_str(),
                  d.path.c_str());
    std::printf("%zu snapshot(s)", shown.size());
    if (!damaged.empty()) std::printf(", %zu damaged (run `mailvault check`)", damaged.size());
    std::printf("\n");
    // Held deleted mail (forget --keep-deleted-mail, docs/FORMAT.md §12).
    std::vector<std::string> bad_held;
    auto held = storage::LoadHeldMail(*repo, &bad_held);
    for (const auto& b : bad_held)
      std::cerr << "mailvault: warning: held mail record cannot be read: " << b
                << " (run `mailvault check`)\n";
    if (held.ok()) {
      auto sum = storage::SummarizeHeld(*held, repo->env()->NowNanos());
      if (sum.messages)
        std::printf(
            "held deleted mail: %llu message(s), %s, restorable with `restore "
            "--deleted-since` until %s (the first expires %s)\n",
            static_cast<unsigned long long>(sum.messages), HumanBytes(sum.bytes).c_str(),
            HumanTime(sum.last_expiry_ns / 1000000000LL).c_str(),
            HumanTime(sum.first_expiry_ns / 1000000000LL).c_str());
    }
  });
}

}  // namespace mv::agent
