// Differences between two Maildir inventories (verify/tree_scan.h): per folder (the census) and
// per message, matched by Maildir unique name (the part of the file name before ":2,"), so a flag
// change (a rename) is no difference at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/snapshot.h"
#include "verify/tree_scan.h"

namespace mv::verify {

// One folder whose census differs. `base`/`other` are the two sides in the caller's terms
// (recorded vs restored, snapshot vs live).
struct FolderDiff {
  std::string source, mailbox, folder;
  bool missing_in_base = false, missing_in_other = false;
  uint64_t base_messages = 0, other_messages = 0;
  uint64_t base_bytes = 0, other_bytes = 0;
  bool digest_differs = false;  // same counts but different message contents
};

// Exact comparison; empty when the two censuses are identical.
std::vector<FolderDiff> DiffCensus(const std::vector<storage::CensusRow>& base,
                                   const std::vector<storage::CensusRow>& other);

// A message seen on one side or both.
struct MessageRef {
  std::string source, mailbox, folder, unique;
  std::string base_path, other_path;  // "" on the side where it is absent
  uint64_t base_size = 0, other_size = 0;
};

struct MessageDiff {
  std::vector<MessageRef> only_base;   // in base, not in other (same mailbox, any folder)
  std::vector<MessageRef> only_other;  // in other, not in base
  std::vector<MessageRef> changed;     // same unique name and mailbox, different content
  std::vector<MessageRef> moved;       // same unique name and content, other folder
  bool empty() const {
    return only_base.empty() && only_other.empty() && changed.empty() && moved.empty();
  }
};

// Messages are matched by (source, mailbox, unique name); within a mailbox a unique name that
// appears in several folders is matched folder by folder first.
MessageDiff DiffMessages(const std::vector<MessageRecord>& base,
                         const std::vector<MessageRecord>& other);

}  // namespace mv::verify
