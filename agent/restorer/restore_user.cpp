// agent/restorer/restore_user.h.
#include "agent/restorer/restore_user.h"

#include <stdlib.h>
#include <unistd.h>

#include "agent/restorer/entries_restore.h"
#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"
#include "storage/fs.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

// A scratch directory removed with everything in it when it goes.
struct Scratch {
  std::string path;
  bool owned = false;
  ~Scratch() {
    if (owned) (void)storage::fs::RemoveTree(path);
  }
};

// Restores the database entry `e` of the snapshot as the plain file <dir>/<name>.
Status RestoreImage(const storage::BlobReader& blobs, const FileEntry& e, const std::string& dir,
                    const std::string& name) {
  std::vector<FileEntry> entries(2);
  entries[0].path = "db";
  entries[0].type = FileType::kDirectory;
  entries[0].mode = 0700;
  entries[0].uid = ::geteuid();
  entries[0].gid = ::getegid();
  entries[1] = e;
  entries[1].path = "db/" + name;
  entries[1].flags &= ~(storage::kFlagSqlite | storage::kFlagHardLink);
  entries[1].link_target.clear();
  entries[1].uid = ::geteuid();
  entries[1].gid = ::getegid();
  storage::SnapshotMeta m;
  m.id = "user-database";
  m.sources.push_back({"db", dir});
  m.files = 1;
  m.bytes = e.size;
  RestoreOptions ro;
  ro.source_targets["db"] = dir;
  ro.sync = false;  // a scratch copy, read once
  MV_ASSIGN_OR_RETURN(RestoreResult r, RestoreEntries(blobs, std::move(entries), m, ro));
  if (!r.problems.empty())
    return Status::Corruption(
        "the snapshot's copy of the database cannot be restored: " + r.problems[0].message, e.path);
  return Status::Ok();
}

}  // namespace

