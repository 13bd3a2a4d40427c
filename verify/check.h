// `mailvault check`: the read-only repository checker. It decodes every index file
// and snapshot manifest itself (one at a time, so one damaged file does not hide the others),
// checks every manifest blob is indexed, every indexed pack exists with its indexed size, and
// reads packs: each pack's bytes must hash to its name and hold exactly the blobs the index says,
// at the indexed lengths. With data reading, every blob is re-hashed with the repository key.
//
// Each problem names where it is (pack, index file, manifest, blob) and what it affects
// (snapshots, files, mailboxes). Nothing is written, no lock is taken.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "storage/hash.h"
#include "storage/status.h"

namespace mv::storage {
class BlobReader;
class Repository;
}  // namespace mv::storage

namespace mv::verify {

enum class PackRead {
  kNone,  // existence and size only
  kList,  // decompress, check the pack hash and its entries against the index
  kData,  // kList, and re-hash every blob with the keyed hash
};

// Which packs get `read`; the others get PackRead::kNone. Empty = every pack.
using PackSelector = std::function<bool(const storage::BlobId& pack)>;

// Packs whose bucket (first 4 bytes of the ID, mod n) is k-1: `--read-data-subset K/N`. Pack IDs
// are hashes, so buckets are even and stable: nights 1..N together read every pack.
PackSelector SubsetBucket(uint32_t k, uint32_t n);
// A random `percent` of the packs (each pack drawn independently).
PackSelector SubsetPercent(double percent);
// Parses "K/N" or "P%"; Invalid on anything else.
Result<PackSelector> ParseSubset(const std::string& spec);

struct CheckOptions {
  PackRead read = PackRead::kList;
  PackSelector select;
  size_t max_affected = 100;  // per problem, affected files listed (the count is complete)
};

struct Affected {
  std::string snapshot, path, mailbox;  // mailbox "" for non-Maildir files
};

struct CheckProblem {
  // Closed set: index-damaged, snapshot-damaged, pack-missing, pack-size, pack-damaged,
  // blob-not-indexed, blob-missing-from-pack, index-wrong-pack, blob-length, blob-hash,
  // index-conflict, pack-not-indexed (warning), held-mail-damaged, held-blob-not-indexed,
  // foreign-object (warning: a file or object that is not part of the format, §1),
  // headers-damaged (warning: a header record, §15, that cannot be read).
  std::string kind;
  std::string where;                 // file path of the pack / index file / manifest
  std::string pack, blob, snapshot;  // hex IDs when relevant
  std::string message;               // what is wrong and what to do
  bool warning = false;              // not damage (e.g. an orphan pack an interrupted backup left)
  std::vector<Affected> affected{};
  uint64_t affected_total = 0;
  std::map<std::string, uint64_t> affected_mailboxes{};  // mailbox -> affected messages (complete)
};

struct CheckResult {
  uint64_t snapshots = 0, index_files = 0, packs = 0, packs_read = 0, blobs = 0, blobs_hashed = 0;
  uint64_t pack_bytes = 0;     // total size of pack files on disk
  uint64_t held_messages = 0;  // deleted mail held and not expired (docs/FORMAT.md §12)
  std::vector<CheckProblem> problems;
  size_t errors() const;
  bool ok() const { return errors() == 0; }
};

using CheckProgressFn = std::function<void(uint64_t packs_done, uint64_t packs_total)>;

Result<CheckResult> CheckRepository(const storage::Repository& repo, const CheckOptions& opts,
                                    const CheckProgressFn& progress = {});

// Snapshot ID -> file paths holding any of `blobs` (for attributing damage). Manifests that do
// not decode are skipped.
std::vector<Affected> FindBlobUsers(const storage::Repository& repo,
                                    const std::vector<storage::BlobId>& blobs, size_t max_listed,
                                    uint64_t* total = nullptr);

// For each of `blobs`, the snapshots whose files use it (one pass over the manifests).
std::map<storage::BlobId, std::vector<std::string>> SnapshotsHoldingBlobs(
    const storage::BlobReader& repo, const std::vector<storage::BlobId>& blobs);

}  // namespace mv::verify
