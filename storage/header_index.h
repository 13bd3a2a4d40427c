// Header records (docs/FORMAT.md §15): the Date, From, To, Subject and Message-ID of messages,
// keyed by their content ID, so `mailvault find` answers "which snapshots hold a message like
// this" without reading any message. A backup records the messages it read (new content only:
// renamed ones were not read and their headers are already known by content); `index-headers`
// backfills older snapshots. Records are sealed files `headers/<random>`, written once and never
// modified; the same content recorded twice is the same headers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/repository.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

struct MessageHeaders {
  BlobId content;  // the message's content ID (§3)
  uint64_t size = 0;
  std::string date, from, to, subject, message_id;  // UTF-8 (storage/mailfiles/headers.h)
  int64_t date_unix = 0;                            // 0: no Date that parses
};

// The format version that brought header records (§1 version 8): what RecordHeaders raises a
// repository to before the first record is written.
constexpr int kHeadersFormatVersion = 8;

// How many messages the writers here put in one record: what a backup holds in memory for them
// (a few MB), and a record count that stays in the hundreds for a million messages.
constexpr size_t kMessagesPerHeaderRecord = 10000;

// Writes one record (a sealed file, through a temp name), after raising config to version 8.
Status RecordHeaders(const Repository& repo, int64_t now_ns,
                     const std::vector<MessageHeaders>& messages);

// Calls `fn` for every message of every record (records in name order). A record that cannot be
// read is named in *damaged and skipped: its messages are then not found, nothing else is lost.
Status ForEachRecordedHeaders(const Repository& repo,
                              const std::function<void(MessageHeaders&&)>& fn,
                              std::vector<std::string>* damaged);

// Decodes a record file's bytes; `path` names it in errors (kCorruption).
Result<std::vector<MessageHeaders>> DecodeHeaderRecord(std::string_view data,
                                                       const std::string& path);

// Copies the records of `from` that `to` lacks (by name), after raising `to` to version 8: what
// `copy` does, so find works on the copy. *copied counts them.
Status CopyHeaderRecords(const Repository& from, const Repository& to, uint64_t* copied);

// Raises config's "version" to `version` when it is lower, atomically, every other field kept.
Status RaiseConfigVersionTo(const Repository& repo, int version);

}  // namespace mv::storage