Result<UserRestoreResult> RestoreUser(const storage::BlobReader& blobs,
                                      const UserRestoreOptions& opts, const ProgressFn& progress) {
  UserRestoreResult res;
  if (opts.user.empty() || opts.user.find('/') != std::string::npos || opts.user[0] == '.')
    return Status::Invalid("--user '" + opts.user +
                           "' is not an account name: give the address, alice@example.org");
  if (!opts.into.empty()) MV_RETURN_IF_ERROR(MaildirFolderDir(opts.into).status());
  storage::SnapshotMeta meta;
  MV_ASSIGN_OR_RETURN(auto cursor, blobs.OpenEntries(opts.snapshot, &meta));
  const std::string sid = meta.id.substr(0, 8);
  for (const auto& r : meta.census)
    if (r.mailbox == opts.user && res.mailbox_source.empty()) res.mailbox_source = r.source;

  // The snapshot's SQLite databases, and the one that holds the users.
  std::vector<FileEntry> dbs;
  std::vector<std::string> all_dbs;
  FileEntry e;
  for (;;) {
    MV_ASSIGN_OR_RETURN(bool more, cursor->Next(&e));
    if (!more) break;
    if (e.type != FileType::kRegular || !(e.flags & storage::kFlagSqlite)) continue;
    all_dbs.push_back(e.path);
    if (opts.db.empty() || e.path == opts.db) dbs.push_back(e);
  }
  if (!opts.db.empty() && dbs.empty())
    return Status::NotFound("--user-db " + opts.db + " is not an SQLite database of snapshot " +
                            sid + " (its databases: " + Joined(all_dbs) + ")");
  Scratch scratch{opts.scratch};
  if (scratch.path.empty()) {
    const char* tmp = ::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/mailvault-user-XXXXXX";
    if (!::mkdtemp(templ.data()))
      return Status::IOError("cannot make a scratch directory: " + std::string(strerror(errno)),
                             templ);
    scratch = {templ, true};
  }
  std::vector<std::pair<FileEntry, std::string>> holding;  // entry, image path
  for (size_t i = 0; i < dbs.size(); i++) {
    std::string name = std::to_string(i) + ".db";
    MV_RETURN_IF_ERROR(RestoreImage(blobs, dbs[i], scratch.path, name));
    std::string image = scratch.path + "/" + name;
    if (hooks::HasUserTables(image, opts.tables)) holding.emplace_back(dbs[i], image);
  }
  const auto& first = opts.tables.tables.at(0);
  if (holding.size() > 1) {
    std::vector<std::string> names;
    for (const auto& [h, _] : holding) names.push_back(h.path);
    return Status::Invalid("several databases of snapshot " + sid + " have table " + first.table +
                           "(" + first.column + "): " + Joined(names) +
                           "; name the one with --user-db");
  }
  std::string image;
  if (!holding.empty()) {
    res.db = holding[0].first.path;
    image = holding[0].second;
  }

  auto live_dir = [&](const std::string& source) -> Result<std::string> {
    if (auto it = opts.source_dirs.find(source); it != opts.source_dirs.end()) return it->second;
    if (!opts.target.empty()) return storage::fs::Join(opts.target, source);
    return Status::Invalid("source '" + source + "' of snapshot " + sid +
                           " has no live directory here");
  };
  if (!res.db.empty()) {
    std::string source = res.db.substr(0, res.db.find('/'));
    MV_ASSIGN_OR_RETURN(std::string dir, live_dir(source));
    res.live_db = storage::fs::Join(dir, res.db.substr(source.size() + 1));
    if (!storage::fs::Exists(res.live_db))
      return Status::NotFound(
          "the live database is missing: --user inserts rows into a live database; restore the "
          "whole database with --include " +
              res.db,
          res.live_db);
    // A dry run first: checks the schemas and finds the rows before anything is written.
    MV_ASSIGN_OR_RETURN(auto plan,
                        hooks::RestoreUserRows(image, res.live_db, opts.tables, opts.user, true));
    res.rows = std::move(plan);
  } else {
    res.notes.push_back("snapshot " + sid + " has no SQLite database with table " + first.table +
                        "(" + first.column + ") (its databases: " + Joined(all_dbs) +
                        "): no rows restored");
  }
  bool any_row = res.rows && !res.rows->rows.empty();
  if (res.mailbox_source.empty() && !any_row)
    return Status::NotFound("--user " + opts.user + " matches nothing in snapshot " + sid +
                            ": no mailbox of that name" +
                            (res.db.empty() ? "" : ", and no row of " + res.db) +
                            " (`mailvault snapshots --json` lists the census's mailboxes)");
  if (res.rows && !any_row) res.notes.push_back("no row of " + res.db + " belongs to " + opts.user);

  if (res.mailbox_source.empty()) {
    res.notes.push_back("snapshot " + sid + " has no mailbox " + opts.user + ": no mail restored");
  } else if (!opts.into.empty()) {
    IntoFolderOptions io;
    io.snapshot = opts.snapshot;
    io.mailbox = opts.user;
    io.into = opts.into;
    io.source_dirs = opts.source_dirs;
    io.target = opts.target;
    io.dry_run = opts.dry_run;
    io.threads = opts.threads;
    MV_ASSIGN_OR_RETURN(auto into, RestoreIntoFolder(blobs, io, progress));
    res.mailbox_dir = into.mailbox_dir;
    res.into = std::move(into);
  } else {
    MV_ASSIGN_OR_RETURN(std::string dir, live_dir(res.mailbox_source));
    res.mailbox_dir = storage::fs::Join(dir, opts.user);
    RestoreOptions ro;
    ro.snapshot = opts.snapshot;
    ro.includes = {res.mailbox_source + "/" + opts.user};
    if (opts.source_dirs.count(res.mailbox_source))
      ro.source_targets[res.mailbox_source] = dir;
    else
      ro.target = opts.target;
    ro.dry_run = opts.dry_run;
    ro.threads = opts.threads;
    MV_ASSIGN_OR_RETURN(auto mail, RunRestore(blobs, ro, progress));
    res.mail = std::move(mail);
  }
  if (!res.db.empty() && !opts.dry_run) {
    MV_ASSIGN_OR_RETURN(auto rows,
                        hooks::RestoreUserRows(image, res.live_db, opts.tables, opts.user, false));
    res.rows = std::move(rows);
  }
  return res;
}

}  // namespace mv::agent
