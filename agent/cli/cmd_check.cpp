// `mailvault check`: the read-only repository check (verify/check.h).
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "verify/check.h"
#include "verify/verify_json.h"

namespace mv::agent {
namespace {

void PrintCheck(const verify::CheckResult& r, std::ostream& out) {
  out << (r.ok() ? "check: OK"
                 : "check: DAMAGE FOUND (" + std::to_string(r.errors()) + " problem(s))")
      << " - " << r.snapshots << " snapshots, " << r.index_files << " index files, " << r.packs
      << " packs (" << HumanBytes(r.pack_bytes) << "), " << r.blobs << " blobs; " << r.packs_read
      << " packs read, " << r.blobs_hashed << " blobs re-hashed";
  if (r.held_messages) out << "; " << r.held_messages << " held deleted message(s)";
  out << "\n";
  for (const auto& p : r.problems) {
    out << "\n" << (p.warning ? "warning" : "error") << " [" << p.kind << "] " << p.message << "\n";
    if (!p.where.empty()) out << "  where:    " << p.where << "\n";
    if (!p.pack.empty()) out << "  pack:     " << p.pack << "\n";
    if (!p.blob.empty()) out << "  blob:     " << p.blob << "\n";
    if (!p.snapshot.empty()) out << "  snapshot: " << p.snapshot << "\n";
    if (p.affected_total) {
      out << "  affects " << p.affected_total << " file(s) in snapshots";
      if (!p.affected_mailboxes.empty()) {
        out << "; messages per mailbox:";
        for (const auto& [mb, n] : p.affected_mailboxes) out << " " << mb << " (" << n << ")";
      }
      out << "\n";
      for (size_t i = 0; i < p.affected.size() && i < 20; i++) {
        const auto& a = p.affected[i];
        out << "    " << a.snapshot.substr(0, 8) << "  " << a.path
            << (a.mailbox.empty() ? "" : "  (mailbox " + a.mailbox + ")") << "\n";
      }
      if (p.affected_total > 20)
        out << "    ... and " << p.affected_total - 20 << " more (--json lists up to 100)\n";
    }
  }
  if (!r.ok())
    out << "\nThe snapshots listed above cannot be restored completely. Back up again now (new "
           "blobs are\n"
           "stored afresh for data no longer in the repository), and keep the damaged files for "
           "analysis.\n";
}

}  // namespace

void RegisterCheck(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "check", "Check the repository's structure and, optionally, its data (read-only)");
  sub->footer(
      "Decodes every index file and snapshot manifest, checks that every blob a snapshot uses is\n"
      "indexed, that every indexed pack exists with its indexed size, and reads every pack: its\n"
      "bytes must hash to its name and hold exactly the blobs the index places in it.\n"
      "--read-data also re-hashes every blob; --read-data-subset K/N or P% does so for a subset\n"
      "of packs (K/N: nights 1..N together read every pack) and only stats the others.\n"
      "Nothing is written and no lock is taken. Each problem names the pack, blob, index file or\n"
      "manifest, and the snapshots, files and mailboxes it affects.\n\n"
      "Exit: 0 no damage, 1 damage found or error, 2 usage.");
  AddRepoOption(sub, ctx);
  auto read_data = std::make_shared<bool>(false);
  auto subset = std::make_shared<std::string>();
  sub->add_flag("--read-data", *read_data, "Re-hash every blob of every pack");
  sub->add_option("--read-data-subset", *subset,
                  "Re-hash the blobs of a subset of packs: K/N or P%");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, read_data, subset] {
    // Reading data proves the remote's bytes, not the local cache's copies.
    if (*read_data || !subset->empty()) ctx.s3.no_cache = true;
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    verify::CheckOptions opts;
    if (*read_data) opts.read = verify::PackRead::kData;
    if (!subset->empty()) {
      auto sel = verify::ParseSubset(*subset);
      if (!sel.ok()) return void(ctx.exit_code = ReportError(ctx, sel.status()));
      opts.read = verify::PackRead::kData;
      opts.select = *sel;
    }
    auto res = verify::CheckRepository(*repo, opts);
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    if (ctx.json)
      PrintJson(WithStorage(verify::ToJson(*res), repo->backend().stats()));
    else
      PrintCheck(*res, std::cout);
    PrintStorageLine(ctx, repo->backend().stats());
    ctx.exit_code = res->ok() ? kExitOk : kExitError;
  });
}

}  // namespace mv::agent
