#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/restorer/restore.h"
#include "agent/restorer/restore_held.h"
#include "agent/restorer/restore_into_folder.h"
#include "agent/restorer/restore_user.h"
#include "storage/fs.h"
#include "agent/cli/time_arg.h"
#include "storage/held_mail.h"
#include "agent/cli/snapshot_ref.h"
#include "agent/cli/stack_report.h"

namespace mv::agent {
namespace {

nlohmann::json ToJson(const RestoreResult& r, const std::string& id, bool dry) {
  nlohmann::json j = {{"snapshot", id},
                      {"dry_run", dry},
                      {"files_written", r.stats.files_written},
                      {"files_failed", r.stats.files_failed},
                      {"files_unchanged", r.stats.files_unchanged},
                      {"files_conflict", r.stats.files_conflict},
                      {"dovecot_files_left", r.stats.dovecot_files_left},
                      {"dirs_created", r.stats.dirs_created},
                      {"symlinks_created", r.stats.symlinks_created},
                      {"bytes_written", r.stats.bytes_written},
                      {"seconds", r.stats.seconds},
                      {"problems", nlohmann::json::array()}};
  for (const auto& p : r.problems)
    j["problems"].push_back({{"path", p.path}, {"message", p.message}});
  j["kept"] = nlohmann::json::array();
  for (const auto& p : r.kept) j["kept"].push_back({{"path", p.path}, {"message", p.message}});
  if (dry) j["would_write"] = r.written;
  j[dry ? "would_remove" : "removed"] = r.removed;
  return j;
}

// A restore directory inside one of the snapshot's sources: the next backup of that source would
// take the restored copy for mail of its own (a phantom mailbox). Refused unless --force. `what`
// names the option ("--target DIR", "--to mail=DIR"); `own` is the source a --to maps, whose own
// directory is where it belongs (a restore into the live volume), not a phantom.
Status CheckOutsideSources(const storage::Repository& repo, const std::string& id,
                           const std::string& dir, const std::string& what,
                           const std::string& own = "") {
  namespace stdfs = std::filesystem;
  MV_ASSIGN_OR_RETURN(auto metas, repo.ListSnapshots());
  std::error_code ec;
  const stdfs::path t = stdfs::weakly_canonical(stdfs::absolute(dir, ec), ec);
  for (const auto& m : metas) {
    if (m.id != id) continue;
    for (const auto& s : m.sources) {
      if (s.path.empty()) continue;
      stdfs::path p = stdfs::weakly_canonical(stdfs::path(s.path), ec);
      if (ec) continue;
      if (s.name == own && p == t) continue;
      auto [pe, te] = std::mismatch(p.begin(), p.end(), t.begin(), t.end());
      if (pe == p.end())
        return Status::Invalid(
            what + " is inside source '" + s.name + "' (" + s.path +
            ") of this snapshot: the next backup of that source would record the restored copy "
            "as its own mail. Restore into a directory outside it (for a live restore, its "
            "parent, or --to " +
            s.name + "=" + s.path + "), or pass --force if that is what you want");
    }
  }
  return Status::Ok();
}

// --to NAME=DIR (repeatable): source NAME is restored into DIR itself (absolute), not into
// --target/NAME. The two exclude each other.
Status ParseSourceTargets(const std::vector<std::string>& to, const std::string& target,
                          std::map<std::string, std::string>* out) {
  if (!to.empty() && !target.empty())
    return Status::Invalid(
        "--target DIR (every source into DIR/<source>) and --to SOURCE=DIR (each source into a "
        "directory of its own) exclude each other: give one");
  for (const auto& m : to) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      return Status::Invalid("--to '" + m +
                             "': expected SOURCE=DIR, e.g. --to "
                             "mail=/var/lib/docker/volumes/mailu_mail/_data (the source names "
                             "are those `mailvault ls` shows at the top)");
    std::string name = m.substr(0, eq);
    std::error_code ec;
    std::string dir = std::filesystem::absolute(m.substr(eq + 1), ec).lexically_normal().string();
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (!out->emplace(name, dir).second)
      return Status::Invalid("--to names source '" + name + "' twice: give one directory for it");
  }
  return Status::Ok();
}

// Restoring into live volumes from a snapshot that is not the newest, or over a day old, asks
// first on a terminal; says how old it is in any case.
bool ConfirmOldSnapshot(CliContext& ctx, const storage::Repository& repo, const std::string& id,
                        bool yes) {
  auto snaps = repo.ListSnapshots();
  if (!snaps.ok()) return true;
  int64_t age = 0;
  bool newest = !snaps->empty() && snaps->back().id == id;
  for (const auto& m : *snaps)
    if (m.id == id) age = static_cast<int64_t>(::time(nullptr)) - m.time;
  std::cerr << "snapshot " << id.substr(0, 8) << " was taken " << HumanAge(age) << " ago"
            << (newest ? "" : " (newer snapshots exist)") << "\n";
  if (yes || (newest && age < 86400) || !::isatty(STDIN_FILENO)) return true;
  std::cerr << "Restore it into the LIVE volumes? Mail that arrived since is kept. [y/N] "
            << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer == "y" || answer == "Y" || answer == "yes") return true;
  std::cerr << "not restored\n";
  ctx.exit_code = kExitError;
  return false;
}

