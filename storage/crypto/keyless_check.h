// `mailvault check` without a key (docs/ENCRYPTION.md "Checking without a key"): what anyone
// holding the bucket, or a write-only agent, can prove about an encrypted repository of format
// version 9. Every pack is read whole and its age file hashed against its name (§14.2), which
// proves its integrity; every other encrypted object (index files, manifests, verification and
// held-mail records, header records, reports) must be a well-formed age file with one X25519
// stanza. What the objects say, and whether the snapshots' blobs are all there, needs the
// identity: `check` with a key. Versions 7 and 8 name packs by their plaintext, so they cannot
// be checked without a key (kAccessDenied says so).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "storage/backend.h"
#include "storage/repository.h"

namespace mv::storage::crypto {

struct KeylessProblem {
  // pack-damaged (its bytes do not hash to its name), object-damaged (not a well-formed age
  // file), foreign-object (warning: not a name of the format).
  std::string kind;
  std::string where;  // the object, as the backend describes it
  std::string pack;   // hex, for pack-damaged
  std::string message;
  bool warning = false;
};

struct KeylessCheck {
  uint64_t packs = 0, pack_bytes = 0;  // packs read (all of them), bytes of their age files
  uint64_t index_files = 0, snapshots = 0, other_sealed = 0;
  std::vector<KeylessProblem> problems;
};

using KeylessProgressFn = std::function<void(uint64_t packs_done, uint64_t packs_total)>;

// `stored`: the repository's backend as stored (not the decrypting one); `config` read from it.
Result<KeylessCheck> CheckWithoutKey(const Backend& stored, const RepoConfig& config,
                                     const KeylessProgressFn& progress = {});

// Whether `file` starts like an age v1 file with one X25519 stanza and a header MAC, followed by
// at least a nonce and one sealed chunk; the reason in *why when not.
bool LooksLikeAgeFile(std::string_view file, std::string* why);

}  // namespace mv::storage::crypto
