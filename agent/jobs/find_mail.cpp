// agent/jobs/find_mail.h.
#include "agent/jobs/find_mail.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"
#include "storage/mailfiles/headers.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

using storage::BlobId;
using storage::BlobIdHash;
using storage::FileEntry;
using storage::FileType;

struct Hit {
  std::string path;
  BlobId content;
  uint64_t size = 0;
  BlobId first_blob;
};

bool Under(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

// Walks snapshots' entries, calling `keep` on each message entry to decide whether it is a hit;
// what a directory tree shared by several snapshots holds is found once and reused (its tree
// record ID is the same: docs/FORMAT.md §7.5).
class SharedTreeWalker {
 public:
  explicit SharedTreeWalker(std::function<bool(const FileEntry&)> keep) : keep_(std::move(keep)) {}

  Status Walk(storage::EntryCursor& cur, std::vector<Hit>* out) {
    struct Open {
      std::string path;
      BlobId tree;
      bool has_tree;
      size_t start;
    };
    std::vector<Open> open;
    auto close = [&](const Open& o) {
      if (!o.has_tree) return;
      std::vector<Hit> rel;
      for (size_t i = o.start; i < out->size(); i++) {
        Hit h = (*out)[i];
        h.path = h.path.substr(o.path.size());
        rel.push_back(std::move(h));
      }
      memo_.emplace(o.tree, std::move(rel));
    };
    FileEntry e;
    for (;;) {
      MV_ASSIGN_OR_RETURN(bool more, cur.Next(&e));
      if (!more) break;
      while (!open.empty() && !Under(e.path, open.back().path)) {
        close(open.back());
        open.pop_back();
      }
      if (e.type == FileType::kDirectory) {
        bool has_tree = e.tree != BlobId{};
        if (has_tree) {
          auto it = memo_.find(e.tree);
          if (it != memo_.end()) {
            for (const auto& h : it->second) {
              Hit x = h;
              x.path = e.path + h.path;
              out->push_back(std::move(x));
            }
            cur.SkipChildren();
            continue;
          }
        }
        open.push_back({e.path, e.tree, has_tree, out->size()});
        continue;
      }
      if (e.type != FileType::kRegular || !keep_(e)) continue;
      out->push_back({e.path, e.content, e.size, e.blobs.empty() ? BlobId{} : e.blobs[0]});
    }
    while (!open.empty()) {
      close(open.back());
      open.pop_back();
    }
    return Status::Ok();
  }

 private:
  std::function<bool(const FileEntry&)> keep_;
  std::unordered_map<BlobId, std::vector<Hit>, BlobIdHash> memo_;
};

bool IsMessageEntry(const FileEntry& e) { return PlaceOfMessage(e.path).has_value(); }

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
  std::unordered_map<BlobId, storage::MessageHeaders, BlobIdHash> wanted;
  MV_RETURN_IF_ERROR(storage::ForEachRecordedHeaders(
      repo,
      [&](storage::MessageHeaders&& m) {
        res.indexed++;
        if (!id.empty() && m.message_id != id) return;
        if (!Contains(m.from, from) || !Contains(m.to, to) || !Contains(m.subject, subject)) return;
        if (q.since && (!m.date_unix || m.date_unix < q.since)) return;
        if (q.until && (!m.date_unix || m.date_unix > q.until)) return;
        wanted.emplace(m.content, std::move(m));
      },
      &res.damaged));
  if (wanted.empty()) return res;

  MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
  SharedTreeWalker walker([&](const FileEntry& e) { return wanted.count(e.content) > 0; });
  // (mailbox place, content) -> what was found
  std::map<std::tuple<std::string, std::string, std::string, std::string, BlobId>, FoundMessage>
      found;
  std::vector<const storage::SnapshotMeta*> order;
  for (const auto& s : snapshots) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->time_ns < b->time_ns; });
  uint64_t done = 0;
  for (const auto* s : order) {
    if (progress) progress({done, order.size(), 0, 0, "search"});
    done++;
    storage::SnapshotMeta meta;
    auto cur = blobs->OpenEntries(s->id, &meta);
    if (!cur.ok()) {
      res.damaged.push_back(cur.status().ToString());
      continue;
    }
    std::vector<Hit> hits;
    if (Status st = walker.Walk(**cur, &hits); !st.ok()) {
      res.damaged.push_back(st.ToString());
      continue;
    }
    res.snapshots_searched++;
    for (const auto& h : hits) {
      auto place = PlaceOfMessage(h.path);
      if (!place) continue;
      if (!q.mailbox.empty() && place->mailbox != q.mailbox) continue;
      if (!q.folder.empty() && place->folder != q.folder) continue;
      auto key =
          std::make_tuple(place->source, place->mailbox, place->folder, place->unique, h.content);
      auto [it, fresh] = found.try_emplace(key);
      FoundMessage& f = it->second;
      if (fresh) {
        f.place = *place;
        f.headers = wanted.at(h.content);
        f.first_snapshot = s->id;
        f.first_time = s->time;
      }
      f.place.file = place->file;  // the newest name (flags change it)
      f.last_snapshot = s->id;
      f.last_time = s->time;
      f.snapshots++;
    }
  }
  for (auto& [_, f] : found) res.messages.push_back(std::move(f));
  std::sort(res.messages.begin(), res.messages.end(), [](const auto& a, const auto& b) {
    return std::tie(a.headers.date_unix, a.place.mailbox, a.place.folder, a.place.unique) <
           std::tie(b.headers.date_unix, b.place.mailbox, b.place.folder, b.place.unique);
  });
  return res;
}