struct HeldArgs {
  std::string since, mailbox, into;
  std::vector<std::string> folders, messages;
  bool into_folder() const { return !into.empty(); }
  // Held deleted mail: --deleted-since, or a mailbox/folder/message filter without --into-folder.
  bool given() const {
    return !since.empty() ||
           (!into_folder() && (!mailbox.empty() || !folders.empty() || !messages.empty()));
  }
};

void PrintResultHuman(const RestoreResult& r, const RestoreOptions& o, const std::string& what) {
  for (const auto& p : r.kept) std::cerr << p.path << ": " << p.message << "\n";
  for (const auto& p : r.problems) std::cerr << p.path << ": " << p.message << "\n";
  for (const auto& x : r.removed)
    std::cout << (o.dry_run ? "would remove " : "removed ") << x << "\n";
  if (o.dry_run)
    for (const auto& w : r.written) std::cout << "would restore " << w << "\n";
  const auto& s = r.stats;
  std::cout << (o.dry_run ? "dry run: would restore " : "restored ") << s.files_written
            << " files (" << HumanBytes(s.bytes_written) << ") from " << what << " into "
            << o.target << "; " << s.files_unchanged << " already present, " << s.files_conflict
            << " kept (differ), " << s.dirs_created << " directories created";
  if (!o.dry_run) std::cout << ", in " << s.seconds << " s";
  std::cout << "\n";
  if (s.dovecot_files_left)
    std::cout << s.dovecot_files_left
              << " Dovecot index/control file(s) the target has left as they are (an old one "
                 "would renumber the folder for every client; --exact restores them). After "
                 "restoring into a live mailbox: doveadm quota recalc -u USER\n";
  if (s.files_failed)
    std::cout << "PARTIAL: " << s.files_failed
              << " failed: file(s) not restored (listed above, one line "
              << "each; nothing is left under their names); fix what the lines say and run the "
                 "restore again\n";
}

// restore --deleted-since: the held messages (storage/held_mail.h) the filter selects.
int RunHeldRestore(CliContext& ctx, storage::Repository& repo, const HeldArgs& h,
                   const RestoreOptions& o, ProgressPrinter& pp) {
  if (h.since.empty())
    return ReportError(ctx, Status::Invalid("--mailbox, --folder and --message without --snapshot "
                                            "select deleted mail: give --deleted-since DATE too"));
  if (o.target.empty())
    return ReportError(ctx, Status::Invalid("--deleted-since needs --target DIR (a live mailbox "
                                            "directory's parent works: nothing is overwritten)"));
  HeldMailFilter f;
  auto since = ParseTimeArg("--deleted-since", h.since, true);
  if (!since.ok()) return ReportError(ctx, since.status());
  f.since_ns = *since;
  if (h.folders.size() > 1 || h.messages.size() > 1)
    return ReportError(ctx, Status::Invalid("--deleted-since takes one --folder and one --message "
                                            "(run it once for each)"));
  f.mailbox = h.mailbox;
  f.folder = h.folders.empty() ? "" : h.folders[0];
  f.name = h.messages.empty() ? "" : h.messages[0];
  std::vector<std::string> damaged;
  auto records = storage::LoadHeldMail(repo, &damaged);
  if (!records.ok()) return ReportError(ctx, records.status());
  for (const auto& d : damaged)
    std::cerr << "mailvault: warning: " << d
              << " (its messages cannot be restored; run `mailvault check`)\n";
  int64_t now = repo.env()->NowNanos();
  auto messages = SelectHeldMail(*records, f, now);
  if (messages.empty()) {
    auto held = storage::SummarizeHeld(*records, now);
    return ReportError(
        ctx, Status::NotFound("no held deleted mail matches (last seen since " + h.since +
                              (h.mailbox.empty() ? "" : ", mailbox " + h.mailbox) +
                              (f.folder.empty() ? "" : ", folder " + f.folder) +
                              (f.name.empty() ? "" : ", message " + f.name) +
                              "): " + std::to_string(held.messages) +
                              " message(s) are held in all (`mailvault snapshots` says how many; "
                              "forget holds them with --keep-deleted-mail)"));
  }
  auto blobs = repo.OpenBlobReader();
  auto res = blobs.ok() ? RestoreHeldMail(**blobs, messages, o, pp.fn())
                        : Result<RestoreResult>(blobs.status());
  pp.Done();
  WarnDamagedIndex(repo);
  if (!res.ok()) return ReportError(ctx, res.status());
  if (ctx.json) {
    nlohmann::json j = ToJson(*res, "", o.dry_run);
    j.erase("snapshot");
    j["deleted_since"] = h.since;
    j["messages"] = nlohmann::json::array();
    for (const auto& m : messages)
      j["messages"].push_back({{"path", m.entry.path},
                               {"mailbox", m.mailbox},
                               {"folder", m.folder},
                               {"name", m.name},
                               {"last_seen", m.last_seen_ns / 1000000000LL},
                               {"snapshot", m.snapshot}});
    PrintJson(j);
  } else {
    PrintResultHuman(*res, o, std::to_string(messages.size()) + " held deleted message(s)");
  }
  return res->problems.empty() ? kExitOk : kExitPartial;
}

