// docs/FORMAT.md §7.5 (tree records).
#include "storage/tree.h"

#include <algorithm>
#include <map>
#include <set>

namespace mv::storage {

Result<const std::string*> TreeLoader::Get(const BlobId& id, std::string_view dir) {
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    auto b = it->blobs.find(id);
    if (b == it->blobs.end()) continue;
    if (it != cache_.begin()) cache_.splice(cache_.begin(), cache_, it);
    return &b->second;
  }
  auto loc = blobs_.Find(id);
  if (!loc)
    return Status::NotFound("tree record " + id.Hex() + " of directory '" + std::string(dir) +
                                "' is not in the index; run `mailvault check`" +
                                (blobs_.index_damaged() ? " and `mailvault repair index`" : ""),
                            "");
  CachedPack fresh{loc->pack, {}};
  bool damaged = false;
  Status st = blobs_.ReadPackBlobs(
      loc->pack, [](const BlobId&) { return true; },
      [&](const BlobId& b, std::string_view data, bool intact) {
        if (b == id && !intact) damaged = true;
        if (intact) fresh.blobs.emplace(b, std::string(data));
      });
  // A pack a prune deleted is read from where its blobs are now (storage/blob_reader.h); blobs
  // of it no snapshot uses are gone and fail the call, which matters only if `id` is one.
  if (!st.ok() && !fresh.blobs.count(id)) return st;
  if (damaged)
    return Status::Corruption("tree record " + id.Hex() + " of directory '" + std::string(dir) +
                                  "' does not match its hash; run `mailvault check`",
                              blobs_.PackPath(loc->pack));
  if (!fresh.blobs.count(id))
    return Status::Corruption("tree record " + id.Hex() + " of directory '" + std::string(dir) +
                                  "' is missing from its pack; run `mailvault check`",
                              blobs_.PackPath(loc->pack));
  cache_.push_front(std::move(fresh));
  while (cache_.size() > cache_packs_) cache_.pop_back();
  return &cache_.front().blobs.at(id);
}

Status TreeLoader::Load(const BlobId& id, std::string_view dir, std::vector<FileEntry>* out) {
  MV_ASSIGN_OR_RETURN(const std::string* data, Get(id, dir));
  Status st = DecodeTree(*data, dir, "tree record " + id.Hex(), out);
  Release(id, data->size());
  return st;
}

Status TreeLoader::Visit(const BlobId& id, std::string_view dir,
                         const std::function<Status(const TreeItem&)>& fn) {
  MV_ASSIGN_OR_RETURN(const std::string* data, Get(id, dir));
  Status st = ForEachTreeItem(*data, dir, "tree record " + id.Hex(), fn);
  Release(id, data->size());
  return st;
}

void TreeLoader::Release(const BlobId& id, size_t size) {
  if (keep_ == Keep::kNone || (keep_ == Keep::kSmall && size >= kSmallRecord))
    cache_.front().blobs.erase(id);  // Get() left its pack in front
}

namespace {

class TreeCursorImpl final : public EntryCursor {
 public:
  TreeCursorImpl(const BlobReader& blobs, const BlobId& root, bool once)
      // Records are written as their directories finish (children first) and read here
      // parents first: the pack of the root stays unread but for a few records while the
      // earlier packs are read in order, so two cached packs cost few extra reads.
      : loader_(blobs, once ? 4 : 2, once ? TreeLoader::Keep::kNone : TreeLoader::Keep::kSmall),
        pending_(root) {
    descend_ = true;
  }

  Result<bool> Next(FileEntry* out) override {
    if (descend_) {
      descend_ = false;
      Frame& f = stack_.emplace_back();
      f.dir = pending_dir_;
      MV_RETURN_IF_ERROR(loader_.Load(pending_, f.dir, &f.entries));
    }
    while (!stack_.empty() && stack_.back().next == stack_.back().entries.size()) stack_.pop_back();
    if (stack_.empty()) return false;
    Frame& f = stack_.back();
    FileEntry& e = f.entries[f.next++];
    if (e.type == FileType::kDirectory) {
      descend_ = true;
      pending_ = e.tree;
      pending_dir_ = e.path;
    }
    *out = std::move(e);
    return true;
  }

  void SkipChildren() override { descend_ = false; }

 private:
  struct Frame {
    std::string dir;
    std::vector<FileEntry> entries;
    size_t next = 0;
  };
  TreeLoader loader_;
  std::vector<Frame> stack_;
  bool descend_ = false;
  BlobId pending_;
  std::string pending_dir_;
};

std::string_view ParentOf(std::string_view path) {
  size_t s = path.find_last_of('/');
  return s == std::string_view::npos ? std::string_view() : path.substr(0, s);
}

std::string_view NameOf(std::string_view path) { return path.substr(path.find_last_of('/') + 1); }

}  // namespace

std::unique_ptr<EntryCursor> TreeCursor(const BlobReader& blobs, const BlobId& root, bool once) {
  return std::make_unique<TreeCursorImpl>(blobs, root, once);
}

Result<BlobId> StoreTree(BlobSink& sink, int worker, std::span<const FileEntry> children) {
  std::string rec = EncodeTree(children);
  BlobId id = sink.hasher().Hash(rec.data(), rec.size());
  MV_RETURN_IF_ERROR(sink.Put(worker, id, rec.data(), rec.size()).status());
  return id;
}

Result<BlobId> StoreTrees(BlobSink& sink, int worker, std::vector<FileEntry>& entries) {
  // Children of each directory, by index. The walk lists a directory before its contents, but
  // a selected subtree's ancestors may come in another order: the records are sorted by name.
  std::map<std::string_view, std::vector<size_t>> kids;
  std::set<std::string_view> dir_paths;
  std::vector<size_t> dirs;
  for (size_t i = 0; i < entries.size(); i++) {
    kids[ParentOf(entries[i].path)].push_back(i);
    if (entries[i].type == FileType::kDirectory) {
      dirs.push_back(i);
      dir_paths.insert(entries[i].path);
    }
  }
  for (const auto& [dir, list] : kids)
    if (!dir.empty() && !dir_paths.count(dir))
      return Status::Invalid("entry '" + entries[list.front()].path +
                             "' has no parent directory entry: cannot be stored as a tree");
  // Directories deepest first, so every child's record exists before its parent's.
  auto depth = [&](size_t i) {
    return std::count(entries[i].path.begin(), entries[i].path.end(), '/');
  };
  std::stable_sort(dirs.begin(), dirs.end(),
                   [&](size_t a, size_t b) { return depth(a) > depth(b); });
  auto record = [&](std::string_view dir) -> Result<BlobId> {
    std::vector<const FileEntry*> children;
    auto it = kids.find(dir);
    if (it != kids.end())
      for (size_t i : it->second) children.push_back(&entries[i]);
    std::stable_sort(children.begin(), children.end(), [](const FileEntry* a, const FileEntry* b) {
      return NameOf(a->path) < NameOf(b->path);
    });
    std::string rec = EncodeTree(children);
    BlobId id = sink.hasher().Hash(rec.data(), rec.size());
    MV_RETURN_IF_ERROR(sink.Put(worker, id, rec.data(), rec.size()).status());
    return id;
  };
  for (size_t d : dirs) {
    MV_ASSIGN_OR_RETURN(BlobId id, record(entries[d].path));
    entries[d].tree = id;
  }
  return record("");
}

}  // namespace mv::storage
