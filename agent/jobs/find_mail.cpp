// agent/jobs/find_mail.h.
#include "agent/jobs/find_mail.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "agent/common/workers.h"
#include "storage/blob_id_set.h"
#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"
#include "storage/tree.h"
#include "storage/mailfiles/headers.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

using storage::BlobId;
using storage::BlobIdHash;
using storage::FileEntry;
using storage::FileType;

// What the walker reports for a file `keep` selected: an index the caller chose for it.
using Slot = uint32_t;
constexpr Slot kNoHit = UINT32_MAX;

// Walks snapshots' trees and reports the files `keep` selects. What a directory tree holds is
// found once and shared by every snapshot that has the same tree at the same path (its tree
// record ID is then the same: docs/FORMAT.md §7.5): a node holds the slots of its own files and
// the nodes of its subdirectories that hold any, so a selected file costs 4 bytes per distinct
// tree that holds it, and a snapshot's hits are the slots reached from its root. Trees are
// decoded into views (storage/snapshot.h TreeItem), no entry is built.
class SharedTreeWalker {
 public:
  // For each regular file: its slot, or kNoHit. `dir` is the directory's path (§7.1), and the
  // same (dir, name, content) is asked again only from another tree.
  using KeepFn = std::function<Slot(std::string_view dir, const storage::TreeItem&)>;
  SharedTreeWalker(const storage::BlobReader& blobs, KeepFn keep)
      : blobs_(blobs),
        keep_(std::move(keep)),
        loader_(blobs, 4, storage::TreeLoader::Keep::kSmall) {}

  // Calls hit(slot) for every file of snapshot `id` that keep selects.
  Status Walk(const std::string& id, const std::function<void(Slot)>& hit) {
    MV_ASSIGN_OR_RETURN(BlobId root, blobs_.RootTree(id));
    if (root.IsZero()) return WalkFlat(id, hit);
    MV_ASSIGN_OR_RETURN(const Node* n, Visit(root, ""));
    Emit(n, hit);
    return Status::Ok();
  }

 private:
  struct Node {
    std::vector<Slot> slots;
    std::vector<const Node*> dirs;
  };

  // nullptr: nothing selected below `tree`.
  Result<const Node*> Visit(const BlobId& tree, const std::string& dir) {
    if (barren_.count(tree)) return nullptr;
    std::string key = dir;
    key.append(reinterpret_cast<const char*>(tree.bytes.data()), tree.bytes.size());
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    Node n;
    bool files = false;
    std::vector<std::pair<std::string, BlobId>> subdirs;
    MV_RETURN_IF_ERROR(loader_.Visit(tree, dir, [&](const storage::TreeItem& it) {
      if (it.type == FileType::kDirectory) {
        subdirs.emplace_back(std::string(it.name), it.tree);
      } else if (it.type == FileType::kRegular) {
        files = true;
        if (Slot s = keep_(dir, it); s != kNoHit) n.slots.push_back(s);
      }
      return Status::Ok();
    }));
    for (const auto& [name, sub] : subdirs) {
      MV_ASSIGN_OR_RETURN(const Node* c, Visit(sub, dir.empty() ? name : dir + "/" + name));
      if (c) n.dirs.push_back(c);
      files = files || !barren_.count(sub);
    }
    if (!files) {  // e.g. every Maildir's empty tmp/: one tree at many places
      barren_.insert(tree);
      return nullptr;
    }
    const Node* r = nullptr;
    if (!n.slots.empty() || !n.dirs.empty()) r = &nodes_.emplace_back(std::move(n));
    memo_.emplace(std::move(key), r);
    return r;
  }

  static void Emit(const Node* n, const std::function<void(Slot)>& hit) {
    if (!n) return;
    for (Slot s : n->slots) hit(s);
    for (const Node* c : n->dirs) Emit(c, hit);
  }

