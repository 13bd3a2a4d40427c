// docs/FORMAT.md §12 (what a held mail record holds) and §7.3 (what a message is).
#include "retention/deleted_mail.h"

#include <algorithm>

#include "storage/blob_id_set.h"
#include "storage/entry_cursor.h"
#include "storage/mailfiles/maildir.h"

namespace mv::retention {
namespace {

using storage::BlobIdSet;
using storage::FileEntry;

// Walks snapshot `id`, calling visit(entry) for each regular file; a directory whose tree record
// is in `trees` already was walked for another snapshot and is skipped with all below it.
template <typename Visit>
Status Walk(const storage::BlobReader& blobs, const std::string& id, BlobIdSet* trees,
            storage::SnapshotMeta* meta, const Visit& visit) {
  MV_ASSIGN_OR_RETURN(auto cursor, blobs.OpenEntries(id, meta));
  FileEntry e;
  for (;;) {
    auto more = cursor->Next(&e);
    if (!more.ok())
      return Status(more.status().code(),
                    "snapshot " + id.substr(0, 8) + ": " + more.status().message() +
                        "; nothing was removed: run `mailvault check`",
                    more.status().path());
    if (!*more) return Status::Ok();
    if (e.type == storage::FileType::kDirectory) {
      if (!e.tree.IsZero() && !trees->Insert(e.tree)) cursor->SkipChildren();
      continue;
    }
    if (e.type == storage::FileType::kRegular) visit(e);
  }
}

// Where message file `path` ("<source>/<rel>/{cur,new}/<file>") sits; false when it is not in a
// cur/ or new/ directory.
bool PlaceOfMessage(const std::string& path, std::string* source, mailfiles::MaildirPlace* place,
                    std::string* file) {
  auto last = path.rfind('/');
  if (last == std::string::npos || last == 0) return false;
  auto dir_start = path.rfind('/', last - 1);
  if (dir_start == std::string::npos) return false;
  std::string_view sub(path.data() + dir_start + 1, last - dir_start - 1);
  if (sub != "cur" && sub != "new") return false;
  auto first = path.find('/');
  *source = path.substr(0, first);
  std::string rel = dir_start > first ? path.substr(first + 1, dir_start - first - 1) : "";
  // Maildir++ (§7.3): a ".Name" directory inside a mailbox is one of its folders.
  auto slash = rel.rfind('/');
  std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  *place = mailfiles::PlaceOf(rel, slash != std::string::npos && base.size() > 1 && base[0] == '.');
  *file = path.substr(last + 1);
  return true;
}

// A message's identity for holding: its content within its mailbox (any folder, any name), so
// a message moved or re-flagged is the same message, and one a kept snapshot has in another
// mailbox is still held for this one.
storage::BlobId MailboxKey(const storage::KeyedHasher& h, const std::string& source,
                           const std::string& mailbox, const storage::BlobId& content) {
  std::string k = source;
  k.push_back('\0');
  k += mailbox;
  k.push_back('\0');
  k.append(reinterpret_cast<const char*>(content.bytes.data()), content.bytes.size());
  return h.Hash(k.data(), k.size());
}

}  // namespace

Result<DeletedMail> CollectDeletedMail(const storage::BlobReader& blobs,
                                       const std::vector<storage::SnapshotMeta>& removed,
                                       const std::vector<std::string>& kept, int64_t period_ns,
                                       int64_t now_ns) {
  BlobIdSet trees, kept_keys;  // kept_keys: MailboxKey of every message the kept snapshots hold
  storage::SnapshotMeta meta;
  std::string source, file;
  mailfiles::MaildirPlace place;
  for (const auto& id : kept)
    MV_RETURN_IF_ERROR(Walk(blobs, id, &trees, &meta, [&](const FileEntry& e) {
      if (PlaceOfMessage(e.path, &source, &place, &file))
        kept_keys.Insert(MailboxKey(blobs.hasher(), source, place.mailbox, e.content));
    }));
  std::vector<const storage::SnapshotMeta*> order;
  for (const auto& m : removed) order.push_back(&m);
  auto when = [](const storage::SnapshotMeta* m) {
    return m->time_ns ? m->time_ns : m->time * 1000000000LL;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](const auto* a, const auto* b) { return when(a) > when(b); });
  DeletedMail out;
  BlobIdSet seen;  // messages already decided on, in a newer removed snapshot
  for (const auto* m : order) {
    int64_t t = when(m);
    MV_RETURN_IF_ERROR(Walk(blobs, m->id, &trees, &meta, [&](const FileEntry& e) {
      if (!PlaceOfMessage(e.path, &source, &place, &file)) return;
      storage::BlobId key = MailboxKey(blobs.hasher(), source, place.mailbox, e.content);
      if (kept_keys.Contains(key) || !seen.Insert(key)) return;
      if (t + period_ns <= now_ns) {
        out.expired++;
        return;
      }
      storage::HeldMessage h;
      h.entry = e;
      h.entry.xattrs.clear();
      h.entry.flags = 0;
      for (const auto& s : m->sources)
        if (s.name == source) h.source_path = s.path;
      h.mailbox = place.mailbox;
      h.folder = place.folder;
      h.name = std::string(mailfiles::UniqueName(file));
      h.snapshot = m->id;
      h.last_seen_ns = t;
      h.expires_ns = t + period_ns;
      out.held.push_back(std::move(h));
    }));
  }
  return out;
}

}  // namespace mv::retention