nlohmann::json IntoFolderJson(const IntoFolderResult& r, const std::string& mailbox,
                              const std::string& id, bool dry) {
  nlohmann::json j = ToJson(r.restore, id, dry);
  j["mailbox"] = mailbox;
  j["mailbox_dir"] = r.mailbox_dir;
  j["source"] = r.source;
  j["messages_selected"] = r.selected;
  j["messages_already_present"] = r.already_present;
  j["folders"] = nlohmann::json::array();
  for (const auto& f : r.folders)
    j["folders"].push_back({{"name", f.name},
                            {"dir", f.dir},
                            {"from", f.from},
                            {"messages", f.messages},
                            {"bytes", f.bytes}});
  j["subscribed"] = r.subscribed;
  if (!r.subscribe_problem.empty()) j["subscribe_problem"] = r.subscribe_problem;
  if (dry) j["would_write"] = r.would_write;
  return j;
}

// The user a mailbox directory belongs to, for doveadm -u: Mailu's and most layouts name it by
// the address ("alice@example.org"; "example.org/alice" -> alice@example.org).
std::string DoveadmUser(const std::string& mailbox) {
  auto slash = mailbox.find('/');
  if (slash == std::string::npos || mailbox.find('@') != std::string::npos) return mailbox;
  return mailbox.substr(slash + 1) + "@" + mailbox.substr(0, slash);
}

void PrintIntoFolderHuman(const IntoFolderResult& r, const HeldArgs& h, const std::string& id,
                          bool dry) {
  for (const auto& p : r.restore.problems) std::cerr << p.path << ": " << p.message << "\n";
  const std::string user = DoveadmUser(h.mailbox);
  if (r.folders.empty()) {
    std::cout << "nothing to restore: the " << r.selected << " selected message(s) of " << h.mailbox
              << " in snapshot " << id.substr(0, 8)
              << " are all in the live mailbox already (same unique name and content); no folder "
                 "was made\n";
    return;
  }
  if (dry)
    for (const auto& w : r.would_write) std::cout << "would restore " << w << "\n";
  uint64_t n = 0, bytes = 0;
  for (const auto& f : r.folders) n += f.messages, bytes += f.bytes;
  if (!dry) n = r.restore.stats.files_written, bytes = r.restore.stats.bytes_written;
  std::cout << (dry ? "dry run: would restore " : "restored ") << n << " message(s) ("
            << HumanBytes(bytes) << ") of " << h.mailbox << " from snapshot " << id.substr(0, 8)
            << " into " << (dry ? "new folder(s)" : "new folder(s), subscribed") << ":\n";
  for (const auto& f : r.folders)
    std::cout << "  '" << f.name << "' (from " << f.from << "): " << f.messages << " message(s) -> "
              << f.dir << "\n";
  if (r.already_present)
    std::cout << r.already_present
              << " selected message(s) are in the live mailbox already (same unique name and "
                 "content): skipped\n";
  if (dry) return;
  if (!r.subscribed)
    std::cerr << "mailvault: warning: the folder(s) are there, but not subscribed ("
              << r.subscribe_problem << "): doveadm mailbox subscribe -u " << user << " '"
              << r.folders[0].name << "'\n";
  if (r.restore.stats.files_failed)
    std::cout << "PARTIAL: " << r.restore.stats.files_failed
              << " message(s) failed (listed above); run again with a new --into-folder to add "
                 "the missing ones\n";
  std::cout << "next: doveadm quota recalc -u " << user
            << "   (Maildir++ quota does not see files added from outside)\n";
}