  // A version-1/2 snapshot (one flat list, no trees): every entry, every time.
  Status WalkFlat(const std::string& id, const std::function<void(Slot)>& hit) {
    storage::SnapshotMeta meta;
    MV_ASSIGN_OR_RETURN(auto cur, blobs_.OpenEntries(id, &meta));
    FileEntry e;
    for (;;) {
      MV_ASSIGN_OR_RETURN(bool more, cur->Next(&e));
      if (!more) break;
      if (e.type != FileType::kRegular) continue;
      size_t slash = e.path.find_last_of('/');
      std::string_view path(e.path);
      storage::TreeItem it;
      it.name = slash == std::string::npos ? path : path.substr(slash + 1);
      it.size = e.size;
      it.content = e.content;
      if (!e.blobs.empty())
        it.blobs = std::string_view(reinterpret_cast<const char*>(e.blobs[0].bytes.data()), 16);
      Slot s = keep_(slash == std::string::npos ? std::string_view() : path.substr(0, slash), it);
      if (s != kNoHit) hit(s);
    }
    return Status::Ok();
  }

  const storage::BlobReader& blobs_;
  KeepFn keep_;
  storage::TreeLoader loader_;
  std::unordered_map<std::string, const Node*> memo_;  // dir + tree ID bytes
  std::unordered_set<BlobId, BlobIdHash> barren_;      // trees without a file below them
  std::deque<Node> nodes_;
};

// "<dir>/<name>" when that is a message's path (a file directly in cur/ or new/ of a Maildir).
std::optional<MessagePlace> PlaceOfFile(std::string_view dir, std::string_view name) {
  if (!(dir.ends_with("/cur") || dir.ends_with("/new"))) return std::nullopt;
  std::string path(dir);
  path += '/';
  path.append(name);
  return PlaceOfMessage(path);
}

std::string StripAngles(std::string s) {
  while (!s.empty() && (s.front() == '<' || s.front() == ' ')) s.erase(0, 1);
  while (!s.empty() && (s.back() == '>' || s.back() == ' ')) s.pop_back();
  return s;
}

bool Contains(const std::string& hay, const std::string& needle_folded) {
  return needle_folded.empty() || mailfiles::FoldCase(hay).find(needle_folded) != std::string::npos;
}

}  // namespace

std::optional<MessagePlace> PlaceOfMessage(const std::string& path) {
  std::vector<std::string> c;
  for (size_t i = 0;;) {
    size_t e = path.find('/', i);
    c.push_back(path.substr(i, e == std::string::npos ? std::string::npos : e - i));
    if (e == std::string::npos) break;
    i = e + 1;
  }
  if (c.size() < 3) return std::nullopt;
  const std::string& sub = c[c.size() - 2];
  if (sub != "cur" && sub != "new") return std::nullopt;
  MessagePlace p;
  p.source = c[0];
  p.file = c.back();
  p.unique = std::string(mailfiles::UniqueName(p.file));
  size_t end = c.size() - 2;  // the Maildir's components are c[1..end)
  size_t mb_end = end;
  p.folder = "INBOX";
  if (end >= 3 && c[end - 1].size() > 1 && c[end - 1][0] == '.') {
    p.folder = c[end - 1];
    mb_end = end - 1;
  }
  for (size_t i = 1; i < mb_end; i++) p.mailbox += (i > 1 ? "/" : "") + c[i];
  return p;
}

