// agent/restorer/restore_held.h.
#include "agent/restorer/restore_held.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "storage/blob_reader.h"
#include "storage/entry_cursor.h"

namespace mv::agent {
namespace {

using storage::FileEntry;

// Walk order (docs/FORMAT.md §7.1): depth first, siblings sorted bytewise; so paths compare by
// their components ("a/b" before "a.b", which plain string order would reverse).
std::vector<std::string_view> Parts(const std::string& s) {
  std::vector<std::string_view> v;
  for (size_t i = 0;;) {
    size_t e = s.find('/', i);
    v.emplace_back(s.data() + i, (e == std::string::npos ? s.size() : e) - i);
    if (e == std::string::npos) return v;
    i = e + 1;
  }
}

// A BlobReader that reads blobs from `base` and whose only "snapshot" is `entries`.
class HeldReader final : public storage::BlobReader {
 public:
  HeldReader(const storage::BlobReader& base, std::vector<FileEntry> entries,
             storage::SnapshotMeta meta)
      : base_(base), entries_(std::move(entries)), meta_(std::move(meta)) {}
  const storage::KeyedHasher& hasher() const override { return base_.hasher(); }
  std::optional<storage::BlobLocation> Find(const storage::BlobId& id) const override {
    return base_.Find(id);
  }
  bool index_damaged() const override { return base_.index_damaged(); }
  std::string PackPath(const storage::BlobId& pack) const override { return base_.PackPath(pack); }
  Status ReadPackBlobs(const storage::BlobId& pack, const WantFn& want,
                       const VisitFn& visit) const override {
    return base_.ReadPackBlobs(pack, want, visit);
  }
  Result<std::string> ReadBlob(const storage::BlobId& id) const override {
    return base_.ReadBlob(id);
  }
  Result<storage::Snapshot> LoadSnapshot(const std::string&) const override {
    return storage::Snapshot{meta_, entries_, {}};
  }
  Result<std::unique_ptr<storage::EntryCursor>> OpenEntries(
      const std::string&, storage::SnapshotMeta* meta) const override {
    *meta = meta_;
    return storage::VectorCursor(entries_);
  }
  Result<std::vector<std::string>> SnapshotIds() const override {
    return std::vector<std::string>{};
  }

 private:
  const storage::BlobReader& base_;
  std::vector<FileEntry> entries_;
  storage::SnapshotMeta meta_;
};

bool Matches(const storage::HeldMessage& m, const HeldMailFilter& f) {
  if (m.last_seen_ns < f.since_ns) return false;
  if (!f.mailbox.empty() && m.mailbox != f.mailbox) return false;
  if (!f.folder.empty() && m.folder != f.folder) return false;
  if (!f.name.empty() && m.name != f.name) {
    auto slash = m.entry.path.rfind('/');
    if (m.entry.path.substr(slash + 1) != f.name) return false;
  }
  return true;
}

}  // namespace

std::vector<storage::HeldMessage> SelectHeldMail(const std::vector<storage::HeldRecord>& records,
                                                 const HeldMailFilter& filter, int64_t now_ns) {
  std::map<std::string, const storage::HeldMessage*> by_path;
  for (const auto& r : records)
    for (const auto& m : r.messages) {
      if (m.expires_ns <= now_ns || !Matches(m, filter)) continue;
      auto [it, fresh] = by_path.try_emplace(m.entry.path, &m);
      if (!fresh && m.last_seen_ns > it->second->last_seen_ns) it->second = &m;
    }
  std::vector<storage::HeldMessage> out;
  for (const auto& [_, m] : by_path) out.push_back(*m);
  return out;
}

Result<RestoreResult> RestoreHeldMail(const storage::BlobReader& blobs,
                                      const std::vector<storage::HeldMessage>& messages,
                                      const RestoreOptions& opts, const ProgressFn& progress) {
  storage::SnapshotMeta meta;
  meta.id = "held-mail";
  std::vector<FileEntry> entries;
  std::map<std::string, std::pair<uint32_t, uint32_t>> owner;  // directory -> a message's uid/gid
  for (const auto& m : messages) {
    const std::string& p = m.entry.path;
    std::string source = p.substr(0, p.find('/'));
    bool known = false;
    for (const auto& s : meta.sources) known |= s.name == source;
    if (!known) meta.sources.push_back({source, m.source_path});
    for (size_t k = p.find('/'); k != std::string::npos; k = p.find('/', k + 1))
      owner.try_emplace(p.substr(0, k), m.entry.uid, m.entry.gid);
    // The message's Maildir gets all three of cur/, new/ and tmp/, as a Maildir has (§7.3).
    std::string dir = p.substr(0, p.rfind('/'));
    std::string maildir = dir.substr(0, dir.rfind('/'));
    for (const char* sub : {"/cur", "/new", "/tmp"})
      owner.try_emplace(maildir + sub, m.entry.uid, m.entry.gid);
    entries.push_back(m.entry);
    meta.files++;
    meta.bytes += m.entry.size;
  }
  for (const auto& [d, ug] : owner) {
    FileEntry e;
    e.path = d;
    e.type = storage::FileType::kDirectory;
    e.mode = 0700;
    e.uid = ug.first;
    e.gid = ug.second;
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const FileEntry& a, const FileEntry& b) {
    auto pa = Parts(a.path), pb = Parts(b.path);
    return std::lexicographical_compare(pa.begin(), pa.end(), pb.begin(), pb.end());
  });
  HeldReader reader(blobs, std::move(entries), std::move(meta));
  RestoreOptions o = opts;
  o.snapshot = "held-mail";
  o.exact = false;  // the held messages are not a whole tree: never remove anything
  return RunRestore(reader, o, progress);
}

}  // namespace mv::agent
