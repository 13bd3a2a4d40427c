// `mailvault report`: the nightly integrity report (verify/report.h). Verifies the latest snapshot
// of each stack (or source group), re-reads tonight's share of packs, and writes JSON, Markdown,
// HTML and a node_exporter textfile into --out.
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/jobs/report_run.h"
#include "agent/sidecar/schedule.h"
#include "agent/cli/snapshot_ref.h"

namespace mv::agent {

void RegisterReport(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "report", "Nightly integrity report: verify, rotating check, staleness, metrics");
  sub->footer(
      "Verifies the latest snapshot of each stack (tag stack=) or source group, re-reads and\n"
      "re-hashes tonight's share of the packs (every pack within --rotate-nights nights),\n"
      "flags stacks without a successful backup within --max-age, and writes into --out:\n"
      "mailvault-report.json, mailvault-report.md, mailvault-report.html (self-contained, with\n"
      "charts) and mailvault.prom (for node_exporter's textfile collector).\n\n"
      "Against a remote (S3) repository the nightly report does not download the repository:\n"
      "it checks structure (from the local cache) and re-reads tonight's share of packs, says\n"
      "how much it read (downloaded_bytes, mailvault_report_downloaded_bytes), and marks each\n"
      "stack 'checked, not restored' (no mailvault_verify_ok sample). --full-verify restores and\n"
      "verifies as for a local repository. With `agent --copy-to`, run the full proof on the\n"
      "local repository and this report on the copy.\n\n"
      "Examples:\n"
      "  mailvault report --repo /srv/backup --out /var/lib/node_exporter/textfile\n"
      "  mailvault report --repo s3:https://s3.example.net/mail-backups/mailu --out /srv/report\n\n"
      "Exit: 0 all good, 1 a snapshot failed verification or the repository has damage,\n"
      "2 usage, 4 stale (no successful backup within --max-age).");
  AddRepoOption(sub, ctx);
  struct Args {
    NightlyReportOptions opts = [] {
      NightlyReportOptions o;
      o.version = MAILVAULT_VERSION;
      return o;
    }();
    std::string max_age = "26h";
    std::vector<std::string> sources;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--out", a->opts.out, "Directory for the report files")->required();
  sub->add_option("--format", a->opts.formats, "Comma-separated: md,html,json,prom (default all)");
  sub->add_option("--max-age", a->max_age,
                  "Expected backup interval before a stack is stale (default 26h)");
  sub->add_option("--rotate-nights", a->opts.rotate_nights,
                  "Re-read every pack within this many nights (default 7)")
      ->check(CLI::Range(1, 366));
  sub->add_option("--scratch", a->opts.scratch,
                  "Directory for the scratch restores (default $TMPDIR or /var/tmp)");
  sub->add_option("--source", a->sources, "Live source NAME=DIR to compare with; repeatable");
  sub->add_option("--at", a->opts.at, "Evaluate as of this Unix time (default now)");
  sub->add_flag("--full-verify", a->opts.full_verify,
                "For a remote (S3) repository: restore and verify each latest snapshot, "
                "downloading all its data (a local repository always does)");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    auto max_age = ParseDuration(a->max_age);
    if (!max_age.ok()) return void(ctx.exit_code = ReportError(ctx, max_age.status()));
    a->opts.max_age_seconds = max_age->count();
    for (const auto& s : a->sources) {
      auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0)
        return void(ctx.exit_code =
                        ReportError(ctx, Status::Invalid("--source '" + s + "' must be NAME=DIR")));
      a->opts.live[s.substr(0, eq)] = s.substr(eq + 1);
    }
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    // Against S3 only --full-verify restores; a local repository always does (and ignores this).
    if (a->opts.full_verify) repo->backend().KeepReadPacks(kRestoreKeepPackBytes);
    auto rep = GatherReport(*repo, a->opts);
    if (!rep.ok()) return void(ctx.exit_code = ReportError(ctx, rep.status()));
    rep->exit_code = ReportExitCode(rep->damage(), rep->stale());
    std::vector<std::string> written;
    if (Status st = WriteReportFiles(*rep, a->opts, &written); !st.ok())
      return void(ctx.exit_code = ReportError(ctx, st));
    if (ctx.json) {
      PrintJson(verify::RenderJson(*rep));
    } else {
      std::cout << verify::RenderMarkdown(*rep) << "\nwritten:";
      for (const auto& w : written) std::cout << " " << w;
      std::cout << "\n";
    }
    ctx.exit_code = rep->exit_code;
  });
}

int ReportExitCode(bool damage, bool stale) {
  return damage ? kExitError : stale ? kExitStale : kExitOk;
}

}  // namespace mv::agent
