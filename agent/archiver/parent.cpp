#include "agent/archiver/parent.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "storage/mailfiles/maildir.h"
#include "storage/tree.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

// Content the stat shortcut never reuses: SQLite images and raw copies are taken again (§7.4),
// a file that changed while it was read is read again (§7.2).
constexpr uint32_t kNeverReused =
    storage::kFlagSqlite | storage::kFlagSqliteRaw | storage::kFlagChangedWhileRead;
// Flags the walk sets from the file as it is now; the others describe the content.
constexpr uint32_t kWalkFlags = storage::kFlagHardLink | storage::kFlagXattrs;

std::string_view BaseName(std::string_view p) { return p.substr(p.find_last_of('/') + 1); }
std::string_view DirName(std::string_view p) {
  size_t s = p.find_last_of('/');
  return s == std::string_view::npos ? std::string_view() : p.substr(0, s);
}

// Same path, same inode and stat: unchanged.
bool SameFile(const FileEntry& e, uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime,
              int64_t ctime, uint32_t flags) {
  return !(flags & kNeverReused) && dev == e.dev && ino == e.ino && size == e.size &&
         mtime == e.mtime_ns && ctime == e.ctime_ns;
}
// A Maildir message renamed for a flag change or moved between folders keeps its inode, size and
// mtime (only ctime moves), and Maildir messages are never rewritten in place.
bool SameMessage(const FileEntry& e, uint64_t dev, uint64_t ino, uint64_t size, int64_t mtime,
                 uint32_t flags) {
  return !(flags & kNeverReused) && dev == e.dev && ino == e.ino && size == e.size &&
         mtime == e.mtime_ns;
}

class None final : public ParentIndex {
 public:
  Status Enter(const std::string&) override { return Status::Ok(); }
  void Leave() override {}
  Result<bool> Find(const FileEntry&, bool, Reuse*) override { return false; }
};

struct InodeKey {
  uint64_t dev, ino;
  bool operator==(const InodeKey&) const = default;
};
struct InodeKeyHash {
  size_t operator()(const InodeKey& k) const { return k.ino * 1000003u ^ k.dev; }
};

// A flat (version 1-2) parent: the whole table, looked up by path and, for messages, by inode.
class Flat final : public ParentIndex {
 public:
  using Row = storage::EntryTable::Row;
  explicit Flat(storage::EntryTable t) : t_(std::move(t)) {
    by_path_.reserve(t_.size());
    for (size_t i = 0; i < t_.size(); i++) {
      const Row& r = t_.row(i);
      if (r.type != FileType::kRegular) continue;
      std::string_view p = t_.path(r);
      by_path_.emplace(p, &r);
      std::string_view dir = BaseName(DirName(p));
      if (dir == "cur" || dir == "new") by_inode_.emplace(InodeKey{r.dev, r.ino}, &r);
    }
  }
  Status Enter(const std::string&) override { return Status::Ok(); }
  void Leave() override {}
  Result<bool> Find(const FileEntry& e, bool maildir_message, Reuse* out) override {
    auto it = by_path_.find(e.path);
    if (it != by_path_.end()) {
      const Row* p = it->second;
      if (SameFile(e, p->dev, p->ino, p->size, p->mtime_ns, p->ctime_ns, p->flags))
        return Take(*p, out);
    }
    if (!maildir_message) return false;
    auto range = by_inode_.equal_range(InodeKey{e.dev, e.ino});
    for (auto jt = range.first; jt != range.second; ++jt) {
      const Row* p = jt->second;
      if (!SameMessage(e, p->dev, p->ino, p->size, p->mtime_ns, p->flags)) continue;
      if (mailfiles::UniqueName(BaseName(t_.path(*p))) != mailfiles::UniqueName(BaseName(e.path)))
        continue;
      return Take(*p, out);
    }
    return false;
  }

 private:
  bool Take(const Row& r, Reuse* out) const {
    auto b = t_.blobs(r);
    out->content = r.content;
    out->blobs.assign(b.begin(), b.end());
    out->flags = r.flags & ~kWalkFlags;
    return true;
  }
  storage::EntryTable t_;
  std::unordered_map<std::string_view, const Row*> by_path_;
  std::unordered_multimap<InodeKey, const Row*, InodeKeyHash> by_inode_;
};

// A version-3 parent: the records of the directories the walk is in, and the messages of one
// mailbox.
class Tree final : public ParentIndex {
 public:
  Tree(const storage::BlobReader& blobs, const storage::BlobId& root)
      : loader_(blobs), root_(root) {}

  Status Enter(const std::string& path) override {
    if (stack_.empty()) {  // the root record: the sources
      Frame& root = stack_.emplace_back();
      root.known = Load(root_, "", &root.entries);
    }
    const FileEntry* d = Child(stack_.back(), BaseName(path));
    Frame f;
    f.path = path;
    if (d && d->type == FileType::kDirectory) f.known = Load(d->tree, path, &f.entries);
    stack_.push_back(std::move(f));
    return Status::Ok();
  }

  void Leave() override {
    if (stack_.size() > 1) stack_.pop_back();
  }

