// The parent snapshot, as the stat shortcut asks it (docs/FORMAT.md §7.2): is this file's content
// already known? A version-3 parent is read one directory at a time, next to the walk (both are
// in walk order), and a Maildir message missing from its directory is looked up by unique name
// among the parent's messages of the same mailbox only; memory follows the open directories and
// one mailbox, not the store. A version-1/2 parent (a flat manifest) is loaded whole, as before.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "storage/blob_reader.h"
#include "storage/entry_table.h"
#include "storage/hash.h"
#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::agent {

// What a reused file takes from the parent: its content, and the flags that describe content.
// When the file's ctime is unchanged too, its extended attributes are the parent's (setting or
// removing one moves ctime), and `xattrs_known` says so: the backup need not read them.
struct Reuse {
  storage::BlobId content;
  std::vector<storage::BlobId> blobs;
  uint32_t flags = 0;
  bool xattrs_known = false;
  std::vector<storage::Xattr> xattrs;
};

class ParentIndex {
 public:
  virtual ~ParentIndex() = default;
  // The walk enters directory `path` (a full snapshot path: "mail", "mail/alice@x/cur"), which is
  // a child of the directory entered last (or a source root); Leave() returns to that one.
  virtual Status Enter(const std::string& path) = 0;
  virtual void Leave() = 0;
  // The parent's content for regular file `e`, a child of the directory entered last, when the
  // stat shortcut allows it. `maildir_message`: `e` is directly in cur/ or new/ of a Maildir.
  virtual Result<bool> Find(const storage::FileEntry& e, bool maildir_message, Reuse* out) = 0;
  // A parent's tree record that cannot be read (missing, damaged) never fails the backup: that
  // directory's files are read again, and a note says which record it was.
  std::vector<std::string> TakeNotes() { return std::move(notes_); }
  // Whether `tree` is a record this parent failed to read: the repository names it but cannot
  // deliver it, so a new snapshot recording the same directory would depend on it too.
  virtual bool IsLost(const storage::BlobId& tree) const { return false; }

 protected:
  std::vector<std::string> notes_;
};

std::unique_ptr<ParentIndex> NoParent();
std::unique_ptr<ParentIndex> FlatParent(storage::EntryTable table);
// `blobs` must outlive the index.
std::unique_ptr<ParentIndex> TreeParent(const storage::BlobReader& blobs,
                                        const storage::BlobId& root);

}  // namespace mv::agent
