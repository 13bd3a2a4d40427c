// `mailvault check`: the read-only repository check (verify/check.h).
#include <unistd.h>

#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "storage/crypto/keyless_check.h"
#include "storage/s3/open.h"
#include "verify/check.h"
#include "verify/verify_json.h"

namespace mv::agent {
namespace {

void PrintCheck(const verify::CheckResult& r, std::ostream& out, bool keyless = false) {
  std::string what = keyless ? "check (without a key)" : "check";
  out << (r.ok() ? what + ": OK"
                 : what + ": DAMAGE FOUND (" + std::to_string(r.errors()) + " problem(s))")
      << " - " << r.snapshots << " snapshots, " << r.index_files << " index files, " << r.packs
      << " packs (" << HumanBytes(r.pack_bytes) << ")";
  if (keyless)
    out << ", every pack read and checked against its name";
  else
    out << ", " << r.blobs << " blobs; " << r.packs_read << " packs read, " << r.blobs_hashed
        << " blobs re-hashed";
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
  if (keyless)
    out << "Without a key: every pack's bytes were checked against its name, and every index "
           "file and\nmanifest is a well-formed encrypted file. What they hold, and whether every "
           "blob a\nsnapshot uses is there, needs the key: `mailvault check --password-file F` (or "
           "--identity-file).\n";
  if (!r.ok() && keyless)
    out << "\nA damaged pack or manifest loses what it holds. Run `mailvault check` with the key "
           "to see\nwhich snapshots, files and mailboxes are affected, and back up again now.\n";
  if (!r.ok() && !keyless)
    out << "\nThe snapshots listed above cannot be restored completely. Back up again now (new "
           "blobs are\n"
           "stored afresh for data no longer in the repository), and keep the damaged files for "
           "analysis.\n";
}

// Whether this run checks without a key: asked for, or an encrypted repository and no key that
// can read it (none given and no terminal to ask on, or only the agent's write-only key).
// Sets *config when the repository is encrypted.
Result<bool> ChecksWithoutKey(const CliContext& ctx, bool asked, storage::Backend& stored,
                              storage::RepoConfig* config) {
  MV_ASSIGN_OR_RETURN(*config, storage::ReadRepoConfig(stored));
  if (config->encryption.empty()) {
    if (asked)
      return Status::Invalid(
          "--without-key: the repository is not encrypted, so `check` needs no key; drop "
          "--without-key",
          stored.Describe());
    return false;
  }
  if (asked || OpensWithAgentKeyOnly(ctx)) return true;
  KeyFiles f = KeyFilesOf(ctx);
  return f.password.empty() && f.identity.empty() && f.agent.empty() &&
         ctx.keys.passphrase->empty() && !::isatty(STDIN_FILENO);
}

verify::CheckResult FromKeyless(const storage::crypto::KeylessCheck& k) {
  verify::CheckResult r;
  r.snapshots = k.snapshots;
  r.index_files = k.index_files;
  r.packs = r.packs_read = k.packs;
  r.pack_bytes = k.pack_bytes;
  for (const auto& p : k.problems) {
    verify::CheckProblem q;
    q.kind = p.kind;
    q.where = p.where;
    q.pack = p.pack;
    q.message = p.message;
    q.warning = p.warning;
    r.problems.push_back(std::move(q));
  }
  return r;
}

void RunKeylessCheck(CliContext& ctx, const storage::Backend& stored,
                     const storage::RepoConfig& config) {
  bool bar = !ctx.quiet && !ctx.json && ::isatty(STDERR_FILENO);
  auto res = storage::crypto::CheckWithoutKey(stored, config, [&](uint64_t done, uint64_t total) {
    if (bar) std::cerr << "\rchecking packs " << done << " / " << total << "\033[K" << std::flush;
  });
  if (bar) std::cerr << "\r\033[K" << std::flush;
  if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
  verify::CheckResult r = FromKeyless(*res);
  if (ctx.json) {
    nlohmann::json j = verify::ToJson(r);
    j["without_key"] = true;
    PrintJson(WithStorage(std::move(j), stored.stats()));
  } else {
    PrintCheck(r, std::cout, /*keyless=*/true);
  }
  PrintStorageLine(ctx, stored.stats());
  ctx.exit_code = r.ok() ? kExitOk : kExitError;
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
      "Without a key (an encrypted repository, version 9): with --without-key, with only the\n"
      "agent's write-only key, or with no key given and no terminal to ask on, `check` reads\n"
      "every pack and checks its bytes against its name (the hash of its encrypted file), and\n"
      "that every index file and manifest is a well-formed encrypted file. That proves the\n"
      "packs' integrity to whoever holds the bucket; what the files hold needs the key.\n\n"
      "Examples:\n"
      "  mailvault check --repo /backups/mailvault\n"
      "  mailvault check --repo /backups/mailvault --read-data-subset 1/7   # a seventh per night\n"
      "  mailvault check --repo s3:https://s3.example.net/b/mailu --without-key\n\n"
      "Exit: 0 no damage, 1 damage found or error, 2 usage.");
  AddRepoOption(sub, ctx);
  auto read_data = std::make_shared<bool>(false);
  auto subset = std::make_shared<std::string>();
  sub->add_flag("--read-data", *read_data, "Re-hash every blob of every pack");
  sub->add_option("--read-data-subset", *subset,
                  "Re-hash the blobs of a subset of packs: K/N or P%");
  auto without_key = std::make_shared<bool>(false);
  sub->add_flag("--without-key", *without_key,
                "Encrypted repository: check pack integrity and structure without any key");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, read_data, subset, without_key] {
    // Reading data proves the remote's bytes, not the local cache's copies.
    if (*read_data || !subset->empty()) ctx.s3.no_cache = true;
    {
      auto stored = storage::s3::OpenBackend(ctx.repo, ctx.s3);
      if (!stored.ok()) return void(ctx.exit_code = ReportError(ctx, stored.status()));
      storage::RepoConfig config;
      auto keyless = ChecksWithoutKey(ctx, *without_key, **stored, &config);
      // A missing repository or config: the usual open below says what to do.
      if (!keyless.ok() && *without_key)
        return void(ctx.exit_code = ReportError(ctx, keyless.status()));
      if (keyless.ok() && *keyless) {
        if (*read_data || !subset->empty())
          return void(ctx.exit_code = ReportError(
                          ctx, Status::Invalid("--read-data re-hashes the blobs inside the "
                                               "encrypted packs, which needs the key: give "
                                               "--password-file or --identity-file, or drop "
                                               "--read-data")));
        ctx.s3.no_cache = true;  // the packs themselves, from the remote
        auto remote = storage::s3::OpenBackend(ctx.repo, ctx.s3);
        if (!remote.ok()) return void(ctx.exit_code = ReportError(ctx, remote.status()));
        return RunKeylessCheck(ctx, **remote, config);
      }
    }
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
