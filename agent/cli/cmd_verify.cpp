// `mailvault verify`: restore a snapshot to scratch and prove it (agent/jobs/verify_run.h).
#include <ctime>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "agent/jobs/verify_run.h"
#include "verify/verify_json.h"

namespace mv::agent {
namespace {

using verify::MessageRef;

void ListRefs(std::ostream& out, const char* title, const std::vector<MessageRef>& v, size_t max) {
  if (v.empty()) return;
  out << "  " << title << " (" << v.size() << "):\n";
  for (size_t i = 0; i < v.size() && i < max; i++)
    out << "    " << v[i].mailbox << " " << v[i].folder << "  " << v[i].unique << "\n";
  if (v.size() > max) out << "    ... and " << v.size() - max << " more (--json lists up to 200)\n";
}

void ListFolders(std::ostream& out, const char* title, const std::vector<verify::FolderDiff>& v,
                 const char* base, const char* other) {
  if (v.empty()) return;
  out << "  " << title << ":\n";
  for (const auto& f : v) {
    out << "    " << f.source << "/" << f.mailbox << " " << f.folder << ": ";
    if (f.missing_in_other)
      out << "only in " << base << " (" << f.base_messages << " messages)\n";
    else if (f.missing_in_base)
      out << "only in " << other << " (" << f.other_messages << " messages)\n";
    else
      out << base << " " << f.base_messages << " messages/" << f.base_bytes << " B, " << other
          << " " << f.other_messages << "/" << f.other_bytes << " B"
          << (f.digest_differs ? ", contents differ" : "") << "\n";
  }
}

void PrintDatabase(std::ostream& out, const verify::DatabaseCheck& d) {
  if (d.raw_copy) {
    out << "  " << d.path
        << ": raw copy (not a database image: SQLite could not open it at backup), "
        << (d.content_matches ? "restored as stored" : "DIFFERS from the stored bytes") << "\n";
    return;
  }
  out << "  " << d.path << ": integrity " << (d.integrity_ok ? "ok" : "FAILED") << ", image "
      << (d.content_matches ? "matches the recorded one" : "DIFFERS from the recorded one") << "\n";
  for (const auto& p : d.integrity_problems) out << "    " << p << "\n";
  if (d.live_path.empty()) return;
  if (!d.live_problem.empty()) out << "    " << d.live_problem << "\n";
  if (!d.error.empty()) out << "    live diff failed: " << d.error << "\n";
  if (!d.vs_live) return;
  const char* kind = d.live_unchanged_since ? "LOSS (live unchanged since the snapshot)"
                                            : "drift since the snapshot";
  if (d.vs_live->identical())
    out << "    live " << d.live_path << ": same rows\n";
  else
    out << "    live " << d.live_path << ": rows differ, " << kind << ":\n";
  auto keys = [](const verify::RowKey& k) {
    std::string s;
    for (const auto& v : k.values) s += (s.empty() ? "" : ",") + v;
    return s;
  };
  for (const auto& t : d.vs_live->tables) {
    if (t.identical()) continue;
    out << "      " << t.table << ": snapshot " << t.rows_base << " rows, live " << t.rows_other
        << "; " << t.added_count << " only live, " << t.removed_count << " only in snapshot, "
        << t.changed_count << " changed\n";
    for (const auto& k : t.added) out << "        only live:        " << keys(k) << "\n";
    for (const auto& k : t.removed) out << "        only in snapshot: " << keys(k) << "\n";
    for (const auto& c : t.changed) {
      std::string cols;
      for (const auto& col : c.columns) cols += (cols.empty() ? "" : ",") + col;
      out << "        changed:          " << keys(c.key) << " (" << cols << ")\n";
    }
  }
}

// The verdict line and one "!" line per finding: all that --quiet prints, and only when the
// snapshot is not complete and consistent.
void PrintVerdict(const verify::VerifyResult& r, std::ostream& out) {
  auto errors = r.Errors();
  std::string unreadable =
      std::to_string(r.unreadable_at_backup) + " file(s) could not be read at backup time";
  if (!errors.empty())
    out << "RESULT: FAILED - " << errors.size() << " problem(s) found\n";
  else if (r.partial())
    out << "RESULT: PARTIAL - what the snapshot holds is intact, but " << unreadable
        << " and are not in it\n";
  else
    out << "RESULT: OK - the snapshot is complete and consistent\n";
  for (const auto& e : errors) out << "  ! " << e << "\n";
  if (r.partial() && !errors.empty())
    out << "  ! partial snapshot: " << unreadable << " and are not in it\n";
}

std::string SqliteSummary(const verify::DatabaseCheck& d) {
  std::string s = d.loss() ? "LOSS" : "ok";
  if (d.raw_copy) s += ", raw copy (not a database image)";
  if (d.vs_live && !d.vs_live->identical() && !d.loss()) s += " (rows drifted since, normal)";
  if (d.live == verify::LiveDb::kMissing)
    s += "; live database MISSING";
  else if (d.live == verify::LiveDb::kUnreadable)
    s += "; live database UNREADABLE";
  else if (d.live == verify::LiveDb::kDamaged)
    s += "; live database DAMAGED";
  else if (!d.error.empty())
    s += "; live comparison FAILED";
  return s;
}

void PrintUnreadable(const verify::VerifyResult& r, std::ostream& out) {
  if (!r.partial()) return;
  out << "  not in the snapshot: " << r.unreadable_at_backup
      << " file(s) the backup could not read";
  if (r.unreadable_paths.empty()) {
    out << " (the snapshot does not record which; the backup's output listed them as warnings)\n";
    return;
  }
  out << ":\n";
  for (const auto& p : r.unreadable_paths) out << "    " << p << "\n";
}

void PrintVerify(const VerifyRun& run, const storage::SnapshotMeta& meta, bool kept,
                 std::ostream& out) {
  const auto& r = run.result;
  out << "verify snapshot " << r.snapshot_id.substr(0, 8) << " of " << HumanTime(meta.time) << " ("
      << HumanAge(::time(nullptr) - meta.time) << " ago), host " << meta.host << "\n";
  PrintVerdict(r, out);
  out << "  snapshot holds " << r.files << " files (" << HumanBytes(r.bytes) << "), " << r.messages
      << " messages in " << r.mailboxes << " mailboxes / " << r.folders << " folders; "
      << r.lost_messages() << " messages lost\n";
  for (const auto& l : r.live)
    if (!l.messages.empty() || !l.census.empty())
      out << "  live " << l.source << ": " << l.messages.only_other.size() << " arrived since, "
          << l.messages.only_base.size() << " deleted since, " << l.messages.moved.size()
          << " moved, " << l.messages.changed.size() << " changed under the same name\n";
  for (const auto& d : r.databases)
    out << "  sqlite " << d.path << ": " << SqliteSummary(d) << "\n";
  if (kept) out << "  restored tree kept in " << run.scratch << "\n";

  out << "\nDetails\n";
  PrintUnreadable(r, out);
  for (const auto& p : r.restore_problems) out << "  restore: " << p << "\n";
  for (const auto& d : r.damaged_files) {
    out << "  damaged: " << d.path << (d.mailbox.empty() ? "" : " (mailbox " + d.mailbox + ")")
        << ": " << d.what << "\n";
    for (const auto& s : d.other_snapshots)
      out << "    same damaged blob in snapshot " << s << "\n";
  }
  ListFolders(out, "census recorded at backup vs manifest", r.recorded_vs_manifest, "recorded",
              "manifest");
  ListFolders(out, "census recorded at backup vs restored", r.recorded_vs_restored, "recorded",
              "restored");
  ListRefs(out, "LOST messages (in the snapshot, not restored)", r.snapshot_vs_restored.only_base,
           50);
  ListRefs(out, "CHANGED messages (restored content differs)", r.snapshot_vs_restored.changed, 50);
  ListRefs(out, "MISPLACED messages (restored in another folder)", r.snapshot_vs_restored.moved,
           50);
  for (const auto& l : r.live) {
    if (l.messages.empty() && l.problems.empty()) continue;
    out << "  live source " << l.source << " (" << l.path << "):\n";
    ListRefs(out, "  arrived since the snapshot", l.messages.only_other, 20);
    ListRefs(out, "  deleted since the snapshot", l.messages.only_base, 20);
    ListRefs(out, "  moved to another folder since", l.messages.moved, 20);
    ListRefs(out, "  CHANGED content under the same name", l.messages.changed, 20);
    for (const auto& p : l.problems) out << "    unreadable: " << p << "\n";
  }
  for (const auto& d : r.databases) PrintDatabase(out, d);
  char took[96];
  std::snprintf(took, sizeof took, "  took %.2f s to restore, %.2f s to compare\n",
                run.restore_seconds, run.compare_seconds);
  out << took;
}

std::map<std::string, std::string> ParseSources(const std::vector<std::string>& specs, Status* st) {
  std::map<std::string, std::string> m;
  for (const auto& s : specs) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) {
      *st = Status::Invalid("--source '" + s +
                            "' must be NAME=DIR, NAME being a source name of the snapshot");
      return {};
    }
    m[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return m;
}

}  // namespace

void RegisterVerify(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "verify", "Restore a snapshot to scratch and prove it complete and consistent");
  sub->footer(
      "Restores the snapshot into a private scratch directory (re-hashing every blob), then\n"
      "compares: every file with its recorded content; the Maildir census (messages and bytes\n"
      "per mailbox and folder) with the census recorded at backup, exactly; each message, by its\n"
      "Maildir unique name, with the live sources (arrived/deleted since are normal, changed\n"
      "content is an error); SQLite databases by PRAGMA integrity_check and a row diff by\n"
      "primary key against the live database (read-only, one read transaction; values of\n"
      "password/secret/token columns are never shown).\n"
      "Live sources: --source NAME=DIR, else the host paths the snapshot recorded, if present.\n\n"
      "A live database that is missing, unreadable or damaged is a finding (exit 1).\n"
      "A partial snapshot (its backup exited 3) that restores intact is PARTIAL (exit 3):\n"
      "the files the backup could not read are not in it.\n"
      "-q prints nothing when the snapshot is complete and consistent, else the verdict and\n"
      "its findings. --scratch DIR is created if missing.\n\n" +
      std::string(kLatestHelp) +
      "\n\n"
      "Exit: 0 complete and consistent, 1 loss, corruption or a live-database finding (or\n"
      "error), 2 usage, 3 partial snapshot, otherwise intact.");
  AddRepoOption(sub, ctx);
  auto o = std::make_shared<VerifyRunOptions>();
  auto snap = std::make_shared<std::string>("latest");
  auto filter = std::make_shared<retention::SnapshotFilter>();
  auto against = std::make_shared<std::string>("both");
  auto sources = std::make_shared<std::vector<std::string>>();
  sub->add_option("--snapshot", *snap, "Snapshot ID, unique prefix, or 'latest' (default)");
  AddSnapshotFilterOptions(sub, filter.get());
  sub->add_option(
      "--scratch", o->scratch_parent,
      "Directory for the scratch restore, created if missing (default $TMPDIR or /var/tmp)");
  sub->add_flag("--keep", o->keep, "Keep the restored tree and print where it is");
  sub->add_option("--against", *against, "live, snapshot or both (default)")
      ->check(CLI::IsMember({"live", "snapshot", "both"}));
  sub->add_option("--source", *sources, "Live source NAME=DIR to compare with; repeatable");
  sub->add_option("--table", o->sqlite_tables,
                  "SQLite table to diff (default: every user table); repeatable");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, o, snap, filter, against, sources] {
    Status st;
    o->live = ParseSources(*sources, &st);
    if (!st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    o->against_live = *against != "snapshot";
    o->against_snapshot = *against != "live";
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    repo->backend().KeepReadPacks(kRestoreKeepPackBytes);
    o->snapshot = ResolveOrReport(ctx, *repo, *snap, *filter);
    if (o->snapshot.empty()) return;
    auto run = RunVerify(*repo, *o);
    WarnDamagedIndex(*repo);
    if (!run.ok()) return void(ctx.exit_code = ReportError(ctx, run.status()));
    if (!run->record_problem.empty()) std::cerr << "warning: " << run->record_problem << "\n";
    if (ctx.json) {
      auto j = verify::ToJson(run->result);
      if (o->keep) j["scratch"] = run->scratch;
      j["recorded"] = run->record_problem.empty();
      PrintJson(WithStorage(j, repo->backend().stats()));
    } else {
      auto snaps = repo->ListSnapshots();
      storage::SnapshotMeta meta;
      if (snaps.ok())
        for (const auto& m : *snaps)
          if (m.id == o->snapshot) meta = m;
      if (!ctx.quiet)
        PrintVerify(*run, meta, o->keep, std::cout);
      else if (!run->result.complete())
        PrintVerdict(run->result, std::cout);
    }
    const auto& r = run->result;
    ctx.exit_code = !r.ok() ? kExitError : r.partial() ? kExitPartial : kExitOk;
  });
}

}  // namespace mv::agent
