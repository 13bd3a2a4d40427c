// `mailvault copy`: snapshots from one repository to another, sending only what the destination
// lacks (transfer/copy.h).
#include <unistd.h>

#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/lock_wait.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "transfer/copy.h"

namespace mv::agent {
namespace {

struct CopyArgs {
  std::string to, stack, retry_lock;
  std::vector<std::string> snapshots;
  transfer::CopyOptions opts;
};

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

void RegisterCopy(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "copy",
      "Copy snapshots to another repository (an off-site copy), sending only what it lacks");
  sub->footer(
      "Copies the snapshots of the source (--from, or --repo, or $MAILVAULT_REPO) that the\n"
      "destination (--to) does not have yet, oldest first, under the same snapshot IDs. Either\n"
      "may be a directory or s3:https://HOST/BUCKET[/PREFIX]; the S3 options apply to both.\n"
      "Only the packs holding data the destination lacks are sent, as they are (checked against\n"
      "their names on the way); then an index file naming them, then the manifest, so the\n"
      "destination is consistent at every moment. An interrupted copy is resumed by running it\n"
      "again: packs that arrived are not sent again.\n\n"
      "The destination must share the source's content key: create it with\n"
      "`mailvault init --repo DEST --copy-key-from SOURCE`. A repository with its own key is\n"
      "refused, naming both key fingerprints. Verification records and held mail are not copied:\n"
      "run `mailvault verify` or `check --read-data` against the copy to prove it.\n\n"
      "Takes the destination's lock (with --retry-lock it waits); reads the source without one.\n\n"
      "Examples:\n"
      "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...\n"
      "  mailvault init --repo s3:https://s3.example.net/mail-backups/mailu \\\n"
      "                 --copy-key-from /srv/backup/mailvault\n"
      "  mailvault copy --from /srv/backup/mailvault --to "
      "s3:https://s3.example.net/mail-backups/mailu\n"
      "  mailvault copy --from /srv/backup/mailvault --to /mnt/usb/mailvault --snapshot latest\n"
      "  mailvault copy --from /srv/backup/mailvault --to /mnt/usb/mailvault --stack mailu "
      "--dry-run\n\n"
      "Exit: 0 ok (also when there was nothing to copy), 1 error (what was copied before it\n"
      "stays; run again to resume), 2 usage.");
  auto a = std::make_shared<CopyArgs>();
  AddRepoOption(sub, ctx);
  sub->add_option("--from", ctx.repo, "Source repository (the same as --repo)");
  sub->add_option("--to", a->to, "Destination repository: a directory or s3:...")->required();
  sub->add_option("--snapshot", a->snapshots,
                  "Copy only this snapshot (ID, unique prefix, or latest); repeatable");
  sub->add_option("--stack", a->stack, "Copy only the snapshots of this stack (tag stack=NAME)");
  sub->add_flag("-n,--dry-run", a->opts.dry_run, "Say what would be copied; write nothing");
  AddRetryLockOption(sub, &a->retry_lock);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, a] {
    auto wait = ParseRetryLock(a->retry_lock, ctx);
    if (!wait.ok()) return void(ctx.exit_code = ReportError(ctx, wait.status()));
    a->opts.lock_wait = *wait;
    auto from = OpenRepoOrReport(ctx);
    if (!from) return;
    auto to = OpenRepositoryAt(ctx, a->to);
    if (!to.ok()) return void(ctx.exit_code = ReportError(ctx, to.status()));
    retention::SnapshotFilter filter;  // "latest" of --stack
    filter.stack = a->stack;
    for (const auto& ref : a->snapshots) {
      std::string id = ResolveOrReport(ctx, *from, ref, filter);
      if (id.empty()) return;
      a->opts.snapshots.push_back(id);
    }
    if (!a->stack.empty()) {
      auto snaps = from->ListSnapshots();
      if (!snaps.ok()) return void(ctx.exit_code = ReportError(ctx, snaps.status()));
      std::vector<std::string> picked;
      for (const auto& s : *snaps) {
        auto it = s.tags.find("stack");
        bool listed = a->opts.snapshots.empty() ||
                      std::find(a->opts.snapshots.begin(), a->opts.snapshots.end(), s.id) !=
                          a->opts.snapshots.end();
        if (it != s.tags.end() && it->second == a->stack && listed) picked.push_back(s.id);
      }
      if (picked.empty())
        return void(ctx.exit_code = ReportError(
                        ctx, Status::NotFound("no snapshot of stack '" + a->stack +
                                                  "' to copy (`mailvault snapshots` lists the "
                                                  "stack tags)",
                                              from->path())));
      a->opts.snapshots = picked;
    }
    bool tty = !ctx.quiet && !ctx.json && ::isatty(2);
    auto res = transfer::Copy(*from, **to, a->opts, [&](const transfer::CopyProgress& p) {
      if (!tty) return;
      if (std::string(p.phase) == "packs")
        std::cerr << "\rsending packs " << Mib(p.done) << " / " << Mib(p.total) << "\033[K"
                  << std::flush;
      else
        std::cerr << "\rsnapshots " << p.done << "/" << p.total << "\033[K" << std::flush;
    });
    if (tty) std::cerr << "\r\033[K" << std::flush;
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    storage::BackendStats up = (*to)->backend().stats();
    storage::BackendStats down = from->backend().stats();
    if (ctx.json) {
      nlohmann::json j = {{"from", from->path()},
                          {"to", (*to)->path()},
                          {"dry_run", res->dry_run},
                          {"copied", res->copied},
                          {"present", res->present},
                          {"packs_sent", res->packs_sent},
                          {"bytes_sent", res->bytes_sent},
                          {"packs_resumed", res->packs_resumed},
                          {"blobs_sent", res->blobs_sent},
                          {"blobs_present", res->blobs_present},
                          {"header_records", res->header_records}};
      if (!res->took_over_stale.empty()) j["notes"] = {res->took_over_stale};
      j["storage"] = {{"requests", up.requests + down.requests},
                      {"retries", up.retries + down.retries},
                      {"bytes_up", up.bytes_up},
                      {"bytes_down", down.bytes_down}};
      PrintJson(j);
      return;
    }
    if (!res->took_over_stale.empty()) std::cerr << "note: " << res->took_over_stale << "\n";
    if (ctx.quiet) return;
    std::cout << (res->dry_run ? "would copy " : "copied ") << res->copied.size()
              << " snapshot(s) to " << (*to)->path() << " (" << res->present.size()
              << " already there): " << res->packs_sent << " pack(s), " << Mib(res->bytes_sent)
              << (res->dry_run ? " to send" : " sent");
    if (res->packs_resumed) std::cout << ", " << res->packs_resumed << " found from an earlier run";
    std::cout << "\n";
    for (const auto& id : res->copied) std::cout << "  " << id.substr(0, 8) << "\n";
    if (ctx.verbose && (up.requests || down.requests))
      std::cerr << "storage: " << up.requests + down.requests << " request(s), "
                << up.retries + down.retries << " retried, " << up.bytes_up << " bytes up, "
                << down.bytes_down << " bytes down\n";
  });
}

}  // namespace mv::agent
