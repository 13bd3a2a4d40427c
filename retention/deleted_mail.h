// Mail-aware retention (`forget --keep-deleted-mail 30d`, docs/FORMAT.md §12): of the snapshots
// a forget removes, the messages that no remaining snapshot holds, each with the time of the
// newest snapshot that held it. The forget writes them as a held mail record before it removes
// the manifests, and prune keeps their blobs until the period after that time ends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/blob_reader.h"
#include "storage/held_mail.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::retention {

struct DeletedMail {
  std::vector<storage::HeldMessage> held;  // to record: their period has not ended
  uint64_t expired = 0;  // messages only removed snapshots held, whose period already ended
};

// A message is a regular file directly in a Maildir's cur/ or new/ (a mailbox root or one of its
// Maildir++ folders, docs/FORMAT.md §7.3). It is held when no snapshot in `kept` has a message
// of the same content in the same mailbox (any folder, any name: restoring that snapshot brings
// it back) and last_seen + period is after `now_ns`; once per mailbox and content.
// `removed` are walked newest first; a directory's tree record is read once across all.
Result<DeletedMail> CollectDeletedMail(const storage::BlobReader& blobs,
                                       const std::vector<storage::SnapshotMeta>& removed,
                                       const std::vector<std::string>& kept, int64_t period_ns,
                                       int64_t now_ns);

}  // namespace mv::retention
