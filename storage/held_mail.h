// Held mail records (docs/FORMAT.md §12): messages that a forget removed the last snapshot of,
// kept restorable for a period (`forget --keep-deleted-mail 30d`). A record names each message
// (its path, mailbox, folder, unique name, file metadata and content blobs) and when it was last
// seen; prune counts the blobs of every message not yet expired as used, and `restore
// --deleted-since` brings them back.
//
// Records are sealed files `held/<random>`, written once before the manifests they outlive are
// removed, and removed by prune once every message in them has expired.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/repository.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

struct HeldMessage {
  FileEntry entry;  // path "<source>/<mailbox>[/<folder>]/{cur,new}/<file>", metadata, blobs
  std::string source_path;   // the source's host path at backup time
  std::string mailbox;       // Maildir root relative to the source ("alice@example.org")
  std::string folder;        // "INBOX" or ".Sent", ...
  std::string name;          // the message's unique name (the file name before ":2,")
  std::string snapshot;      // the newest snapshot that held it (removed by the forget)
  int64_t last_seen_ns = 0;  // that snapshot's time
  int64_t expires_ns = 0;    // until when prune keeps it: last_seen_ns + the period
};

struct HeldRecord {
  std::string path;     // its file
  int64_t time_ns = 0;  // when the forget wrote it
  std::vector<HeldMessage> messages;
  // The latest expiry among its messages: prune removes the record once it has passed.
  int64_t expires_ns() const;
};

// Writes one record holding `messages` (temp file, fsync, rename, fsync the directory), after
// raising the repository's config to the format version that knows records (§1 version 5), so
// that an older build, whose prune would give their blobs back, refuses the repository. The
// caller holds the exclusive lock.
Status RecordHeldMail(const Repository& repo, int64_t now_ns,
                      const std::vector<HeldMessage>& messages);

// Every record. A record that cannot be read is named in *damaged and skipped: a prune must stop
// on it (the blobs it holds would look unused). A missing held/ directory is no records.
Result<std::vector<HeldRecord>> LoadHeldMail(const Repository& repo,
                                             std::vector<std::string>* damaged);

// Decodes a record file's bytes (what LoadHeldMail does per file); `path` names it in errors.
// kCorruption for anything that is not a whole, valid record.
Result<HeldRecord> DecodeHeldRecord(std::string_view data, const std::string& path);

// Removes a record's file (prune, once every message in it has expired) and fsyncs held/.
Status RemoveHeldRecord(const Repository& repo, const std::string& path);

// What the records still hold at `now_ns` (expired messages are not counted).
struct HeldSummary {
  uint64_t messages = 0, bytes = 0;
  int64_t first_expiry_ns = 0, last_expiry_ns = 0;  // 0 when nothing is held
};
HeldSummary SummarizeHeld(const std::vector<HeldRecord>& records, int64_t now_ns);

// The format version that brought held mail (docs/FORMAT.md, version 5): what held mail records
// and prune raise a repository to.
constexpr int kHeldMailFormatVersion = 5;

// Raises config's "version" to kHeldMailFormatVersion when it is lower (written atomically: the
// old or the new version, never half), so builds that do not know what is about to be written
// refuse the repository instead of misreading it. Not higher: version-5 builds keep working with
// it. Every other field is kept as it was.
Status RaiseConfigVersion(const Repository& repo);

}  // namespace mv::storage