int IntoFolderExit(const IntoFolderResult& r) {
  return r.restore.problems.empty() ? kExitOk : kExitPartial;
}

// The part --into-folder and --user share: run `restore` on --target, or without it between the
// stack's restore hooks on its live volumes (`run` gets the source directories discovery found).
// `mail_of` is what of the result counts as the restore the stack's outcome reports. False: the
// error is reported and ctx.exit_code set.
template <typename R, typename Run, typename MailOf>
bool RunPartial(CliContext& ctx, storage::Repository& repo, const RestoreOptions& o,
                StackRestoreOptions& st, ProgressPrinter& pp, Run run, MailOf mail_of, R* result) {
  if (!o.target.empty()) {
    auto blobs = repo.OpenBlobReader();
    auto res = blobs.ok() ? run(**blobs, std::map<std::string, std::string>{}, pp.fn())
                          : Result<R>(blobs.status());
    pp.Done();
    WarnDamagedIndex(repo);
    if (!res.ok()) return ctx.exit_code = ReportError(ctx, res.status()), false;
    *result = std::move(*res);
    return true;
  }
  st.base = o;
  st.run = [&](const storage::BlobReader& blobs, const RestoreOptions& r,
               const ProgressFn& progress) -> Result<RestoreResult> {
    MV_ASSIGN_OR_RETURN(*result, run(blobs, r.source_targets, progress));
    return mail_of(*result);
  };
  if (!st.on_event) st.on_event = StackEventLogger(ctx);
  auto out = RestoreStack(repo, st, pp.fn());
  pp.Done();
  WarnDamagedIndex(repo);
  if (!out.ok()) return ctx.exit_code = ReportError(ctx, out.status()), false;
  if (out->status == StackStatus::kFailed) {
    if (ctx.json)
      PrintJson(StackRestoreOutcomeToJson(*out));
    else
      std::cerr << "mailvault: stack " << out->stack << ": " << out->message << "\n";
    ctx.exit_code = kExitError;
    return false;
  }
  return true;
}

// restore --into-folder: into --target (the parent of the source directories) or, without it,
// the live volumes of the snapshot's stack (through its restore hooks).
void RunIntoFolder(CliContext& ctx, storage::Repository& repo, const HeldArgs& h,
                   const RestoreOptions& o, StackRestoreOptions st, ProgressPrinter& pp) {
  if (h.mailbox.empty())
    return void(ctx.exit_code = ReportError(
                    ctx, Status::Invalid("--into-folder needs --mailbox (alice@example.org): the "
                                         "new folder is made in that live mailbox")));
  if (!o.includes.empty() || o.exact || o.overwrite)
    return void(ctx.exit_code = ReportError(
                    ctx, Status::Invalid("--into-folder selects with --mailbox, --folder and "
                                         "--message, and only adds: --include, --exact and "
                                         "--overwrite do not apply")));
  IntoFolderOptions io;
  io.snapshot = o.snapshot;
  io.mailbox = h.mailbox;
  io.folders = h.folders;
  io.messages = h.messages;
  io.into = h.into;
  io.target = o.target;
  io.dry_run = o.dry_run;
  io.threads = o.threads;
  if (auto name = MaildirFolderDir(h.into); !name.ok())
    return void(ctx.exit_code = ReportError(ctx, name.status()));
  IntoFolderResult result;
  auto run = [&](const storage::BlobReader& blobs, std::map<std::string, std::string> dirs,
                 const ProgressFn& progress) {
    io.source_dirs = std::move(dirs);
    return RestoreIntoFolder(blobs, io, progress);
  };
  auto mail_of = [](const IntoFolderResult& r) { return r.restore; };
  if (!RunPartial(ctx, repo, o, st, pp, run, mail_of, &result)) return;
  if (ctx.json)
    PrintJson(WithStorage(IntoFolderJson(result, h.mailbox, o.snapshot, o.dry_run),
                          repo.backend().stats()));
  else
    PrintIntoFolderHuman(result, h, o.snapshot, o.dry_run);
  ctx.exit_code = IntoFolderExit(result);
}

