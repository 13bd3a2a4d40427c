// A snapshot's entries read one at a time, in walk order (docs/FORMAT.md §7.1: depth first,
// siblings sorted bytewise), so that a reader holds what it looks at, not the whole snapshot.
// A version-3 manifest is read tree record by tree record as the cursor advances; versions 1
// and 2 (one flat list) are decoded whole and handed out entry by entry.
#pragma once

#include <memory>

#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

class EntryCursor {
 public:
  virtual ~EntryCursor() = default;
  // The next entry (full path, as in Snapshot::files); false at the end. A tree record that
  // cannot be read fails with kCorruption/kNotFound naming it; the entries before stay valid.
  virtual Result<bool> Next(FileEntry* out) = 0;
  // Skips what lies below the directory Next() returned last (it has not been read yet), so a
  // reader of one subtree does not read the rest. A no-op after a file or symlink.
  virtual void SkipChildren() = 0;
};

// A cursor over entries already in memory (a decoded version-1/2 manifest, or a test's list).
std::unique_ptr<EntryCursor> VectorCursor(std::vector<FileEntry> files);

}  // namespace mv::storage
