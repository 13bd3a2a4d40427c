#include "verify/merge_walk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>

#include "storage/mailfiles/maildir.h"
#include "verify/tree_scan.h"

namespace mv::verify {
namespace {

using storage::BlobId;
using storage::FileEntry;
using storage::FileType;

// Walk order (docs/FORMAT.md §7.1) as an order of whole paths: '/' below every other byte.
bool WalkLess(const std::string& a, const std::string& b) {
  auto rank = [](char c) { return c == '/' ? 0 : static_cast<unsigned char>(c) + 1; };
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return rank(a[i]) < rank(b[i]);
  return a.size() < b.size();
}
struct WalkCmp {
  bool operator()(const std::string& a, const std::string& b) const { return WalkLess(a, b); }
};

// Hands out a cursor's entries in walk order, whether it gives them in walk order (version 3)
// or in path order (versions 1-2 hand out their list sorted by path, where "x.y" and its
// subtree come before "x/..."). Path order is reordered holding only what must wait: an entry
// "x<c>..." with c < '/' while directory "x"'s children may still come.
class WalkOrdered {
 public:
  explicit WalkOrdered(storage::EntryCursor& in) : in_(in) {}

  Result<bool> Next(FileEntry* out) {
    for (;;) {
      if (!buf_.empty() && (done_ || walk_input_ || !Blocked(buf_.begin()->first))) {
        auto node = buf_.extract(buf_.begin());
        *out = std::move(node.mapped());
        return true;
      }
      if (done_) return false;
      FileEntry e;
      MV_ASSIGN_OR_RETURN(bool more, in_.Next(&e));
      if (!more) {
        done_ = true;
        continue;
      }
      if (!walk_input_ && e.path < last_) walk_input_ = true;  // not path order: walk order
      last_ = e.path;
      std::erase_if(open_, [&](const std::string& x) { return !MayStillHold(x); });
      if (e.type == FileType::kDirectory) open_.push_back(e.path);
      std::string key = e.path;
      buf_.emplace(std::move(key), std::move(e));
    }
  }

 private:
  // In path order, entries below directory `x` may still follow the last one read.
  bool MayStillHold(const std::string& x) const {
    return last_.starts_with(x) && (last_.size() == x.size() || last_[x.size()] <= '/');
  }
  bool Blocked(const std::string& path) const {
    for (const auto& x : open_)
      if (path.size() > x.size() && path.starts_with(x) && path[x.size()] < '/') return true;
    return false;
  }

  storage::EntryCursor& in_;
  std::multimap<std::string, FileEntry, WalkCmp> buf_;
  std::vector<std::string> open_;  // directories read whose children may still come
  std::string last_;
  bool done_ = false, walk_input_ = false;
};

// A file directly in a cur/ or new/ directory: a message if that directory's parent is a Maildir.
struct Rec {
  std::string path;  // "<source>/<rel>"
  uint64_t size = 0;
  BlobId content;
  int damaged = -1;  // snapshot side: its index in MergeWalkResult::damaged
};

// A Maildir++ folder (".Name") whose snapshot-side place waits for its parent's cur/new/tmp,
// which sort after it.
struct Deferred {
  std::string rel;
  bool maildir = false;
  std::vector<Rec> recs;
};

struct Frame {
  std::string rel;                        // below the source root; "" for the root
  int snap_bits = 0, tree_bits = 0;       // cur (1), new (2), tmp (4) directories on each side
  std::vector<Rec> snap_msgs, tree_msgs;  // files of its cur/ and new/
  std::vector<Deferred> deferred;
  // A dot child was paired assuming the snapshot's cur/new/tmp here match the tree's.
  bool assumed = false;
};

int SubdirBit(const std::string& name) {
  return name == "cur" ? 1 : name == "new" ? 2 : name == "tmp" ? 4 : 0;
}

std::string BaseName(const std::string& rel) { return rel.substr(rel.find_last_of('/') + 1); }

using Key = std::tuple<std::string, std::string, std::string>;  // source, mailbox, unique

class Walker {
 public:
  Walker(storage::EntryCursor& cursor, const std::map<std::string, std::string>& roots,
         TreeKind kind, const storage::KeyedHasher& hasher)
      : in_(cursor), roots_(roots), kind_(kind), hasher_(hasher) {}