struct UserArgs {
  std::string user, tables_file, db;
};

const char* OutcomeName(hooks::UserRow::Outcome o) {
  switch (o) {
    case hooks::UserRow::Outcome::kInserted:
      return "inserted";
    case hooks::UserRow::Outcome::kPresent:
      return "present";
    case hooks::UserRow::Outcome::kDiffers:
      return "differs";
  }
  return "?";
}

nlohmann::json UserJson(const UserRestoreResult& r, const std::string& user, const std::string& id,
                        bool dry) {
  nlohmann::json j = {{"snapshot", id},         {"user", user},
                      {"dry_run", dry},         {"mailbox_dir", r.mailbox_dir},
                      {"notes", r.notes},       {"mail", nullptr},
                      {"into_folder", nullptr}, {"database", nullptr}};
  if (r.mail) j["mail"] = ToJson(*r.mail, id, dry);
  if (r.into) j["into_folder"] = IntoFolderJson(*r.into, user, id, dry);
  if (r.rows) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : r.rows->rows)
      rows.push_back({{"table", row.table},
                      {"key", row.key},
                      {"outcome", OutcomeName(row.outcome)},
                      {"columns", row.columns}});
    j["database"] = {{"path", r.db},
                     {"live", r.live_db},
                     {"inserted", r.rows->inserted},
                     {"present", r.rows->present},
                     {"differs", r.rows->differs},
                     {"missing_tables", r.rows->missing_tables},
                     {"rows", rows}};
  }
  return j;
}

void PrintUserHuman(const UserRestoreResult& r, const std::string& user, const std::string& id,
                    const RestoreOptions& o) {
  const bool dry = o.dry_run;
  std::cout << (dry ? "dry run: " : "") << "user " << user << " from snapshot " << id.substr(0, 8)
            << ":\n";
  if (r.mail) {
    RestoreOptions shown = o;
    shown.target = r.mailbox_dir;
    PrintResultHuman(*r.mail, shown, "mailbox " + user);
  }
  if (r.into) {
    HeldArgs h;
    h.mailbox = user;
    PrintIntoFolderHuman(*r.into, h, id, dry);
  }
  if (r.rows) {
    std::cout << "database " << r.db << " -> " << r.live_db << ": " << r.rows->inserted
              << (dry ? " row(s) would be inserted, " : " row(s) inserted, ") << r.rows->present
              << " present, " << r.rows->differs << " differ live (left as they are)\n";
    for (const auto& row : r.rows->rows) {
      if (row.outcome == hooks::UserRow::Outcome::kPresent) continue;
      std::cout << "  "
                << (row.outcome == hooks::UserRow::Outcome::kInserted
                        ? (dry ? "would insert " : "inserted ")
                        : "left (live differs in ");
      if (row.outcome == hooks::UserRow::Outcome::kDiffers) {
        for (size_t i = 0; i < row.columns.size(); i++)
          std::cout << (i ? ", " : "") << row.columns[i];
        std::cout << ") ";
      }
      std::cout << row.table << " " << row.key << "\n";
    }
    for (const auto& t : r.rows->missing_tables)
      std::cout << "  table " << t << " is not in the snapshot's database: skipped\n";
  }
  for (const auto& n : r.notes) std::cout << "note: " << n << "\n";
}