Result<Disappeared> MailboxDiff(const storage::Repository& repo, const std::string& mailbox,
                                const storage::SnapshotMeta& a, const storage::SnapshotMeta& b) {
  MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
  auto in_mailbox = [&](const FileEntry& e) {
    auto p = PlaceOfMessage(e.path);
    return p && p->mailbox == mailbox;
  };
  SharedTreeWalker walker(in_mailbox);
  std::vector<Hit> ha, hb;
  storage::SnapshotMeta m;
  MV_ASSIGN_OR_RETURN(auto ca, blobs->OpenEntries(a.id, &m));
  MV_RETURN_IF_ERROR(walker.Walk(*ca, &ha));
  MV_ASSIGN_OR_RETURN(auto cb, blobs->OpenEntries(b.id, &m));
  MV_RETURN_IF_ERROR(walker.Walk(*cb, &hb));
  std::unordered_set<BlobId, BlobIdHash> in_a, in_b;
  for (const auto& h : ha) in_a.insert(h.content);
  for (const auto& h : hb) in_b.insert(h.content);
  Disappeared d;
  for (const auto& c : in_b) d.appeared += !in_a.count(c);
  std::unordered_map<BlobId, FoundMessage*, BlobIdHash> by_content;
  for (const auto& h : ha) {
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
  SharedTreeWalker walker(IsMessageEntry);
  // content -> (size, first blob), for the messages not yet indexed
  std::unordered_map<BlobId, std::pair<uint64_t, BlobId>, BlobIdHash> todo;
  std::unordered_set<BlobId, BlobIdHash> seen;
  for (const auto& s : snapshots) {
    storage::SnapshotMeta m;
    auto cur = blobs->OpenEntries(s.id, &m);
    if (!cur.ok()) {
      res.problems.push_back(cur.status().ToString());
      continue;
    }
    std::vector<Hit> hits;
    if (Status st = walker.Walk(**cur, &hits); !st.ok()) {
      res.problems.push_back(st.ToString());
      continue;
    }
    for (const auto& h : hits) {
      if (!seen.insert(h.content).second) continue;
      if (known.count(h.content)) {
        res.already++;
        continue;
      }
      if (h.first_blob != BlobId{}) todo.emplace(h.content, std::make_pair(h.size, h.first_blob));
    }
  }
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
