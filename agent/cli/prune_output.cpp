// What `prune` (and `forget --prune`) prints: agent/cli/prune_output.h.
#include "agent/cli/prune_output.h"

#include <iostream>

#include "agent/cli/output.h"

namespace mv::agent {
namespace {

nlohmann::json Tally(const retention::PackTally& t) {
  return {{"packs", t.packs}, {"bytes", t.bytes}};
}

}  // namespace

nlohmann::json PruneJson(const retention::PruneResult& r) {
  return {{"dry_run", r.dry_run},
          {"snapshots", r.snapshots},
          {"used_blobs", r.used_blobs},
          {"size_before", r.size_before},
          {"size_after", r.size_after},
          {"unused_before", r.unused_before},
          {"unused_after", r.unused_after},
          {"deleted", Tally(r.deleted)},
          {"unindexed_deleted", Tally(r.unindexed)},
          {"repacked", Tally(r.repacked)},
          {"written", Tally(r.written)},
          {"kept", Tally(r.kept)},
          {"index_files_written", r.index_files_written},
          {"index_files_removed", r.index_files_removed},
          {"held_messages", r.held_messages},
          {"held_bytes", r.held_bytes},
          {"held_records_expired", r.held_records_expired},
          {"took_over_stale_lock", r.took_over_stale}};
}

namespace {

std::string Packs(const retention::PackTally& t) {
  return std::to_string(t.packs) + " pack(s), " + HumanBytes(t.bytes);
}

}  // namespace

void PrintPruneHuman(const retention::PruneResult& r) {
  if (!r.took_over_stale.empty()) std::cerr << "note: took over a " << r.took_over_stale << "\n";
  const char* will = r.dry_run ? "would " : "";
  std::cout << (r.dry_run ? "dry run, nothing changed: " : "") << r.snapshots << " snapshot(s) use "
            << r.used_blobs << " blobs\n"
            << "  " << (r.dry_run ? "would delete:  " : "deleted:       ") << Packs(r.deleted)
            << " with no used blob\n"
            << (r.unindexed.packs == 0
                    ? ""
                    : std::string("  ") + (r.dry_run ? "would delete:  " : "deleted:       ") +
                          Packs(r.unindexed) +
                          " no index names (left by an interrupted backup or "
                          "prune)\n")
            << "  " << (r.dry_run ? "would repack:  " : "repacked:      ") << Packs(r.repacked)
            << " into " << (r.dry_run ? "about " + HumanBytes(r.written.bytes) : Packs(r.written))
            << "\n"
            << "  kept:          " << Packs(r.kept) << "\n"
            << "  repository:    " << HumanBytes(r.size_before) << " -> " << will
            << (r.dry_run ? "be about " : "") << HumanBytes(r.size_after) << " of packs; unused "
            << HumanBytes(r.unused_before) << " -> " << HumanBytes(r.unused_after) << "\n";
  if (r.held_messages || r.held_records_expired)
    std::cout << "  deleted mail:  " << r.held_messages << " message(s), "
              << HumanBytes(r.held_bytes) << " held (--keep-deleted-mail)"
              << (r.held_records_expired
                      ? "; " + std::to_string(r.held_records_expired) + " expired record(s) " +
                            (r.dry_run ? "would be " : "") + "removed"
                      : std::string())
              << "\n";
}

}  // namespace mv::agent