// restore --user: her mailbox (merged, or --into-folder) and her database rows.
void RunUserRestore(CliContext& ctx, storage::Repository& repo, const UserArgs& u,
                    const HeldArgs& h, const RestoreOptions& o, StackRestoreOptions st,
                    ProgressPrinter& pp) {
  if (!h.mailbox.empty() || !h.folders.empty() || !h.messages.empty() || !o.includes.empty() ||
      o.exact || o.overwrite)
    return void(ctx.exit_code = ReportError(
                    ctx, Status::Invalid("--user restores the user's whole mailbox and rows, "
                                         "adding only: --mailbox, --folder, --message, --include, "
                                         "--exact and --overwrite do not apply (use --mailbox M "
                                         "--into-folder NAME for one folder)")));
  UserRestoreOptions uo;
  uo.snapshot = o.snapshot;
  uo.user = u.user;
  uo.target = o.target;
  uo.into = h.into;
  uo.db = u.db;
  uo.dry_run = o.dry_run;
  uo.threads = o.threads;
  if (!u.tables_file.empty()) {
    auto text = storage::fs::ReadFile(u.tables_file);
    if (!text.ok())
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--user-tables " + u.tables_file +
                                           " cannot be read: " + text.status().message())));
    auto tables = hooks::ParseUserTables(*text, u.tables_file);
    if (!tables.ok()) return void(ctx.exit_code = ReportError(ctx, tables.status()));
    uo.tables = std::move(*tables);
  }
  UserRestoreResult result;
  auto run = [&](const storage::BlobReader& blobs, std::map<std::string, std::string> dirs,
                 const ProgressFn& progress) {
    uo.source_dirs = std::move(dirs);
    return RestoreUser(blobs, uo, progress);
  };
  auto mail_of = [](const UserRestoreResult& r) {
    if (r.mail) return *r.mail;
    return r.into ? r.into->restore : RestoreResult{};
  };
  if (!RunPartial(ctx, repo, o, st, pp, run, mail_of, &result)) return;
  if (ctx.json)
    PrintJson(WithStorage(UserJson(result, u.user, o.snapshot, o.dry_run), repo.backend().stats()));
  else
    PrintUserHuman(result, u.user, o.snapshot, o);
  bool partial = (result.mail && !result.mail->problems.empty()) ||
                 (result.into && !result.into->restore.problems.empty());
  ctx.exit_code = partial ? kExitPartial : kExitOk;
}

}  // namespace

