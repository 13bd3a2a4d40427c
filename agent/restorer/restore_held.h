// `restore --deleted-since`: brings back messages that a forget held (storage/held_mail.h,
// docs/FORMAT.md §12) after the snapshots that had them were removed. The messages go through
// the ordinary restorer (restore.h), so they land under their original paths below the target,
// complete or not at all, hash-checked, never outside it, never over a differing file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/restorer/restore.h"
#include "storage/held_mail.h"

namespace mv::agent {

struct HeldMailFilter {
  int64_t since_ns = 0;  // last seen at or after this (deleted after it)
  std::string mailbox;   // "" or the mailbox ("alice@example.org")
  std::string folder;    // "" or "INBOX", ".Sent", ...
  std::string name;      // "" or the message's unique name (or its whole file name)
};

// The held messages, not expired at `now_ns`, that `filter` selects, each once (the newest
// record's copy of a message held twice), sorted by path.
std::vector<storage::HeldMessage> SelectHeldMail(const std::vector<storage::HeldRecord>& records,
                                                 const HeldMailFilter& filter, int64_t now_ns);

// Restores `messages` as RunRestore restores a snapshot (opts.snapshot is ignored; --include
// and per-source targets apply as there). Their directories are made 0700, as Maildirs are.
Result<RestoreResult> RestoreHeldMail(const storage::BlobReader& blobs,
                                      const std::vector<storage::HeldMessage>& messages,
                                      const RestoreOptions& opts, const ProgressFn& progress = {});

}  // namespace mv::agent