Result<FindResult> FindMail(const storage::Repository& repo,
                            const std::vector<storage::SnapshotMeta>& snapshots, const FindQuery& q,
                            const ProgressFn& progress) {
  FindResult res;
  const std::string from = mailfiles::FoldCase(q.from), to = mailfiles::FoldCase(q.to),
                    subject = mailfiles::FoldCase(q.subject), id = StripAngles(q.message_id);
  // The matching headers; `wanted` says whether a content is one of them in a flat table, since
  // it is asked for every file of every tree read.
  std::vector<storage::MessageHeaders> matched;
  std::unordered_map<BlobId, uint32_t, BlobIdHash> matched_of;
  storage::BlobIdSet wanted;
  MV_RETURN_IF_ERROR(storage::ForEachRecordedHeaders(
      repo,
      [&](storage::MessageHeaders&& m) {
        res.indexed++;
        if (!id.empty() && m.message_id != id) return;
        if (!Contains(m.from, from) || !Contains(m.to, to) || !Contains(m.subject, subject)) return;
        if (q.since && (!m.date_unix || m.date_unix < q.since)) return;
        if (q.until && (!m.date_unix || m.date_unix > q.until)) return;
        if (!wanted.Insert(m.content)) return;  // recorded twice: the same headers
        matched_of.emplace(m.content, static_cast<uint32_t>(matched.size()));
        matched.push_back(std::move(m));
      },
      &res.damaged));
  if (matched.empty()) return res;

  MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
  std::vector<const storage::SnapshotMeta*> order;
  for (const auto& s : snapshots) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->time_ns < b->time_ns; });

  // The snapshots are split among workers in runs of consecutive ones, each with its own walker
  // (consecutive snapshots share most of their unchanged trees) and its own slots: one per (path,
  // content) it saw.
  struct Seen {
    MessagePlace place;
    BlobId content;
  };
  struct Worker {
    size_t begin = 0, end = 0;  // in `order`
    std::vector<Seen> seen;
    std::vector<uint32_t> message;  // of each slot, after the walks
  };
  const size_t nworkers = std::min<size_t>({static_cast<size_t>(WorkerCount(0)), 4, order.size()});
  std::vector<Worker> workers(nworkers);
  std::vector<std::vector<Slot>> hits(order.size());  // per snapshot, its worker's slots
  std::vector<Status> status(order.size());
  std::atomic<uint64_t> done{0};
  RunWorkers(
      static_cast<int>(nworkers),
      [&](int w) {
        Worker& me = workers[w];
        me.begin = order.size() * w / nworkers;
        me.end = order.size() * (w + 1) / nworkers;
        std::unordered_map<std::string, Slot> slot_of;  // path + content bytes
        std::string key, last_dir;
        std::optional<MessagePlace> dir_place;  // of last_dir's messages
        SharedTreeWalker walker(*blobs, [&](std::string_view dir, const storage::TreeItem& it) {
          if (!wanted.Contains(it.content)) return kNoHit;
          if (dir != last_dir || last_dir.empty()) {
            last_dir.assign(dir);
            dir_place = PlaceOfFile(dir, "x");
          }
          if (!dir_place) return kNoHit;
          if (!q.mailbox.empty() && dir_place->mailbox != q.mailbox) return kNoHit;
          if (!q.folder.empty() && dir_place->folder != q.folder) return kNoHit;
          key.assign(dir).append("/").append(it.name);
          key.append(reinterpret_cast<const char*>(it.content.bytes.data()), 16);
          auto [at, fresh] = slot_of.try_emplace(key, static_cast<Slot>(me.seen.size()));
          if (fresh) {
            Seen& x = me.seen.emplace_back(Seen{*dir_place, it.content});
            x.place.file.assign(it.name);
            x.place.unique = std::string(mailfiles::UniqueName(x.place.file));
          }
          return at->second;
        });
        for (size_t i = me.begin; i < me.end; i++) {
          status[i] = walker.Walk(order[i]->id, [&](Slot s) { hits[i].push_back(s); });
          done++;
        }
      },
      [&] {
        if (progress) progress({done.load(), order.size(), 0, 0, "search"});
      });

  // A message is (place by unique name, content): renamed for a flag change, it stays one.
  struct Message {
    MessagePlace place;  // file: the name in the newest snapshot that holds it
    uint32_t headers;    // in `matched`
    size_t first = SIZE_MAX, last = 0, count = 0, last_seen = SIZE_MAX;  // indexes in `order`
  };
  std::vector<Message> messages;
  std::map<std::tuple<std::string, std::string, std::string, std::string, BlobId>, uint32_t>
      message_of;
  for (Worker& w : workers)
    for (const Seen& x : w.seen) {
      auto [m, fresh] =
          message_of.try_emplace(std::make_tuple(x.place.source, x.place.mailbox, x.place.folder,
                                                 x.place.unique, x.content),
                                 static_cast<uint32_t>(messages.size()));
      if (fresh) messages.push_back({x.place, matched_of.at(x.content)});
      w.message.push_back(m->second);
    }
  for (const Worker& w : workers)
    for (size_t i = w.begin; i < w.end; i++) {
      if (!status[i].ok()) {
        res.damaged.push_back(status[i].ToString());
        continue;
      }
      res.snapshots_searched++;
      for (Slot s : hits[i]) {
        Message& m = messages[w.message[s]];
        m.place.file = w.seen[s].place.file;  // the newest name (flags change it)
        if (m.last_seen == i) continue;
        m.last_seen = i;
        if (m.first == SIZE_MAX) m.first = i;
        m.last = i;
        m.count++;
      }
      hits[i] = {};
    }
  for (auto& m : messages) {
    if (!m.count) continue;
    FoundMessage& f = res.messages.emplace_back();
    f.place = std::move(m.place);
    f.headers = matched[m.headers];  // a copy: a content may be in several places
    f.first_snapshot = order[m.first]->id;
    f.first_time = order[m.first]->time;
    f.last_snapshot = order[m.last]->id;
    f.last_time = order[m.last]->time;
    f.snapshots = m.count;
  }
  std::sort(res.messages.begin(), res.messages.end(), [](const auto& a, const auto& b) {
    return std::tie(a.headers.date_unix, a.place.mailbox, a.place.folder, a.place.unique) <
           std::tie(b.headers.date_unix, b.place.mailbox, b.place.folder, b.place.unique);
  });
  return res;
}