void RegisterRestore(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("restore", "Restore a snapshot, or part of it, into a directory");
  sub->footer(
      "Restore snapshot --snapshot into --target: each source lands in TARGET/<source name>/.\n"
      "Content is bit-exact (every blob is re-hashed), with mode, mtime, symlinks (never\n"
      "followed) and numeric ownership when run as root. Nothing is ever written outside the\n"
      "target, whatever the snapshot's paths say.\n\n"
      "Onto a non-empty target nothing is deleted; an existing file that differs is kept and\n"
      "reported unless --overwrite; a Maildir message already present under other flags is\n"
      "not duplicated.\n\n"
      "--to SOURCE=DIR puts one source into DIR itself instead (repeatable; only the sources\n"
      "named are restored): a live volume outside a stack, e.g. one mailbox folder back into\n"
      "a running Mailu's mail volume (its files land at the paths they had in that volume).\n"
      "--dry-run prints every destination as an absolute path: check it before the real run.\n\n"
      "Without --target or --to, restores into the live volumes of the labelled swarm stacks.\n\n"
      "--snapshot defaults to 'latest': " +
      std::string(kLatestHelp) +
      " Here --stack also names the stack restored into.\n\n"
      "A file appears under its name only complete (written to a temp name, hash-checked,\n"
      "then renamed): after a kill or a full disk, run the same restore again.\n\n"
      "Deleted mail: `forget --keep-deleted-mail 30d` holds the messages that only the removed\n"
      "snapshots had; --deleted-since DATE (with --mailbox, --folder, --message to narrow it)\n"
      "restores those last seen at or after DATE, under their original paths below --target.\n\n"
      "Into a new folder: --mailbox M --into-folder NAME adds the snapshot's messages of M\n"
      "(--folder and --message narrow them) to a NEW Maildir++ folder of the live mailbox,\n"
      "subscribed, flags and received dates kept: one folder lands in NAME itself, several in\n"
      "NAME.<folder> (INBOX in NAME). Messages the live mailbox has (same unique name and\n"
      "content, any folder) are skipped, so running it twice adds nothing. It never writes into\n"
      "an existing folder, nor touches Dovecot's uidlist, indexes or quota file, so clients see\n"
      "one new folder and nothing else changes. Live means --target DIR is the parent of the\n"
      "source directories (as for a whole restore), or without --target the stack's volumes.\n\n"
      "One user: --user alice@example.org merges her mailbox into the live one (what the live\n"
      "mailbox lacks goes back into its folders; live mail stays; or --into-folder NAME) and\n"
      "inserts her rows of the stack's SQLite database (Mailu: user, alias rows whose\n"
      "destination lists her, token, fetch, manager) where the live database lacks them, in one\n"
      "transaction. Rows the live database has with other values are left and named by column;\n"
      "other users' rows are never touched. A whole-database restore (--include data/main.db)\n"
      "instead rolls the database back, other users' changes since included. --user-tables FILE\n"
      "describes another schema (docs/RESTORE.md).\n\n"
      "Examples:\n"
      "  mailvault restore -r /srv/repo --snapshot latest --target /tmp/r\n"
      "  mailvault restore -r /srv/repo --snapshot 1a2b3c4d -i mail/alice@example.org/.Sent \\\n"
      "      --target /srv/mail-volume-parent\n"
      "  mailvault restore -r /srv/repo -i mail/amy@example.org/.Sent --dry-run \\\n"
      "      --to mail=/var/lib/docker/volumes/mailu_mail/_data\n"
      "  mailvault restore -r /srv/repo --snapshot 1a2b3c4d --mailbox alice@example.org \\\n"
      "      --folder .Sent --into-folder \"Restored 2026-11-30\" --target /srv/mailu\n"
      "  mailvault restore -r /srv/repo --user alice@example.org --target /srv/mailu --dry-run\n"
      "  mailvault restore -r /srv/repo --deleted-since 2026-11-01 --mailbox alice@example.org \\\n"
      "      --target /tmp/alice-deleted\n\n"
      "Exit: 0 ok (files kept because they differ are listed, not an error), 1 error (e.g. no\n"
      "held mail matches), 2 usage, 3 partial (some files could not be restored; listed, one\n"
      "line each).");
  AddRepoOption(sub, ctx);
  auto o = std::make_shared<RestoreOptions>();
  auto snap = std::make_shared<std::string>();
  sub->add_option("--snapshot", *snap, "Snapshot ID, unique prefix, or 'latest' (default)");
  auto filter = std::make_shared<retention::SnapshotFilter>();
  AddSnapshotFilterOptions(sub, filter.get(), /*stack=*/false);
  auto held = std::make_shared<HeldArgs>();
  sub->add_option("--deleted-since", held->since,
                  "Instead of a snapshot: messages held by `forget --keep-deleted-mail` that were "
                  "last seen at or after this date (\"2026-11-30\", \"2026-11-30 03:00:00\")");
  sub->add_option("--mailbox", held->mailbox,
                  "With --into-folder: the mailbox (alice@example.org); with --deleted-since: "
                  "only this mailbox");
  sub->add_option("--folder", held->folders,
                  "With --into-folder or --deleted-since: only this folder (INBOX, .Sent or "
                  "Sent, ...); repeatable with --into-folder");
  sub->add_option("--message", held->messages,
                  "With --into-folder or --deleted-since: only the message with this unique name "
                  "(or file name); repeatable with --into-folder");
  auto user = std::make_shared<UserArgs>();
  sub->add_option("--user", user->user,
                  "One account back: her mailbox merged into the live one (or --into-folder) and "
                  "her rows of the stack's SQLite database inserted where the live one lacks them");
  sub->add_option("--user-tables", user->tables_file,
                  "With --user: which rows belong to a user, for a schema other than Mailu's "
                  "(lines \"<table> <column> equals|list\"; docs/RESTORE.md)");
  sub->add_option("--user-db", user->db,
                  "With --user: the database holding the users, as the snapshot names it "
                  "(data/main.db); default: the one with the first described table");
  sub->add_option("--into-folder", held->into,
                  "Add the messages --mailbox/--folder/--message select to a NEW folder of the "
                  "live mailbox, named so (\"Restored 2026-11-30\"); never touches another folder");
  sub->add_option("-t,--target", o->target,
                  "Directory to restore into (created if missing): each source lands in "
                  "TARGET/<source name>");
  auto to = std::make_shared<std::vector<std::string>>();
  sub->add_option("--to", *to,
                  "SOURCE=DIR: restore that source into DIR itself, e.g. a live volume "
                  "outside a stack (mail=/var/lib/docker/volumes/mailu_mail/_data); repeatable; "
                  "only the sources named are restored");
  sub->add_option("-i,--include", o->includes,
                  "Only this path and below, e.g. mail/alice@example.org; repeatable");
  sub->add_flag("--overwrite", o->overwrite, "Replace existing files whose content differs");
  sub->add_flag("-n,--dry-run", o->dry_run,
                "Print where each file would be written, as absolute paths (and, with --exact, "
                "what would be removed); change nothing");
  sub->add_flag("--exact", o->exact,
                "Make the restored trees identical to the snapshot: also remove what the snapshot "
                "does not hold (lists it) and replace differing files");
  auto force = std::make_shared<bool>(false);
  sub->add_flag("--force", *force,
                "Restore even into a directory inside one of the snapshot's sources (refused "
                "otherwise: the next backup would take the copy for mail)");
  auto yes = std::make_shared<bool>(false);
  sub->add_flag("-y,--yes", *yes,
                "Do not ask for confirmation before restoring an old snapshot into live volumes");
  sub->add_option("--threads", o->threads, "Parallel pack readers (default: number of cores)");
  auto st = std::make_shared<StackRestoreOptions>();
  sub->add_option(
      "--stack", st->stack,
      "'latest' of this stack; without --target also the stack to restore into (default: the "
      "snapshot's stack tag)");
  sub->add_option("--service", st->service, "Without --target: only the volumes of this service");
  sub->add_option("--volume", st->volume,
                  "Without --target: only this volume (label name, e.g. mail)");
  AddStackOptions(sub, *st);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, o, snap, st, yes, held, force, filter, user, to] {
    if (Status m = ParseSourceTargets(*to, o->target, &o->source_targets); !m.ok())
      return void(ctx.exit_code = ReportError(ctx, m));
    if (!to->empty() && (!user->user.empty() || held->given() || held->into_folder()))
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--to restores whole sources or --include paths of a "
                                           "snapshot; --user, --into-folder and --deleted-since "
                                           "take --target (or the stack's volumes)")));
    if (!o->target.empty()) {  // absolute, so that --dry-run and messages name real places
      std::error_code ec;
      auto abs = std::filesystem::absolute(o->target, ec);
      if (!ec) o->target = abs.lexically_normal().string();
    }
    if (user->user.empty() && (!user->tables_file.empty() || !user->db.empty()))
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--user-tables and --user-db go with --user EMAIL")));
    if (!user->user.empty() && !held->since.empty())
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--user restores from a snapshot; --deleted-since "
                                           "restores held deleted mail: give one or the other")));
    if (held->into_folder() && !held->since.empty())
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--into-folder restores from a snapshot; "
                                           "--deleted-since restores held deleted mail under its "
                                           "original path: give one or the other")));
    const bool held_mode = held->given() && user->user.empty();
    if (!snap->empty() && held_mode)
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--snapshot restores a snapshot; --deleted-since, "
                                           "--mailbox, --folder and --message select held "
                                           "deleted mail: give one or the other")));
    if (snap->empty() && !held_mode) *snap = "latest";
    filter->stack = st->stack;
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    repo->backend().KeepReadPacks(kRestoreKeepPackBytes);
    if (held_mode) {
      ProgressPrinter pp(ctx);
      ctx.exit_code = RunHeldRestore(ctx, *repo, *held, *o, pp);
      return;
    }
    std::string id = ResolveOrReport(ctx, *repo, *snap, *filter);
    if (id.empty()) return;
    o->snapshot = id;
    if (!user->user.empty()) {  // additive: no confirmation needed, nothing live is replaced
      ProgressPrinter pp(ctx);
      return RunUserRestore(ctx, *repo, *user, *held, *o, *st, pp);
    }
    if (held->into_folder()) {  // additive: no confirmation needed, nothing live changes
      ProgressPrinter pp(ctx);
      return RunIntoFolder(ctx, *repo, *held, *o, *st, pp);
    }
    // Without --target the restore goes into live directories: the stack's volumes, or --to's.
    if (o->target.empty() && !o->dry_run && !ConfirmOldSnapshot(ctx, *repo, id, *yes)) return;
    ProgressPrinter pp(ctx);
    if (o->target.empty() && o->source_targets.empty()) {
      st->base = *o;
      ctx.exit_code = RunAndReportStackRestore(ctx, *repo, *st, pp.fn());
      pp.Done();
      WarnDamagedIndex(*repo);
      return;
    }
    if (!*force) {
      Status inside = o->target.empty()
                          ? Status::Ok()
                          : CheckOutsideSources(*repo, id, o->target, "--target " + o->target);
      for (const auto& [name, dir] : o->source_targets)
        if (inside.ok())
          inside = CheckOutsideSources(*repo, id, dir, "--to " + name + "=" + dir, name);
      if (!inside.ok()) return void(ctx.exit_code = ReportError(ctx, inside));
    }
    auto blobs = repo->OpenBlobReader();
    auto res =
        blobs.ok() ? RunRestore(**blobs, *o, pp.fn()) : Result<RestoreResult>(blobs.status());
    pp.Done();
    WarnDamagedIndex(*repo);
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    if (ctx.json)
      PrintJson(WithStorage(ToJson(*res, id, o->dry_run), repo->backend().stats()));
    else
      PrintResultHuman(*res, *o, "snapshot " + id.substr(0, 8));
    PrintStorageLine(ctx, repo->backend().stats());
    ctx.exit_code = res->problems.empty() ? kExitOk : kExitPartial;
  });
}

}  // namespace mv::agent