  Result<std::optional<MergeWalkResult>> Run() {
    Advance();
    std::set<std::string> walked;
    while (have_ && !Stopped()) {
      std::string src = la_.path.substr(0, la_.path.find('/'));
      if (!roots_.count(src)) {
        if (kind_ == TreeKind::kRestored) diverged_ = true;
        Advance();  // a live comparison looks at its own source only
        continue;
      }
      if (!walked.insert(src).second) diverged_ = true;  // a source's entries not in one run
      if (la_.path == src) Advance();                    // the source root's own entry
      if (!Stopped()) WalkSource(src);
    }
    for (const auto& [src, root] : roots_)
      if (!Stopped() && walked.insert(src).second) WalkSource(src);
    if (!err_.ok()) return err_;
    if (diverged_) return std::optional<MergeWalkResult>();
    Finish();
    return std::optional<MergeWalkResult>(std::move(out_));
  }

 private:
  bool Stopped() const { return diverged_ || !err_.ok(); }
  void Advance() {
    auto r = in_.Next(&la_);
    if (!r.ok()) err_ = r.status();
    have_ = r.ok() && *r;
  }
  void Problem(const std::string& rel, const std::string& why) {
    out_.problems[src_].push_back((rel.empty() ? root_ : root_ + "/" + rel) + ": " + why);
  }

  void WalkSource(const std::string& src) {
    src_ = src;
    root_ = roots_.at(src);
    hash_problems_.clear();
    out_.problems[src];
    auto fd = OpenTreeRoot(src, root_);
    if (!fd.ok()) out_.root_errors.emplace(src, fd.status());
    Frame top;
    Dir(top, fd.ok() ? *fd : -1, nullptr, nullptr);
    if (fd.ok()) ::close(*fd);
    auto& p = out_.problems[src];
    p.insert(p.end(), hash_problems_.begin(), hash_problems_.end());  // ScanTree's order
  }

  // Compares directory f.rel: its snapshot entries (next from the cursor) with the names in
  // `dfd` (-1: absent from the tree). `folder`: the Maildir candidate when f is its cur or new.
  void Dir(Frame& f, int dfd, Frame* parent, Frame* folder) {
    std::vector<std::string> names;
    if (dfd >= 0) {
      if (!ListNames(dfd, &names))
        Problem(f.rel, std::string("cannot list directory: ") + std::strerror(errno));
      std::sort(names.begin(), names.end());
      for (const auto& n : names) {
        struct stat st;
        if (SubdirBit(n) && ::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode))
          f.tree_bits |= SubdirBit(n);
      }
    }
    const std::string prefix = src_ + "/" + (f.rel.empty() ? "" : f.rel + "/");
    std::string last;
    for (size_t ni = 0; !Stopped();) {
      bool snap = have_ && la_.path.size() > prefix.size() && la_.path.starts_with(prefix);
      if (!snap && ni == names.size()) break;
      std::string sname = snap ? la_.path.substr(prefix.size()) : "";
      if (snap && (sname.find('/') != std::string::npos || (!last.empty() && sname <= last))) {
        diverged_ = true;  // out of walk order, or below a directory without an entry
        return;
      }
      int c = !snap ? 1 : ni == names.size() ? -1 : sname.compare(names[ni]);
      std::optional<FileEntry> m;
      if (c <= 0) {
        m = std::move(la_);
        last = sname;
        Advance();
      }
      bool in_tree = c >= 0;
      if (in_tree) ni++;
      Child(f, dfd, c <= 0 ? sname : names[ni - 1], m ? &*m : nullptr, in_tree, folder);
    }
    if (!Stopped()) Close(f, parent);
  }

