// `mailvault prune`: gives back the space of blobs no snapshot uses (retention/prune.h).
#include <unistd.h>

#include <charconv>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/lock_wait.h"
#include "agent/cli/output.h"
#include "agent/cli/prune_output.h"
#include "agent/cli/snapshot_ref.h"
#include "retention/prune.h"

namespace mv::agent {
namespace {

struct PruneArgs {
  std::string max_unused = "5%", max_repack_size, retry_lock;
  retention::PruneOptions opts;
};

// "5%", "0%", "100%", or "unlimited".
Result<double> ParsePercent(const std::string& text) {
  if (text == "unlimited") return 1.0;
  double v = -1;
  if (!text.empty() && text.back() == '%') {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, v);
    if (ec != std::errc() || end != text.data() + text.size() - 1) v = -1;
  }
  if (v < 0 || v > 100)
    return Status::Invalid("--max-unused '" + text +
                           "': give a percentage of the repository from 0% to 100% (e.g. 5%), "
                           "or 'unlimited'");
  return v / 100;
}

// "500M", "2G", "1T", "4096" (bytes; K, M, G, T are powers of 1024).
Result<uint64_t> ParseSize(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  std::string unit(end, text.data() + text.size());
  int shift = unit.empty() || unit == "B" ? 0
              : unit == "K"               ? 10
              : unit == "M"               ? 20
              : unit == "G"               ? 30
              : unit == "T"               ? 40
                                          : -1;
  if (ec != std::errc() || end == text.data() || shift < 0 || v > (UINT64_MAX >> shift))
    return Status::Invalid("--max-repack-size '" + text +
                           "': give a size such as 500M, 2G or 1T (K, M, G, T: powers of 1024)");
  return v << shift;
}

void PrintProgress(const CliContext& ctx, const retention::PruneProgress& p) {
  if (ctx.quiet || ctx.json || !::isatty(2)) return;  // a terminal only, as ProgressPrinter
  std::cerr << "\r" << p.phase << " " << p.done << "/" << p.total
            << (std::string(p.phase) == "repack" ? " bytes" : "") << "\033[K" << std::flush;
}

}  // namespace

void RegisterPrune(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("prune", "Give back the space of data no snapshot uses");
  sub->footer(
      "Reads every snapshot manifest and tree record and the index (not the packs of data) and\n"
      "works out which blobs the snapshots still use. Packs with no used blob are deleted; while\n"
      "the unused share of the repository is over --max-unused, the packs with the highest\n"
      "unused share are repacked: their used blobs are copied into new packs and the old packs\n"
      "deleted. Only the packs repacked are read. Packs that no index file names (left by an\n"
      "interrupted backup or prune) are deleted as well.\n\n"
      "Safe to interrupt at any moment: new packs and the index naming them are durable before\n"
      "any old index file is removed and before any pack is deleted (docs/FORMAT.md section 8),\n"
      "so every snapshot stays restorable, `mailvault check` passes (orphan packs are warnings at\n"
      "most) and the next prune finishes the job. Takes the repository lock, so a backup never\n"
      "runs at the same time (with --retry-lock either one waits for the other). Restores,\n"
      "verifies and checks take no lock and may run meanwhile: a reader whose pack was deleted\n"
      "reads the blobs from their new packs.\n\n"
      "Prune refuses, changing nothing, when a manifest or index file is damaged, a snapshot uses\n"
      "a blob the index lacks, or an indexed pack is missing or short: run `mailvault check`.\n\n"
      "Examples:\n"
      "  mailvault prune --repo /srv/backup --dry-run         # what it would do\n"
      "  mailvault prune --repo /srv/backup                   # at most 5% unused space left\n"
      "  mailvault prune --repo /srv/backup --max-unused 0%   # repack every pack with waste\n"
      "  mailvault prune --repo /srv/backup --max-repack-size 2G --retry-lock 30m\n\n"
      "Exit: 0 ok, 1 error (the repository is left consistent), 2 usage.");
  auto a = std::make_shared<PruneArgs>();
  AddRepoOption(sub, ctx);
  sub->add_option("--max-unused", a->max_unused,
                  "Repack until at most this share of the pack bytes is unused: a percentage "
                  "(default 5%) or 'unlimited' (repack nothing, only delete unused packs)");
  sub->add_option("--max-repack-size", a->max_repack_size,
                  "Repack at most this many bytes of packs in this run (500M, 2G; default: no "
                  "limit)");
  sub->add_flag("-n,--dry-run", a->opts.dry_run,
                "Say what would be deleted and repacked; change "
                "nothing");
  AddRetryLockOption(sub, &a->retry_lock);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    auto unused = ParsePercent(a->max_unused);
    if (!unused.ok()) return void(ctx.exit_code = ReportError(ctx, unused.status()));
    a->opts.max_unused = *unused;
    if (!a->max_repack_size.empty()) {
      auto size = ParseSize(a->max_repack_size);
      if (!size.ok()) return void(ctx.exit_code = ReportError(ctx, size.status()));
      a->opts.max_repack_bytes = *size;
    }
    auto wait = ParseRetryLock(a->retry_lock, ctx);
    if (!wait.ok()) return void(ctx.exit_code = ReportError(ctx, wait.status()));
    a->opts.lock_wait = *wait;
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    bool drawn = false;
    auto res = retention::Prune(*repo, a->opts, [&](const retention::PruneProgress& p) {
      PrintProgress(ctx, p);
      drawn = !ctx.quiet && !ctx.json && ::isatty(2);
    });
    if (drawn) std::cerr << "\r\033[K" << std::flush;
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    if (ctx.json)
      PrintJson(WithStorage(PruneJson(*res), repo->backend().stats()));
    else
      PrintPruneHuman(*res);
    PrintStorageLine(ctx, repo->backend().stats());
    ctx.exit_code = kExitOk;
  });
}

}  // namespace mv::agent
