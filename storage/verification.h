// Verification records (docs/FORMAT.md §11): what `verify` and `report` proved about a snapshot,
// kept in the repository beside it, so `snapshots` can show it and a retention policy never
// rotates out the newest snapshot known to restore while newer ones are unproven.
//
// Records are small sealed files `verifications/<snapshot ID>-<random>`, written once (never
// modified), one per verification run; the newest by `time` is the snapshot's standing. Writing
// one takes no lock: it names no blob and nothing depends on it but retention's choice.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "storage/repository.h"
#include "storage/status.h"

namespace mv::storage {

struct Verification {
  std::string snapshot;  // full snapshot ID
  int64_t time = 0;      // Unix seconds when the verification finished
  bool ok = false;       // restored and compared without error (a partial snapshot can be ok)
  bool partial = false;  // the snapshot itself lacks files the backup could not read
  uint64_t files = 0, messages = 0;  // what was restored and compared
  std::string host;                  // where it ran
  std::string summary;               // the verdict, or the first problem found
};

// Writes a new record for v.snapshot (temp file, fsync, rename, fsync the directory).
Status RecordVerification(const Repository& repo, const Verification& v);

// The newest record of each snapshot, by snapshot ID. A record that cannot be read is skipped
// and named in *damaged (when given); a missing verifications/ directory is no records.
Result<std::map<std::string, Verification>> LoadVerifications(
    const Repository& repo, std::vector<std::string>* damaged = nullptr);

// Removes every record of `snapshot` (forget does, after removing its manifest). Records of a
// snapshot that no longer exists are harmless: readers look them up by snapshot ID only.
Status RemoveVerifications(const Repository& repo, const std::string& snapshot);

}  // namespace mv::storage
