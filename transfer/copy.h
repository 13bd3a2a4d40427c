// `mailvault copy` (issue #6, docs/FORMAT.md §13): copies snapshots from one repository to
// another (each local or S3), sending only the packs the destination lacks, for a local and an
// off-site copy of the same backups (3-2-1).
//
// Both repositories must share the content key (§3) and the chunker parameters, so blob IDs
// match and nothing is re-hashed or re-packed: a destination made by `mailvault init
// --copy-key-from SOURCE`. A destination with its own key is refused, naming both fingerprints.
//
// Per snapshot, oldest first, following §8's write order: the packs holding blobs of the snapshot
// that the destination's index lacks are copied verbatim (a pack's name is the hash of its bytes,
// so the same name in both repositories means the same bytes; each pack's bytes are checked
// against its name on the way), then one index file names them, then the manifest is written
// under the same ID. An interrupted copy leaves packs no index names; the next copy finds them
// in the destination's listing and indexes them without sending them again.
//
// What is not copied: verification records (§11: a proof is about the repository it was made
// in), held mail records (§12), and the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "storage/lock.h"
#include "storage/repository.h"
#include "storage/status.h"

namespace mv::transfer {

struct CopyOptions {
  std::vector<std::string> snapshots;  // full IDs of `from` to copy; empty: every snapshot
  bool dry_run = false;                // say what would be copied, write nothing
  int workers = 4;                     // packs in flight at once
  storage::LockWait lock_wait;         // for the destination's lock
};

struct CopyProgress {
  const char* phase;  // "walk" (done/total: snapshots), "packs" (done/total: bytes)
  uint64_t done = 0, total = 0;
};
using CopyProgressFn = std::function<void(const CopyProgress&)>;

struct CopyResult {
  bool dry_run = false;
  std::vector<std::string> copied;          // snapshot IDs written to the destination (or to be)
  std::vector<std::string> present;         // selected snapshots the destination had already
  uint64_t packs_sent = 0, bytes_sent = 0;  // pack files transferred (compressed bytes)
  uint64_t packs_resumed = 0;   // found in the destination (an interrupted copy), only indexed
  uint64_t blobs_present = 0;   // blobs of the copied snapshots the destination had already
  uint64_t blobs_sent = 0;      // blobs in the packs sent or indexed (resumed)
  uint64_t header_records = 0;  // header records (docs/FORMAT.md §15) the destination lacked
  std::string took_over_stale;
};

// Fails with kUnsupported, naming both repositories and `mailvault init --copy-key-from`,
// when `to` does not share `from`'s content key and chunker parameters.
Status CheckSameContentKey(const storage::Repository& from, const storage::Repository& to);

// Copies the selected snapshots of `from` that `to` lacks. Takes `to`'s exclusive lock; reads
// `from` without a lock, like restore. Stops before writing the manifest of a snapshot whose
// manifest or trees cannot be read, that refers to a blob `from`'s index lacks, or whose pack
// does not hash to its name (run `mailvault check` there); the snapshots copied before it stay.
Result<CopyResult> Copy(const storage::Repository& from, storage::Repository& to,
                        const CopyOptions& opts, const CopyProgressFn& progress = nullptr);

}  // namespace mv::transfer
