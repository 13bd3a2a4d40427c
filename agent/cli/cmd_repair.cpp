// `mailvault repair index`: rebuilds the index (derived data, docs/FORMAT.md §6) from the packs,
// which describe themselves (§5). Takes the exclusive lock.
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "storage/lock.h"

namespace mv::agent {
namespace {

nlohmann::json ToJson(const storage::IndexRebuild& r, bool dry) {
  nlohmann::json j = {{"dry_run", dry},
                      {"packs", r.packs},
                      {"blobs", r.blobs},
                      {"kept_from_old_index", r.kept},
                      {dry ? "would_remove" : "removed", r.removed},
                      {"bad_packs", nlohmann::json::array()}};
  if (!dry) j["written"] = r.written;
  for (const auto& b : r.bad_packs)
    j["bad_packs"].push_back({{"path", b.path}, {"error", b.reason}});
  return j;
}

void Print(const storage::IndexRebuild& r, bool dry) {
  for (const auto& b : r.bad_packs)
    std::cerr << b.path << ": damaged pack: " << b.reason
              << " (`mailvault check` shows what it affects)\n";
  for (const auto& p : r.kept)
    std::cerr << p << ": missing or damaged; its entries from the old index are kept\n";
  if (dry) {
    std::cout << "dry run: would index " << r.packs << " pack(s) (" << r.blobs
              << " blobs) in new index file(s)";
    for (const auto& p : r.removed) std::cout << "\nwould remove " << p;
    std::cout << "\n";
    return;
  }
  for (const auto& p : r.written) std::cout << "wrote " << p << "\n";
  for (const auto& p : r.removed) std::cout << "removed " << p << "\n";
  std::cout << "index rebuilt: " << r.packs << " pack(s), " << r.blobs << " blobs, "
            << r.written.size() << " index file(s) written, " << r.removed.size()
            << " old one(s) removed";
  if (!r.bad_packs.empty())
    std::cout << "; " << r.bad_packs.size() << " damaged pack(s), listed above";
  std::cout << "\n";
}

}  // namespace

void RegisterRepair(CLI::App& app, CliContext& ctx) {
  auto* repair = app.add_subcommand("repair", "Repair derived repository data");
  repair->require_subcommand(1);
  auto* sub = repair->add_subcommand("index", "Rebuild the index from the packs");
  sub->footer(
      "Reads every pack, checks that its bytes hash to its name, lists its blobs, writes fresh\n"
      "index file(s) naming every good pack, and only then removes the old index files, so an\n"
      "interruption never leaves a pack unindexed that was indexed before. Damaged packs are\n"
      "left out and listed. Takes the repository lock (waits for no backup: fails if one runs).\n\n"
      "Exit: 0 ok, 1 error, 3 done but some packs are damaged (listed).");
  AddRepoOption(sub, ctx);
  auto dry = std::make_shared<bool>(false);
  sub->add_flag("-n,--dry-run", *dry,
                "Read the packs and say what would be written and removed; change nothing");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, dry] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    std::string stale;
    auto lock = repo->LockExclusive("repair index", {}, &stale);
    if (!lock.ok()) return void(ctx.exit_code = ReportError(ctx, lock.status()));
    if (!stale.empty()) std::cerr << "note: took over a " << stale << "\n";
    if (!*dry) repo->CleanTmp();
    auto res = repo->RebuildIndex(*dry);
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    if (ctx.json)
      PrintJson(ToJson(*res, *dry));
    else
      Print(*res, *dry);
    ctx.exit_code = res->bad_packs.empty() ? kExitOk : kExitPartial;
  });
}

}  // namespace mv::agent