  void Child(Frame& f, int dfd, const std::string& name, FileEntry* m, bool in_tree,
             Frame* folder) {
    const std::string rel = f.rel.empty() ? name : f.rel + "/" + name;
    const std::string path = src_ + "/" + rel;
    bool tree_dir = false, tree_reg = false;
    uint64_t size = 0;
    BlobId hash;
    if (in_tree) {
      struct stat st;
      if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        Problem(rel, std::strerror(errno));
      } else {
        tree_dir = S_ISDIR(st.st_mode);
        tree_reg = S_ISREG(st.st_mode);
        size = static_cast<uint64_t>(st.st_size);
      }
    }
    if (tree_reg && (kind_ == TreeKind::kRestored || (folder && folder->tree_bits == 7))) {
      auto h = HashAt(dfd, name, root_ + "/" + rel, hasher_);
      if (h.ok())
        hash = *h;
      else
        hash_problems_.push_back(h.status().ToString()), tree_reg = false;  // as if absent
    }
    if (tree_reg && folder) folder->tree_msgs.push_back({path, size, hash});
    if (m && m->type == FileType::kRegular) SnapshotFile(*m, tree_reg, size, hash, folder);
    if (m && m->type == FileType::kDirectory) f.snap_bits |= SubdirBit(name);
    if (!tree_dir && !(m && m->type == FileType::kDirectory)) return;
    int cfd = -1;
    if (tree_dir) {
      cfd = ::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) Problem(rel, std::string("cannot open directory: ") + std::strerror(errno));
    }
    Frame child;
    child.rel = rel;
    Dir(child, cfd, &f, SubdirBit(name) & 3 ? &f : nullptr);
    if (cfd >= 0) ::close(cfd);
  }

  // A regular file of the snapshot: counted, and (restored tree) checked against what came back.
  void SnapshotFile(const FileEntry& m, bool tree_reg, uint64_t size, const BlobId& hash,
                    Frame* folder) {
    int damaged = -1;
    if (kind_ == TreeKind::kRestored) {
      out_.files++, out_.bytes += m.size;
      std::string what;
      if (!tree_reg)
        what = "missing after restore";
      else if (size != m.size)
        what =
            "restored with " + std::to_string(size) + " bytes, recorded " + std::to_string(m.size);
      else if (hash != m.content)
        what = "restored content differs from the recorded content";
      if (!what.empty()) {
        damaged = static_cast<int>(out_.damaged.size());
        out_.damaged.push_back({m.path, "", what, m.blobs});
      }
      if (m.flags & (storage::kFlagSqlite | storage::kFlagSqliteRaw)) {
        FileEntry db = m;
        db.blobs.clear();
        out_.databases.push_back(std::move(db));
        if (tree_reg) out_.database_files[m.path] = {size, hash};
      }
    }
    if (folder) folder->snap_msgs.push_back({m.path, m.size, m.content, damaged});
  }

  // Directory f is done on both sides: its messages get their place, are counted and paired.
  void Close(Frame& f, Frame* parent) {
    bool snap_md = f.snap_bits == 7, tree_md = f.tree_bits == 7;
    for (auto& d : f.deferred) CountSnapshot(PlaceOf(d.rel, snap_md), d.maildir, d.recs, true);
    if (f.assumed && snap_md != (f.tree_bits == 7)) {
      diverged_ = true;  // a dot child was paired under the wrong place
      return;
    }
    std::string base = BaseName(f.rel);
    bool tree_parent_md = parent && parent->tree_bits == 7;
    bool waits = parent && !f.rel.empty() && base.size() > 1 && base[0] == '.';
    if (waits && !(snap_md && tree_md && !f.snap_msgs.empty() && !f.tree_msgs.empty())) {
      CountTree(PlaceOf(f.rel, tree_parent_md), tree_md, f.tree_msgs, true);
      parent->deferred.push_back({f.rel, snap_md, std::move(f.snap_msgs)});
      return;
    }
    // Not a dot folder, its place is known; or paired assuming the snapshot's parent is a
    // Maildir exactly when the tree's is (checked when the parent closes).
    if (waits) parent->assumed = true;
    auto sp = PlaceOf(f.rel, waits ? tree_parent_md : false);
    auto tp = PlaceOf(f.rel, tree_parent_md);
    bool same = snap_md && tree_md && sp.mailbox == tp.mailbox && sp.folder == tp.folder;
    CountSnapshot(sp, snap_md, f.snap_msgs, !same);
    CountTree(tp, tree_md, f.tree_msgs, !same);
    if (same) Pair(sp, f.snap_msgs, f.tree_msgs);
  }

  static mailfiles::MaildirPlace PlaceOf(const std::string& rel, bool parent_md) {
    return rel.empty() ? mailfiles::MaildirPlace{"", "INBOX"} : mailfiles::PlaceOf(rel, parent_md);
  }

  MessageRecord Record(const mailfiles::MaildirPlace& p, const Rec& r) const {
    return {src_, p.mailbox, p.folder, Unique(r.path), r.path, r.size, r.content};
  }
  static std::string Unique(const std::string& path) {
    return std::string(mailfiles::UniqueName(std::string_view(path).substr(path.rfind('/') + 1)));
  }

  void CountSnapshot(const mailfiles::MaildirPlace& p, bool maildir, const std::vector<Rec>& recs,
                     bool unpaired) {
    if (!maildir) return;
    snap_census_.AddFolder(src_, p);
    if (!recs.empty()) mailboxes_.insert({src_, p.mailbox});
    for (const auto& r : recs) {
      snap_census_.AddMessage(src_, p, r.size, r.content);
      out_.messages_count++;
      if (r.damaged >= 0) out_.damaged[r.damaged].mailbox = p.mailbox;
      if (unpaired) leftovers_[{src_, p.mailbox, Unique(r.path)}].first.push_back(Record(p, r));
    }
  }
  void CountTree(const mailfiles::MaildirPlace& p, bool maildir, const std::vector<Rec>& recs,
                 bool unpaired) {
    if (!maildir) return;
    tree_census_.AddFolder(src_, p);
    for (const auto& r : recs) {
      tree_census_.AddMessage(src_, p, r.size, r.content);
      if (unpaired) leftovers_[{src_, p.mailbox, Unique(r.path)}].second.push_back(Record(p, r));
    }
  }

  static MessageRef Ref(const MessageRecord* b, const MessageRecord* o) {
    const MessageRecord& any = b ? *b : *o;
    MessageRef r{any.source, any.mailbox, any.folder, any.unique, "", "", 0, 0};
    if (b) r.base_path = b->path, r.base_size = b->size;
    if (o) r.other_path = o->path, r.other_size = o->size;
    return r;
  }

  // verify/census_diff.cpp DiffMessages' first two rounds (same folder and content, then same
  // folder) for one folder; what stays unpaired waits for the cross-folder round in Finish().
  void Pair(const mailfiles::MaildirPlace& p, const std::vector<Rec>& snap,
            const std::vector<Rec>& tree) {
    std::map<std::string, std::pair<std::vector<MessageRecord>, std::vector<MessageRecord>>> by;
    for (const auto& r : snap) by[Unique(r.path)].first.push_back(Record(p, r));
    for (const auto& r : tree) by[Unique(r.path)].second.push_back(Record(p, r));
    auto by_path = [](const auto& a, const auto& b) { return a.path < b.path; };
    for (auto& [unique, sides] : by) {
      auto& bs = sides.first;
      auto& os = sides.second;
      std::sort(bs.begin(), bs.end(), by_path);
      std::sort(os.begin(), os.end(), by_path);
      for (auto bi = bs.begin(); bi != bs.end();) {
        auto oi = std::find_if(os.begin(), os.end(),
                               [&](const auto& o) { return o.content == bi->content; });
        if (oi == os.end())
          ++bi;
        else
          bi = bs.erase(bi), os.erase(oi);
      }
      while (!bs.empty() && !os.empty()) {
        if (bs.front().content != os.front().content)
          changed_.push_back(
              {{src_, p.mailbox, unique}, 0, bs.front().path, 0, Ref(&bs.front(), &os.front())});
        bs.erase(bs.begin());
        os.erase(os.begin());
      }
      if (bs.empty() && os.empty()) continue;  // the common case: holds nothing further
      auto& left = leftovers_[{src_, p.mailbox, unique}];
      for (auto& b : bs) left.first.push_back(std::move(b));
      for (auto& o : os) left.second.push_back(std::move(o));
    }
  }

  // The cross-folder round of DiffMessages over what stayed unpaired, and every list in the
  // order DiffMessages gives it (by source, mailbox, unique name).
  void Finish() {
    MessageDiff& d = out_.messages;
    auto by_path = [](const auto& a, const auto& b) { return a.path < b.path; };
    for (auto& [key, sides] : leftovers_) {
      auto& bs = sides.first;
      auto& os = sides.second;
      std::sort(bs.begin(), bs.end(), by_path);
      std::sort(os.begin(), os.end(), by_path);
      int seq = 0;
      while (!bs.empty() && !os.empty()) {
        MessageRef r = Ref(&bs.back(), &os.back());
        r.folder = bs.back().folder + " -> " + os.back().folder;
        if (bs.back().content == os.back().content)
          d.moved.push_back(std::move(r));
        else
          changed_.push_back({key, 1, "", seq++, std::move(r)});
        bs.pop_back();
        os.pop_back();
      }
      for (const auto& b : bs) d.only_base.push_back(Ref(&b, nullptr));
      for (const auto& o : os) d.only_other.push_back(Ref(nullptr, &o));
    }
    std::sort(changed_.begin(), changed_.end(), [](const auto& a, const auto& b) {
      return std::tie(a.key, a.round, a.base_path, a.seq) <
             std::tie(b.key, b.round, b.base_path, b.seq);
    });
    for (auto& c : changed_) d.changed.push_back(std::move(c.ref));
    out_.snapshot_census = snap_census_.Rows();
    out_.tree_census = tree_census_.Rows();
    out_.mailboxes = mailboxes_.size();
    std::sort(out_.damaged.begin(), out_.damaged.end(),
              [](const auto& a, const auto& b) { return a.path < b.path; });
    std::sort(out_.databases.begin(), out_.databases.end(),
              [](const auto& a, const auto& b) { return a.path < b.path; });
  }

  struct Changed {
    Key key;
    int round;  // 0: same folder (ordered by base path), 1: across folders (in pairing order)
    std::string base_path;
    int seq;
    MessageRef ref;
  };

  WalkOrdered in_;
  const std::map<std::string, std::string>& roots_;
  TreeKind kind_;
  const storage::KeyedHasher& hasher_;
  FileEntry la_;  // the next entry, when have_
  bool have_ = false, diverged_ = false;
  Status err_;
  std::string src_, root_;
  std::vector<std::string> hash_problems_;
  mailfiles::CensusBuilder snap_census_, tree_census_;
  std::set<std::pair<std::string, std::string>> mailboxes_;
  std::map<Key, std::pair<std::vector<MessageRecord>, std::vector<MessageRecord>>> leftovers_;
  std::vector<Changed> changed_;
  MergeWalkResult out_;
};

}  // namespace

Result<std::optional<MergeWalkResult>> MergeWalk(storage::EntryCursor& cursor,
                                                 const std::map<std::string, std::string>& roots,
                                                 TreeKind kind,
                                                 const storage::KeyedHasher& hasher) {
  Walker w(cursor, roots, kind, hasher);
  return w.Run();
}

}  // namespace mv::verify
