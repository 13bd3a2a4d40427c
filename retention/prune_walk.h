// The first step of a prune (docs/FORMAT.md §8 "Prune"): the set of blobs that the snapshots
// refer to, read from their manifests and tree records.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "retention/prune.h"
#include "storage/blob_id_set.h"
#include "storage/index.h"
#include "storage/repository.h"

namespace mv::retention {

struct UsedBlobs {
  storage::BlobIdSet all;    // every blob some snapshot refers to: content and tree records
  storage::BlobIdSet trees;  // the tree records among them (§7.5), repacked into tree packs
  // Held mail (§12): the messages not yet expired (their blobs are in `all`), and the records
  // every message of which has expired (prune removes them once it is done).
  uint64_t held_messages = 0, held_bytes = 0;
  std::vector<std::string> expired_records;
};

// Walks every snapshot of `repo` (a tree shared by several snapshots once) and every held mail
// record, looking blobs up in `index`, and returns how many snapshots there are. Fails when a
// manifest or held mail record is damaged or a blob it refers to is not in `index`, saying to
// run `mailvault check`.
Result<size_t> CollectUsedBlobs(const storage::Repository& repo, const storage::Index& index,
                                const PruneProgressFn& progress, UsedBlobs* used);

}  // namespace mv::retention