  Result<bool> Find(const FileEntry& e, bool maildir_message, Reuse* out) override {
    if (stack_.size() < 2) return false;
    if (const FileEntry* p = NextChild(stack_.back(), BaseName(e.path)))
      if (p->type == FileType::kRegular &&
          SameFile(e, p->dev, p->ino, p->size, p->mtime_ns, p->ctime_ns, p->flags)) {
        out->xattrs = p->xattrs;  // ctime unchanged: so are they
        out->xattrs_known = true;
        return Take(*p, out);
      }
    if (!maildir_message) return false;
    MV_RETURN_IF_ERROR(LoadMailbox());
    auto range = messages_.equal_range(std::string(mailfiles::UniqueName(BaseName(e.path))));
    for (auto it = range.first; it != range.second; ++it) {
      const FileEntry& p = it->second;
      if (SameMessage(e, p.dev, p.ino, p.size, p.mtime_ns, p.flags)) return Take(p, out);
    }
    return false;
  }

 private:
  struct Frame {
    std::string path;
    std::vector<FileEntry> entries;  // sorted by name
    bool known = false;              // the parent has this directory
    size_t next = 0;                 // where the last NextChild lookup ended
  };

  // Child() for the walk's files, which come in name order like the record: an unchanged
  // directory's files are found one step ahead, without a search.
  static const FileEntry* NextChild(Frame& f, std::string_view name) {
    if (f.next < f.entries.size() && BaseName(f.entries[f.next].path) == name)
      return &f.entries[f.next++];
    const FileEntry* c = Child(f, name);
    if (c) f.next = static_cast<size_t>(c - f.entries.data()) + 1;
    return c;
  }

  static const FileEntry* Child(const Frame& f, std::string_view name) {
    auto it = std::lower_bound(
        f.entries.begin(), f.entries.end(), name,
        [](const FileEntry& a, std::string_view n) { return BaseName(a.path) < n; });
    return it != f.entries.end() && BaseName(it->path) == name ? &*it : nullptr;
  }
  static bool IsMaildir(const Frame& f) {
    auto dir = [&](const char* n) {
      const FileEntry* c = Child(f, n);
      return c && c->type == FileType::kDirectory;
    };
    return f.known && dir("cur") && dir("new") && dir("tmp");
  }

  static bool Take(const FileEntry& p, Reuse* out) {
    out->content = p.content;
    out->blobs = p.blobs;
    out->flags = p.flags & ~kWalkFlags;
    return true;
  }

  // The messages the parent holds in the mailbox of the current directory (cur/ or new/ of a
  // Maildir): its root's cur/ and new/, and those of its Maildir++ folders (§7.3).
  Status LoadMailbox() {
    // stack_: [root record, ..., mailbox root?, Maildir, cur|new]
    if (stack_.size() < 3) return Status::Ok();
    size_t md = stack_.size() - 2;
    size_t box = md;
    if (md >= 2 && BaseName(stack_[md].path).starts_with(".") && IsMaildir(stack_[md - 1]))
      box = md - 1;
    if (stack_[box].path == mailbox_) return Status::Ok();
    mailbox_ = stack_[box].path;
    messages_.clear();
    const Frame& root = stack_[box];
    if (!root.known) return Status::Ok();
    AddMessagesOf(root);
    for (const auto& c : root.entries) {
      if (c.type != FileType::kDirectory || !BaseName(c.path).starts_with(".")) continue;
      Frame folder;
      folder.path = c.path;
      folder.known = Load(c.tree, c.path, &folder.entries);
      if (IsMaildir(folder)) AddMessagesOf(folder);
    }
    return Status::Ok();
  }

  // Loads a parent's record; false (and a note, once) when it cannot be read.
  bool Load(const storage::BlobId& id, const std::string& dir, std::vector<FileEntry>* out) {
    Status st = loader_.Load(id, dir, out);
    if (st.ok()) return true;
    out->clear();
    lost_.insert(id);
    if (notes_.size() < 10)
      notes_.push_back("the parent snapshot's record of '" + dir +
                       "' cannot be read; its files were read again: " + st.ToString());
    return false;
  }

  void AddMessagesOf(const Frame& maildir) {
    for (const char* sub : {"cur", "new"}) {
      const FileEntry* d = Child(maildir, sub);
      if (!d || d->type != FileType::kDirectory) continue;
      std::vector<FileEntry> files;
      if (!Load(d->tree, d->path, &files)) continue;
      for (auto& f : files)
        if (f.type == FileType::kRegular) {
          std::string key(mailfiles::UniqueName(BaseName(f.path)));
          messages_.emplace(std::move(key), std::move(f));
        }
    }
  }

  bool IsLost(const storage::BlobId& tree) const override { return lost_.count(tree) != 0; }

  storage::TreeLoader loader_;
  storage::BlobId root_;
  std::set<storage::BlobId> lost_;
  std::vector<Frame> stack_;
  std::string mailbox_ = "\n";  // none loaded yet
  std::unordered_multimap<std::string, FileEntry> messages_;
};

}  // namespace

std::unique_ptr<ParentIndex> NoParent() { return std::make_unique<None>(); }
std::unique_ptr<ParentIndex> FlatParent(storage::EntryTable table) {
  return std::make_unique<Flat>(std::move(table));
}
std::unique_ptr<ParentIndex> TreeParent(const storage::BlobReader& blobs,
                                        const storage::BlobId& root) {
  return std::make_unique<Tree>(blobs, root);
}

}  // namespace mv::agent
