// The incident toolkit's searches (docs/RESTORE.md "Finding mail"): `find` (which snapshots
// hold a message like this, where, from when to when), `history` (a mailbox's folders across
// snapshots, and what disappeared between two) and `index-headers` (header records for
// snapshots written before they existed). They read the header records (storage/header_index.h)
// and the snapshots' trees, never a message, except index-headers, which reads each message
// not yet indexed once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/progress.h"
#include "storage/header_index.h"
#include "storage/repository.h"

namespace mv::agent {

// Where a message sits in a snapshot: "<source>/<mailbox>[/.<Folder>]/{cur,new}/<file>".
struct MessagePlace {
  std::string source, mailbox, folder, file;  // folder "INBOX" or ".Sent"
  std::string unique;                         // file up to ":2,"
};
// nullopt when `path` is not a message path (a file directly in cur/ or new/).
std::optional<MessagePlace> PlaceOfMessage(const std::string& path);

struct FindQuery {
  std::string mailbox, folder;    // exact ("alice@example.org", "INBOX" or ".Sent"); "" any
  std::string message_id;         // exact, with or without <>
  std::string from, to, subject;  // case-insensitive substrings
  int64_t since = 0, until = 0;   // the Date header, Unix seconds (inclusive); 0: no bound
  bool HasHeaderFilter() const {
    return !message_id.empty() || !from.empty() || !to.empty() || !subject.empty() || since ||
           until;
  }
};

struct FoundMessage {
  MessagePlace place;
  storage::MessageHeaders headers;            // content, size and the fields
  std::string first_snapshot, last_snapshot;  // full IDs
  int64_t first_time = 0, last_time = 0;      // their times (Unix seconds)
  uint64_t snapshots = 0;                     // how many of the searched snapshots hold it
};

struct FindResult {
  std::vector<FoundMessage> messages;  // by Date, then mailbox, folder, name
  uint64_t indexed = 0;                // messages the header records know
  uint64_t snapshots_searched = 0;
  std::vector<std::string> damaged;  // header records or snapshots that could not be read
};

// Searches `snapshots` (oldest first is not required). Each directory tree shared between
// snapshots is read once.
Result<FindResult> FindMail(const storage::Repository& repo,
                            const std::vector<storage::SnapshotMeta>& snapshots,
                            const FindQuery& query, const ProgressFn& progress = {});

// The messages of `mailbox` in snapshot `a` whose content is in no folder of it in snapshot `b`
// (deleted, or changed, between the two), with their header fields when indexed.
struct Disappeared {
  std::vector<FoundMessage> messages;  // first/last snapshot: a
  uint64_t appeared = 0;               // messages of b whose content a's mailbox did not have
};
Result<Disappeared> MailboxDiff(const storage::Repository& repo, const std::string& mailbox,
                                const storage::SnapshotMeta& a, const storage::SnapshotMeta& b);

struct IndexHeadersResult {
  uint64_t messages_seen = 0;  // distinct message contents in the snapshots
  uint64_t already = 0;        // of those, already indexed
  uint64_t indexed = 0;        // indexed now
  uint64_t unreadable = 0;     // whose first blob could not be read (named in problems)
  std::vector<std::string> problems;
};
// Indexes the messages of every snapshot that no header record knows yet.
Result<IndexHeadersResult> IndexHeaders(const storage::Repository& repo,
                                        const ProgressFn& progress = {});

}  // namespace mv::agent
