// Restoring a list of entries that no manifest holds as such (held deleted mail, messages
// rewritten into a new folder): they are given to the ordinary restorer (restore.h) as the only
// snapshot of a reader whose blobs come from the repository's, so they get every guarantee a
// snapshot restore has (complete or not at all, hash-checked, never outside the target).
#pragma once

#include <vector>

#include "agent/restorer/restore.h"
#include "storage/snapshot.h"

namespace mv::agent {

// Sorts `entries` in walk order (docs/FORMAT.md §7.1: depth first, siblings bytewise), the order
// the restorer reads a snapshot in. Every directory an entry lies in must be an entry too.
void SortInWalkOrder(std::vector<storage::FileEntry>* entries);

// RunRestore over `entries` (walk order) as snapshot `meta` (its id, sources and totals),
// reading their blobs through `blobs`. opts.snapshot is ignored.
Result<RestoreResult> RestoreEntries(const storage::BlobReader& blobs,
                                     std::vector<storage::FileEntry> entries,
                                     storage::SnapshotMeta meta, const RestoreOptions& opts,
                                     const ProgressFn& progress = {});

}  // namespace mv::agent
