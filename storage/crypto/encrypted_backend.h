// The backend of an encrypted repository (docs/ENCRYPTION.md "Objects"): a Backend over another
// one (local or S3) that encrypts what the repository writes and decrypts what it reads, so the
// layers above see today's plaintext objects.
//   packs/…        age files to the recipient whose plaintext is the framed tar.zst (FORMAT.md
//                  §5): `age -d -i identity.txt PACK | tar --zstd -tvf -` lists one. Ranged
//                  reads fetch only the 64 KiB age chunks that hold the wanted bytes.
//   index/, snapshots/, verifications/, held/, reports/ …
//                  sealed objects (storage/crypto/envelope.h): age files whose plaintext ends
//                  with an HMAC binding the object to its name and this repository, so one
//                  swapped under another name, replayed from another repository or written
//                  without the authentication key is refused, naming it.
//   config, keys/…, locks/…
//                  passed through: config and the key files are what opens the repository;
//                  locks carry a host name and a pid (docs/ENCRYPTION.md says so).
// New packs are encrypted as they are written (NewPackSink), so each is written once.
// Sizes (List, Size) are the plaintext's, as the index records them. Without the identity every
// read of an encrypted object is kAccessDenied, except from the write-only cache (ObjectKeys).
// The backend never prints.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "storage/backend.h"
#include "storage/crypto/age.h"
#include "storage/env.h"

namespace mv::storage::crypto {

struct ObjectKeys {
  std::optional<AgeIdentity> identity;  // absent: this backend can write but not read
  AgeRecipient recipient;
  std::array<uint8_t, 32> auth{};  // A: authenticates sealed objects
  std::string repository;          // the repository id sealed objects are bound to
  // Without the identity (a write-only agent key): a local directory where the backend keeps
  // the plaintext of the index files, manifests and small (tree) packs it writes, and reads them
  // back from while the repository still has them, so the agent's next backup finds its parent
  // and dedups against what it stored itself. Losing it costs one full upload. Empty: none.
  std::string plain_cache;
  // Format version 9 (docs/FORMAT.md §14.2): a pack is named by the SHA-256/128 of its age file
  // (storage/crypto/pack_name.h), which whole reads check. Versions 7 and 8: by the XXH3-128 of
  // its plaintext, which the reader above checks.
  bool pack_names_hash_age_file = false;
};

// Whether `rel` is stored as it is (config, keys/, locks/, tmp/) in an encrypted repository.
bool StoredInClear(const std::string& rel);

std::unique_ptr<Backend> NewEncryptedBackend(std::unique_ptr<Backend> inner, ObjectKeys keys,
                                             Env* env = Env::Default());

}  // namespace mv::storage::crypto
