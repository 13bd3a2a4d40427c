// agent/restorer/restore_held.h.
#include "agent/restorer/restore_held.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "agent/restorer/entries_restore.h"

namespace mv::agent {
namespace {

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

using storage::FileEntry;

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
  SortInWalkOrder(&entries);
  return RestoreEntries(blobs, std::move(entries), std::move(meta), opts, progress);
}

}  // namespace mv::agent
