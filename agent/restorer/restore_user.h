// `restore --user alice@example.org`: one account back, mail and database rows, without rolling
// back anything else (docs/RESTORE.md "One user"). Her mailbox is merged into the live one (what
// the snapshot holds and the live mailbox lacks goes back into its original folders, live mail
// stays, as a restore onto a non-empty target does) or, with --into-folder, added as one new
// folder (restore_into_folder.h). Her rows of the stack's SQLite database (hooks/user_rows.h)
// are inserted into the live database where it lacks them. A whole-database restore is the
// other tool: it puts the database back as it was, other users' changes since included.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "agent/restorer/restore.h"
#include "agent/restorer/restore_into_folder.h"
#include "hooks/user_rows.h"

namespace mv::agent {

struct UserRestoreOptions {
  std::string snapshot;  // full ID
  std::string user;      // "alice@example.org": her mailbox (as the census names it) and rows
  // Where the snapshot's sources are live: source -> directory, or <target>/<source>.
  std::map<std::string, std::string> source_dirs;
  std::string target;
  std::string into;  // "": merge the mailbox into its folders; else the new folder's name
  // The database that holds the users: "<source>/<path>" in the snapshot; "": the SQLite
  // database of the snapshot whose first described table has its column.
  std::string db;
  hooks::UserTables tables = hooks::MailuUserTables();
  std::string scratch;  // where the snapshot's database image is put (a fresh temp dir if empty)
  bool dry_run = false;
  int threads = 0;
};

struct UserRestoreResult {
  std::string mailbox_source;            // "" when the snapshot has no mailbox of the user
  std::string mailbox_dir;               // the live mailbox
  std::optional<RestoreResult> mail;     // merged
  std::optional<IntoFolderResult> into;  // or added as a new folder
  std::string db;       // "<source>/<path>" of the database in the snapshot; "" if none
  std::string live_db;  // its live path
  std::optional<hooks::UserRowsResult> rows;
  std::vector<std::string> notes;  // what was not there to restore (no mailbox, no database)
};

// Errors before anything is written: a user the snapshot knows nowhere (no mailbox, no row),
// several candidate databases (name one), a live database missing, a bad --into-folder.
Result<UserRestoreResult> RestoreUser(const storage::BlobReader& blobs,
                                      const UserRestoreOptions& opts,
                                      const ProgressFn& progress = {});

}  // namespace mv::agent
