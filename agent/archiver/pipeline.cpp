// docs/FORMAT.md §7.2 (the stat shortcut), §7.3 (census), §7.5 (tree records).
#include "agent/archiver/pipeline.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "storage/fs.h"
#include "storage/mailfiles/maildir.h"
#include "storage/xattr.h"

namespace mv::agent {
namespace {

using storage::FileEntry;
using storage::FileType;

constexpr uint32_t kWalkFlags = storage::kFlagHardLink | storage::kFlagXattrs;

std::string_view BaseName(std::string_view p) { return p.substr(p.find_last_of('/') + 1); }
std::string_view DirName(std::string_view p) {
  size_t s = p.find_last_of('/');
  return s == std::string_view::npos ? std::string_view() : p.substr(0, s);
}

// The xattrs of file `rel` of a source, through the source root's descriptor like the walk:
// nothing above the root is looked up. A path too long for one lookup ("/proc/self/fd/N/" + rel
// must stay under PATH_MAX) goes through its directory's descriptor, opened beneath the root.
std::vector<storage::Xattr> ReadFileXattrs(int root_fd, const std::string& rel,
                                           uint64_t* not_kept) {
  constexpr size_t kDirect = 3000;
  if (rel.size() < kDirect) return storage::ReadXattrs(root_fd, rel, not_kept);
  std::string name;
  int dir = storage::fs::OpenParentBeneath(root_fd, rel, &name);
  if (dir < 0) {
    if (errno != ENOENT) (*not_kept)++;  // vanished since the walk: no attributes to keep
    return {};
  }
  auto xattrs = storage::ReadXattrs(dir, name, not_kept);
  ::close(dir);
  return xattrs;
}

}  // namespace

struct Pipeline::Level {
  std::string path;  // "" for the root level (whose entries are the sources' roots)
  Level* parent = nullptr;
  Kid* entry = nullptr;  // this directory's entry among parent->kids (a deque: stable)
  std::deque<Kid> kids;
  size_t pending = 0;  // reads not finished yet (guarded by mu_)
  // Messages of the cur/ and new/ directories below (census), added when those are recorded.
  uint64_t messages = 0, bytes = 0, lo = 0, hi = 0;
};

// The first path of a hard-linked inode in walk order, and its content once known.
struct Pipeline::LinkFirst {
  std::string path;
  storage::BlobId content;
  uint64_t size = 0;
  uint32_t flags = 0;
  bool ready = false;    // content known (guarded by mu_)
  bool dropped = false;  // not in the snapshot: later names are not linked to it
};

Pipeline::Pipeline(const BackupOptions& opts, FileStore& store, storage::BlobSink& trees,
                   ParentIndex& parent, int threads, BackupResult& result,
                   const ProgressFn& progress, PipelineLimits limits)
    : opts_(opts),
      store_(store),
      trees_(trees),
      parent_(parent),
      result_(result),
      progress_(progress),
      limits_(limits) {
  for (const auto& s : opts.sources)
    root_fds_.push_back(::open(s.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  open_.push_back(std::make_unique<Level>());
  for (int t = 0; t < threads; t++) workers_.emplace_back([this, t] { Worker(t); });
}

Pipeline::~Pipeline() {
  {
    std::lock_guard<std::mutex> l(mu_);
    closing_ = true;
    if (fatal_.ok()) fatal_ = Status::Invalid("backup abandoned");  // workers skip the rest
  }
  work_cv_.notify_all();
  for (auto& w : workers_) w.join();
  for (int fd : root_fds_)
    if (fd >= 0) ::close(fd);
}

void Pipeline::Report(const char* phase) {
  if (!progress_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_report_ < std::chrono::milliseconds(100)) return;
  last_report_ = now;
  progress_({files_done_.load(), files_queued_, bytes_done_.load(), bytes_queued_, phase});
}

Status Pipeline::Add(WalkOutput& batch) {
  for (size_t i = 0; i < batch.entries.size(); i++)
    MV_RETURN_IF_ERROR(AddEntry(std::move(batch.entries[i]), batch.maildir_message[i] != 0,
                                batch.source[i], &batch.xattrs_not_kept));
  batch.entries.clear();
  batch.maildir_message.clear();
  batch.source.clear();
  Report("read");
  return Status::Ok();
}

Status Pipeline::AddEntry(FileEntry&& e, bool message, uint16_t source, uint64_t* xattrs_not_kept) {
  std::string_view dir = DirName(e.path);
  while (open_.size() > 1 && open_.back()->path != dir) MV_RETURN_IF_ERROR(CloseTop());
  if (open_.back()->path != dir)
    return Status::Invalid("entry '" + e.path +
                           "' comes without its parent directory: cannot be recorded");
  Level& top = *open_.back();
  Kid& k = top.kids.emplace_back();
  k.e = std::move(e);
  k.message = message ? 1 : 0;
  k.source = source;
  BackupStats& stats = result_.stats;
  if (k.e.type == FileType::kDirectory) {
    stats.dirs++;
    auto l = std::make_unique<Level>();
    l->path = k.e.path;
    l->parent = &top;
    l->entry = &k;
    open_.push_back(std::move(l));
    return parent_.Enter(k.e.path);
  }
  if (k.e.type == FileType::kSymlink) {
    stats.symlinks++;
    return Status::Ok();
  }
  stats.files++;
  if (k.e.flags & storage::kFlagHardLink) {  // register the first name of the inode
    auto [it, inserted] = links_.try_emplace(InodeKey{k.e.dev, k.e.ino});
    if (inserted) {
      it->second = std::make_unique<LinkFirst>();
      it->second->path = k.e.path;
      k.first_of = it->second.get();
    }
  }
  Reuse r;
  MV_ASSIGN_OR_RETURN(bool reused, parent_.Find(k.e, message, &r));
  if (reused && r.xattrs_known) {
    k.e.xattrs = std::move(r.xattrs);
  } else if (source < root_fds_.size() && root_fds_[source] >= 0) {
    const SourceSpec& src = opts_.sources[source];
    k.e.xattrs =
        ReadFileXattrs(root_fds_[source], std::string(RelPath(k.e, src.name)), xattrs_not_kept);
  }
  if (reused) {
    k.e.content = r.content;
    k.e.blobs = std::move(r.blobs);
    k.e.flags = (k.e.flags & kWalkFlags) | r.flags;
    if (k.first_of) {
      std::lock_guard<std::mutex> l(mu_);
      k.first_of->content = k.e.content;
      k.first_of->size = k.e.size;
      k.first_of->flags = k.e.flags;
      k.first_of->ready = true;
    }
    return Status::Ok();
  }
  std::unique_lock<std::mutex> l(mu_);
  top.pending++;
  queue_.push_back({&top, &k});
  files_queued_++;
  bytes_queued_ += k.e.size;
  work_cv_.notify_one();
  while (queue_.size() >= limits_.max_jobs_in_flight && fatal_.ok())
    if (!done_cv_.wait_for(l, std::chrono::milliseconds(100),
                           [&] { return queue_.size() < limits_.max_jobs_in_flight; })) {
      l.unlock();
      Report("read");
      l.lock();
    }
  return fatal_;
}

void Pipeline::Worker(int t) {
  for (;;) {
    Job j;
    bool skip;
    {
      std::unique_lock<std::mutex> l(mu_);
      work_cv_.wait(l, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      j = queue_.front();
      queue_.pop_front();
      skip = !fatal_.ok();
    }
    done_cv_.notify_all();  // room in the queue
    FileEntry& e = j.kid->e;
    const SourceSpec& src = opts_.sources[j.kid->source];
    std::string rel(RelPath(e, src.name));
    FileOutcome out;
    if (!skip) out = store_.Store(t, root_fds_[j.kid->source], src.path + "/" + rel, rel, &e);
    files_done_++;
    bytes_done_ += e.size;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!out.fatal.ok() && fatal_.ok()) fatal_ = out.fatal;
      if (out.drop || skip) j.kid->dropped = 1;
      if (!out.problem.empty()) result_.problems.push_back({src.path + "/" + rel, out.problem});
      if (!out.warning.empty()) result_.warnings.push_back({src.path + "/" + rel, out.warning});
      if (LinkFirst* f = j.kid->first_of) {
        f->content = e.content;
        f->size = e.size;
        f->flags = e.flags;
        f->dropped = j.kid->dropped;
        f->ready = true;
      }
      j.level->pending--;
    }
    done_cv_.notify_all();
  }
}

Status Pipeline::CloseTop() {
  parent_.Leave();
  held_ += open_.back()->kids.size();
  closed_.push_back(std::move(open_.back()));
  open_.pop_back();
  return FinalizeReady(false);
}

Status Pipeline::FinalizeReady(bool wait_all) {
  while (!closed_.empty()) {
    Level& l = *closed_.front();
    {
      std::unique_lock<std::mutex> lk(mu_);
      if (l.pending > 0) {
        if (!wait_all && held_ <= limits_.max_entries_held) return Status::Ok();
        while (!done_cv_.wait_for(lk, std::chrono::milliseconds(100),
                                  [&] { return l.pending == 0; })) {
          lk.unlock();
          Report("read");
          lk.lock();
        }
      }
      if (!fatal_.ok()) return fatal_;
    }
    MV_RETURN_IF_ERROR(Finalize(l));
    held_ -= l.kids.size();
    closed_.pop_front();
  }
  return Status::Ok();
}

// The later names of a hard-linked inode become links to the first one (docs/FORMAT.md §7 bit
// 2) when their content is the same; the first name is a plain file. Content that differs (the
// inode changed between two reads) is not linked: each name keeps what was read for it.
void Pipeline::ResolveLink(Kid& k) {
  auto unlink = [&] {
    k.e.flags &= ~storage::kFlagHardLink;
    k.e.link_target.clear();
  };
  LinkFirst& f = *links_.at(InodeKey{k.e.dev, k.e.ino});
  if (k.first_of == &f) return unlink();
  {
    std::unique_lock<std::mutex> l(mu_);
    done_cv_.wait(l, [&] { return f.ready; });
  }
  if (!f.dropped && f.content == k.e.content && f.size == k.e.size &&
      (f.flags & ~kWalkFlags) == (k.e.flags & ~kWalkFlags)) {
    k.e.link_target = f.path;
    return;
  }
  unlink();
}

Status Pipeline::Finalize(Level& l) {
  std::vector<const FileEntry*> kept;
  kept.reserve(l.kids.size());
  for (Kid& k : l.kids) {
    if (k.dropped) continue;
    if (k.e.type == FileType::kRegular && (k.e.flags & storage::kFlagHardLink)) ResolveLink(k);
    kept.push_back(&k.e);
  }
  // A record is sorted by name; a name given twice (overlapping selected paths) is kept once.
  // The walk lists each directory sorted, so the sort is usually a check.
  auto by_name = [](const FileEntry* a, const FileEntry* b) {
    return BaseName(a->path) < BaseName(b->path);
  };
  if (!std::is_sorted(kept.begin(), kept.end(), by_name))
    std::stable_sort(kept.begin(), kept.end(), by_name);
  kept.erase(std::unique(kept.begin(), kept.end(),
                         [](const FileEntry* a, const FileEntry* b) {
                           return BaseName(a->path) == BaseName(b->path);
                         }),
             kept.end());
  std::string_view name = BaseName(l.path);
  bool message_dir = l.parent && l.parent->parent && (name == "cur" || name == "new");
  bool has[3] = {false, false, false};
  for (const FileEntry* f : kept) {
    if (f->type == FileType::kDirectory) {
      std::string_view n = BaseName(f->path);
      if (n == "cur") has[0] = true;
      if (n == "new") has[1] = true;
      if (n == "tmp") has[2] = true;
    }
    if (f->type != FileType::kRegular) continue;
    files_++;
    bytes_ += f->size;
    if (message_dir) {
      uint64_t lo, hi;
      std::memcpy(&lo, f->content.bytes.data(), 8);
      std::memcpy(&hi, f->content.bytes.data() + 8, 8);
      l.parent->messages++;
      l.parent->bytes += f->size;
      l.parent->lo += lo;
      l.parent->hi += hi;
    }
  }
  if (l.parent && mailfiles::IsMaildir(has[0], has[1], has[2])) {
    const Kid* top = l.entry;
    const std::string& source = opts_.sources[top->source].name;
    std::string rel(RelPath(top->e, source));
    maildirs_.push_back({source, std::move(rel), l.messages, l.bytes, l.lo, l.hi});
  }
  std::string rec = storage::EncodeTree(kept);
  storage::BlobId id = trees_.hasher().Hash(rec.data(), rec.size());
  MV_ASSIGN_OR_RETURN(bool stored, trees_.Put(0, id, rec.data(), rec.size()));
  if (!stored && parent_.IsLost(id)) {
    const std::string where =
        l.entry ? opts_.sources[l.entry->source].path + "/" +
                      std::string(RelPath(l.entry->e, opts_.sources[l.entry->source].name))
                : "(the snapshot's root)";
    std::lock_guard<std::mutex> lk(mu_);
    result_.problems.push_back(
        {where, "its tree record " + id.Hex() +
                    " is named by the index but cannot be read (see the notes), so this "
                    "snapshot cannot restore it either; run `mailvault check`, then `mailvault "
                    "repair index` and back up again"});
  }
  if (l.entry)
    l.entry->e.tree = id;
  else
    root_ = id;
  return Status::Ok();
}

Result<storage::BlobId> Pipeline::Finish() {
  while (open_.size() > 1) MV_RETURN_IF_ERROR(CloseTop());
  held_ += open_.back()->kids.size();
  closed_.push_back(std::move(open_.back()));
  open_.pop_back();
  MV_RETURN_IF_ERROR(FinalizeReady(true));
  {
    std::lock_guard<std::mutex> l(mu_);
    closing_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  MV_RETURN_IF_ERROR(fatal_);
  return root_;
}

std::vector<storage::CensusRow> Pipeline::Census() const {
  std::set<std::pair<std::string_view, std::string_view>> is_maildir;
  for (const auto& m : maildirs_) is_maildir.insert({m.source, m.rel});
  mailfiles::CensusBuilder cb;
  for (const auto& m : maildirs_) {
    bool parent_md = !m.rel.empty() && is_maildir.count({m.source, DirName(m.rel)});
    cb.AddFolderSums(m.source, mailfiles::PlaceOf(m.rel, parent_md), m.messages, m.bytes, m.lo,
                     m.hi);
  }
  return cb.Rows();
}

}  // namespace mv::agent