Result<Disappeared> MailboxDiff(const storage::Repository& repo, const std::string& mailbox,
                                const storage::SnapshotMeta& a, const storage::SnapshotMeta& b) {
  MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
  struct Hit {
    std::string path;
    BlobId content;
    uint64_t size;
  };
  std::vector<Hit> hits;
  SharedTreeWalker walker(*blobs, [&](std::string_view dir, const storage::TreeItem& it) -> Slot {
    auto p = PlaceOfFile(dir, it.name);
    if (!p || p->mailbox != mailbox) return kNoHit;
    hits.push_back({std::string(dir) + "/" + std::string(it.name), it.content, it.size});
    return static_cast<Slot>(hits.size() - 1);
  });
  std::vector<Slot> sa, sb;
  MV_RETURN_IF_ERROR(walker.Walk(a.id, [&](Slot s) { sa.push_back(s); }));
  MV_RETURN_IF_ERROR(walker.Walk(b.id, [&](Slot s) { sb.push_back(s); }));
  std::unordered_set<BlobId, BlobIdHash> in_a, in_b;
  for (Slot s : sa) in_a.insert(hits[s].content);
  for (Slot s : sb) in_b.insert(hits[s].content);
  Disappeared d;
  for (const auto& c : in_b) d.appeared += !in_a.count(c);
  std::unordered_map<BlobId, FoundMessage*, BlobIdHash> by_content;
  for (Slot s : sa) {
    const Hit& h = hits[s];
    if (in_b.count(h.content)) continue;
    FoundMessage f;
    f.place = *PlaceOfMessage(h.path);
    f.headers.content = h.content;
    f.headers.size = h.size;
    f.first_snapshot = f.last_snapshot = a.id;
    f.first_time = f.last_time = a.time;
    f.snapshots = 1;
    d.messages.push_back(std::move(f));
  }
  for (auto& f : d.messages) by_content[f.headers.content] = &f;
  std::vector<std::string> damaged;
  if (!by_content.empty())
    MV_RETURN_IF_ERROR(storage::ForEachRecordedHeaders(
        repo,
        [&](storage::MessageHeaders&& h) {
          auto it = by_content.find(h.content);
          if (it != by_content.end()) it->second->headers = std::move(h);
        },
        &damaged));
  std::sort(d.messages.begin(), d.messages.end(), [](const auto& x, const auto& y) {
    return std::tie(x.place.folder, x.place.unique) < std::tie(y.place.folder, y.place.unique);
  });
  return d;
}

