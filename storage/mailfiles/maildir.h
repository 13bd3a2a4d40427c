// Maildir awareness (docs/FORMAT.md §7.3): what is a Maildir, a Maildir++ folder, a message,
// and the census of messages per mailbox and folder. Used by the archiver at backup time and by
// verify on restored and live trees, so both count the same way.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "storage/hash.h"
#include "storage/snapshot.h"

namespace mv::mailfiles {

// A directory is a Maildir when it has the three subdirectories cur, new and tmp.
bool IsMaildir(bool has_cur, bool has_new, bool has_tmp);

// Where a Maildir directory sits: `rel_dir` is its path relative to the source root ("" for the
// root itself), `parent_is_maildir` whether its parent directory is a Maildir too.
// Maildir++: a ".Name" Maildir inside a Maildir is a folder of that mailbox.
struct MaildirPlace {
  std::string mailbox;  // mailbox root relative to the source ("alice@example.org"; "" = the root)
  std::string folder;   // "INBOX" or ".Sent", ".Archive.2024", ".A.B"
};
MaildirPlace PlaceOf(const std::string& rel_dir, bool parent_is_maildir);

// A folder as an operator types it, as the census names it: "inbox" (any case) is "INBOX",
// "Sent" is ".Sent", ".Sent" stays; "" stays "".
std::string FolderArg(std::string_view folder);

// The unique part of a Maildir message file name: everything before the ":2," info suffix.
std::string_view UniqueName(std::string_view file_name);

// dovecot's own files, kept as ordinary files (listed here for documentation and tests).
bool IsDovecotFile(std::string_view file_name);
// The per-folder state Dovecot keeps for itself (control and index files: dovecot-uidlist,
// dovecot-keywords, dovecot.index*, dovecot.list.index*, ...; and maildirsize, the quota):
// an old copy of one must never go into a live folder (new UIDs or UIDVALIDITY for every
// client, a wrong quota; ../shared/notes/dovecot-live-restore.md). A restore leaves the ones the
// target has as they are, unless --exact.
bool IsDovecotStateFile(std::string_view file_name);

// Accumulates the census. Order-independent: the digest of a folder is the sum (mod 2^64, per
// half) of its messages' content IDs, so the same messages in any order give the same digest.
class CensusBuilder {
 public:
  void AddFolder(const std::string& source, const MaildirPlace& place);  // counted even if empty
  void AddMessage(const std::string& source, const MaildirPlace& place, uint64_t size,
                  const storage::BlobId& content);
  // A folder's messages already summed (a count, bytes, and the two digest sums).
  void AddFolderSums(const std::string& source, const MaildirPlace& place, uint64_t messages,
                     uint64_t bytes, uint64_t lo, uint64_t hi);
  std::vector<storage::CensusRow> Rows() const;  // sorted by source, mailbox, folder

 private:
  struct Acc {
    uint64_t messages = 0, bytes = 0, lo = 0, hi = 0;
  };
  std::map<std::tuple<std::string, std::string, std::string>, Acc> acc_;
};

// Where the Maildirs are among manifest entries (paths "<source>/<rel>"): a directory with cur,
// new and tmp subdirectory entries. The one place these rules are applied to entries.
class MaildirIndex {
 public:
  explicit MaildirIndex(const std::vector<storage::FileEntry>& files);
  bool IsMaildirDir(const std::string& path) const;
  // Every Maildir directory found.
  std::vector<std::string> Dirs() const;
  // The place of Maildir directory `dir`; sets *source to its source name.
  MaildirPlace Place(const std::string& dir, std::string* source) const;
  // The Maildir holding message file `path` (directly in its cur/ or new/), or "" otherwise.
  std::string MaildirOfMessage(const std::string& path) const;

 private:
  std::unordered_map<std::string, int> subdirs_;  // dir -> bits for cur (1), new (2), tmp (4)
};

// Census of a snapshot's manifest (what the snapshot claims to hold), recomputed from its file
// entries: used by verify to cross-check the recorded census and by restore-side comparisons.
std::vector<storage::CensusRow> CensusOfEntries(const std::vector<storage::FileEntry>& files);

}  // namespace mv::mailfiles
