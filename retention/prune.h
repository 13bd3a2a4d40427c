// Prune (docs/FORMAT.md §8 "Prune", §9): gives back the space of blobs that no snapshot refers to
// any more. Packs with no used blob are deleted; packs with some unused share are repacked (their
// used blobs copied into new packs) while the repository's unused share is over a limit. Every
// step is durable before the next, so a prune killed at any moment leaves a repository that
// checks clean (at most orphan packs) and that the next prune finishes.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "storage/lock.h"
#include "storage/repository.h"
#include "storage/status.h"

namespace mv::retention {

struct PruneOptions {
  // Repack while the unused share of the repository's pack bytes is over this (restic's
  // default, 5%). 0 repacks every pack with an unused blob; 1 repacks nothing.
  double max_unused = 0.05;
  // Stop choosing packs to repack once the packs chosen add up to this many bytes.
  uint64_t max_repack_bytes = std::numeric_limits<uint64_t>::max();
  bool dry_run = false;         // plan and report; change nothing (the lock is still taken)
  int zstd_level = 3;           // of the new packs
  storage::LockWait lock_wait;  // for the exclusive lock (purpose "prune")
};

// Pack files and their bytes on disk.
struct PackTally {
  uint64_t packs = 0, bytes = 0;
  void Add(uint64_t b) { packs++, bytes += b; }
};

struct PruneResult {
  bool dry_run = false;
  std::string took_over_stale;  // the stale lock taken over, if any
  size_t snapshots = 0;
  uint64_t used_blobs = 0;
  uint64_t size_before = 0, size_after = 0;  // bytes of pack files (after: estimated in a dry run)
  // Estimated bytes of unused blobs in indexed packs (a pack's compressed size shared out in
  // proportion to its blobs' lengths), before and after.
  uint64_t unused_before = 0, unused_after = 0;
  PackTally deleted;    // indexed packs none of whose blobs is used
  PackTally unindexed;  // pack files no index file names (left by an interrupted backup or prune)
  PackTally repacked;   // packs whose used blobs were copied into new packs, then deleted
  PackTally written;    // the new packs (a dry run: none, and their estimated bytes)
  PackTally kept;       // packs left as they are
  uint64_t index_files_removed = 0, index_files_written = 0;
  // Held mail (docs/FORMAT.md §12): messages whose blobs were kept for --keep-deleted-mail, and
  // the records removed because all they held had expired (a dry run: would be).
  uint64_t held_messages = 0, held_bytes = 0, held_records_expired = 0;
};

struct PruneProgress {
  const char* phase;  // "snapshots", "repack", "delete"
  uint64_t done = 0, total = 0;
};
using PruneProgressFn = std::function<void(const PruneProgress&)>;

// Runs a prune of `repo` (its writes go through repo.env()). Takes the exclusive lock itself.
// Refuses, changing nothing, when a manifest or index file is damaged, a used blob is not in the
// index, or an indexed pack is missing or shorter than the index says: each says to run
// `mailvault check`.
Result<PruneResult> Prune(storage::Repository& repo, const PruneOptions& opts,
                          const PruneProgressFn& progress = nullptr);

}  // namespace mv::retention
