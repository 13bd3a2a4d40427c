#include "verify/census_diff.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace mv::verify {
namespace {

using FolderKey = std::tuple<std::string, std::string, std::string>;
using MailboxKey = std::tuple<std::string, std::string, std::string>;  // source, mailbox, unique

MessageRef Ref(const MessageRecord* b, const MessageRecord* o) {
  const MessageRecord& any = b ? *b : *o;
  MessageRef r{any.source, any.mailbox, any.folder, any.unique, "", "", 0, 0};
  if (b) r.base_path = b->path, r.base_size = b->size;
  if (o) r.other_path = o->path, r.other_size = o->size;
  return r;
}

}  // namespace

std::vector<FolderDiff> DiffCensus(const std::vector<storage::CensusRow>& base,
                                   const std::vector<storage::CensusRow>& other) {
  std::map<FolderKey, std::pair<const storage::CensusRow*, const storage::CensusRow*>> rows;
  for (const auto& r : base) rows[{r.source, r.mailbox, r.folder}].first = &r;
  for (const auto& r : other) rows[{r.source, r.mailbox, r.folder}].second = &r;
  std::vector<FolderDiff> out;
  for (const auto& [k, pr] : rows) {
    const auto* b = pr.first;
    const auto* o = pr.second;
    if (b && o && b->messages == o->messages && b->bytes == o->bytes && b->digest == o->digest)
      continue;
    FolderDiff d{std::get<0>(k), std::get<1>(k), std::get<2>(k)};
    d.missing_in_base = !b;
    d.missing_in_other = !o;
    if (b) d.base_messages = b->messages, d.base_bytes = b->bytes;
    if (o) d.other_messages = o->messages, d.other_bytes = o->bytes;
    d.digest_differs = b && o && b->digest != o->digest;
    out.push_back(std::move(d));
  }
  return out;
}

MessageDiff DiffMessages(const std::vector<MessageRecord>& base,
                         const std::vector<MessageRecord>& other) {
  // Per (source, mailbox, unique): the records of each side.
  std::map<MailboxKey,
           std::pair<std::vector<const MessageRecord*>, std::vector<const MessageRecord*>>>
      by;
  for (const auto& m : base) by[{m.source, m.mailbox, m.unique}].first.push_back(&m);
  for (const auto& m : other) by[{m.source, m.mailbox, m.unique}].second.push_back(&m);
  MessageDiff d;
  for (auto& [k, sides] : by) {
    auto& bs = sides.first;
    auto& os = sides.second;
    // Same folder and content first (two messages may share a unique name: a copy into a live
    // Maildir makes such pairs), then same folder.
    for (auto bi = bs.begin(); bi != bs.end();) {
      auto oi = std::find_if(os.begin(), os.end(), [&](const auto* o) {
        return o->folder == (*bi)->folder && o->content == (*bi)->content;
      });
      if (oi == os.end())
        ++bi;
      else
        bi = bs.erase(bi), os.erase(oi);
    }
    for (auto bi = bs.begin(); bi != bs.end();) {
      auto oi = std::find_if(os.begin(), os.end(),
                             [&](const auto* o) { return o->folder == (*bi)->folder; });
      if (oi == os.end()) {
        ++bi;
        continue;
      }
      if ((*bi)->content != (*oi)->content) d.changed.push_back(Ref(*bi, *oi));
      bi = bs.erase(bi);
      os.erase(oi);
    }
    // Then across folders: a move (or a changed message that also moved).
    while (!bs.empty() && !os.empty()) {
      MessageRef r = Ref(bs.back(), os.back());
      r.folder = bs.back()->folder + " -> " + os.back()->folder;
      (bs.back()->content == os.back()->content ? d.moved : d.changed).push_back(std::move(r));
      bs.pop_back();
      os.pop_back();
    }
    for (const auto* b : bs) d.only_base.push_back(Ref(b, nullptr));
    for (const auto* o : os) d.only_other.push_back(Ref(nullptr, o));
  }
  return d;
}

}  // namespace mv::verify