Result<IndexHeadersResult> IndexHeaders(const storage::Repository& repo,
                                        const ProgressFn& progress) {
  IndexHeadersResult res;
  std::unordered_set<BlobId, BlobIdHash> known;
  std::vector<std::string> damaged;
  MV_RETURN_IF_ERROR(storage::ForEachRecordedHeaders(
      repo, [&](storage::MessageHeaders&& h) { known.insert(h.content); }, &damaged));
  for (auto& d : damaged) res.problems.push_back(d);
  MV_ASSIGN_OR_RETURN(auto snapshots, repo.ListSnapshots());
  MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
  // content -> (size, first blob), for the messages not yet indexed
  std::unordered_map<BlobId, std::pair<uint64_t, BlobId>, BlobIdHash> todo;
  std::unordered_set<BlobId, BlobIdHash> seen;
  SharedTreeWalker walker(*blobs, [&](std::string_view dir, const storage::TreeItem& it) -> Slot {
    if (!PlaceOfFile(dir, it.name) || !seen.insert(it.content).second) return kNoHit;
    if (known.count(it.content)) {
      res.already++;
      return kNoHit;
    }
    BlobId first = it.FirstBlob();
    if (!first.IsZero()) todo.emplace(it.content, std::make_pair(it.size, first));
    return kNoHit;
  });
  for (const auto& s : snapshots)
    if (Status st = walker.Walk(s.id, [](Slot) {}); !st.ok()) res.problems.push_back(st.ToString());
  res.messages_seen = seen.size();
  // Read the first blob of each message, pack by pack.
  std::map<BlobId, std::vector<BlobId>> by_pack;                        // pack -> contents
  std::unordered_map<BlobId, std::vector<BlobId>, BlobIdHash> by_blob;  // first blob -> contents
  for (const auto& [content, sb] : todo) {
    auto loc = blobs->Find(sb.second);
    if (!loc) {
      res.unreadable++;
      res.problems.push_back("message " + content.Hex() + ": its first blob " + sb.second.Hex() +
                             " is in no index file (run `mailvault check`)");
      continue;
    }
    by_blob[sb.second].push_back(content);
    by_pack[loc->pack].push_back(sb.second);
  }
  std::vector<storage::MessageHeaders> batch;
  const int64_t now = repo.env()->NowNanos();
  uint64_t done = 0;
  for (const auto& pack_blobs : by_pack) {
    const auto& pack = pack_blobs.first;  // a plain name: lambdas below capture it (clang 14)
    std::unordered_set<BlobId, BlobIdHash> want(pack_blobs.second.begin(), pack_blobs.second.end());
    Status st = blobs->ReadPackBlobs(
        pack, [&](const BlobId& id) { return want.count(id) > 0; },
        [&](const BlobId& id, std::string_view data, bool intact) {
          auto contents = by_blob.find(id);
          if (contents == by_blob.end()) return;
          if (!intact) {
            res.unreadable += contents->second.size();
            res.problems.push_back("blob " + id.Hex() + " in pack " + blobs->PackPath(pack) +
                                   " is damaged (run `mailvault check --read-data`)");
            return;
          }
          auto fields = mailfiles::ParseHeaders(data);
          for (const auto& c : contents->second) {
            storage::MessageHeaders h;
            h.content = c;
            h.size = todo.at(c).first;
            h.date = fields.date;
            h.from = fields.from;
            h.to = fields.to;
            h.subject = fields.subject;
            h.message_id = fields.message_id;
            h.date_unix = fields.date_unix;
            batch.push_back(std::move(h));
            res.indexed++;
          }
        });
    if (!st.ok()) res.problems.push_back(st.ToString());
    if (batch.size() >= storage::kMessagesPerHeaderRecord) {
      MV_RETURN_IF_ERROR(storage::RecordHeaders(repo, now, batch));
      batch.clear();
    }
    done += pack_blobs.second.size();
    if (progress) progress({done, todo.size(), 0, 0, "index"});
  }
  MV_RETURN_IF_ERROR(storage::RecordHeaders(repo, now, batch));
  return res;
}

}  // namespace mv::agent
