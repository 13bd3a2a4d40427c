// `restore --mailbox M --into-folder NAME`: brings messages of a snapshot back into a NEW
// Maildir++ folder of the live mailbox, additively (docs/RESTORE.md "Into a new folder";
// ../shared/notes/dovecot-live-restore.md for why each rule). It never writes into an existing
// folder and never touches dovecot-uidlist, dovecot.index*, maildirsize or another folder: the
// folder is built in the mailbox's tmp/ and renamed into place whole, with its `maildirfolder`
// marker, and then added to the mailbox's `subscriptions` file. A message whose unique name and
// content the live mailbox already has (in any folder) is skipped, so running the same restore
// twice adds nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/restorer/restore.h"

namespace mv::agent {

struct IntoFolderOptions {
  std::string snapshot;  // full ID
  std::string mailbox;   // the mailbox as the census names it ("alice@example.org")
  // Snapshot folders to restore ("INBOX", ".Sent"; "Sent" means ".Sent"); empty: every folder
  // of the mailbox. One folder lands in the new folder itself; several land in subfolders of it
  // (INBOX in the folder, ".Sent" in NAME.Sent).
  std::vector<std::string> folders;
  // Only these messages: unique names (the file name up to ":2,") or whole file names.
  std::vector<std::string> messages;
  std::string into;  // the new folder's name as the user sees it, '.' between levels
  // Where each snapshot source is live (source name -> directory): the mailbox is
  // <dir>/<mailbox>. Without it, <target>/<source name>.
  std::map<std::string, std::string> source_dirs;
  std::string target;
  bool dry_run = false;
  int threads = 0;
};

struct NewFolder {
  std::string name;  // as the user sees it ("Restored 2026-11-30.Sent")
  std::string dir;   // host path of the new Maildir++ folder
  std::string from;  // the snapshot folder ("INBOX", ".Sent")
  uint64_t messages = 0, bytes = 0;
};

struct IntoFolderResult {
  std::string source;       // the snapshot source holding the mailbox
  std::string mailbox_dir;  // host path of the live mailbox
  std::vector<NewFolder>
      folders;                   // made (or, in a dry run, that would be); empty if nothing to add
  uint64_t selected = 0;         // messages the snapshot has that the options select
  uint64_t already_present = 0;  // of those, skipped: same unique name and content live
  // Whether the new folders were added to `subscriptions`; if not, why (the folders are there).
  bool subscribed = false;
  std::string subscribe_problem;
  std::vector<std::string> would_write;  // dry run: "<folder name>/<cur|new>/<file>"
  RestoreResult restore;                 // the messages written: counts and per-file problems
};

// Runs the restore (or, with dry_run, plans it and writes nothing). Errors before anything is
// written: the mailbox, a folder or a message not in the snapshot (naming what is), a bad
// folder name, a live mailbox that is missing, and a folder that exists already while there is
// something to add (name a new one).
Result<IntoFolderResult> RestoreIntoFolder(const storage::BlobReader& blobs,
                                           const IntoFolderOptions& opts,
                                           const ProgressFn& progress = {});

// The directory name of a Maildir++ folder named `name` as the user sees it: "." + the name,
// each level in IMAP's modified UTF-7 (RFC 3501 5.1.3), levels separated by '.'.
// "Restored 2026-11-30" -> ".Restored 2026-11-30", "Zurück" -> ".Zur&APw-ck". Refused, with the
// rule: empty, '/', a leading or trailing '.', an empty level, '..', a control character, '*' or
// '%', invalid UTF-8, INBOX as the first level, more than 200 bytes.
Result<std::string> MaildirFolderDir(const std::string& name);

}  // namespace mv::agent
