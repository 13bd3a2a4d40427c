// docs/FORMAT.md §6 (index).
#include "storage/index.h"

#include <nlohmann/json.hpp>

#include "storage/codec.h"
#include "storage/sealed.h"

namespace mv::storage {

constexpr std::string_view kIndexMagic{"MVINDEX\x01", 8};

void Index::AddPack(const PackInfo& pack) {
  if (pack_ix_.count(pack.pack_id)) return;
  uint32_t ix = static_cast<uint32_t>(packs_.size());
  packs_.push_back(pack);
  pack_ix_[pack.pack_id] = ix;
  for (uint32_t i = 0; i < pack.entries.size(); i++)
    blobs_.try_emplace(pack.entries[i].id, Slot{ix, i});
}

std::optional<BlobLocation> Index::Find(const BlobId& id) const {
  auto it = blobs_.find(id);
  if (it == blobs_.end()) return std::nullopt;
  const PackInfo& p = packs_[it->second.pack_ix];
  const PackEntry& e = p.entries[it->second.entry_ix];
  return BlobLocation{p.pack_id, e.offset, e.length};
}

std::string EncodeIndexFile(const std::vector<PackInfo>& packs) {
  Encoder enc;
  enc.U(packs.size());
  for (const auto& p : packs) {
    enc.Id(p.pack_id);
    enc.U(p.file_size);
    enc.U(p.entries.size());
    for (const auto& e : p.entries) {
      enc.Id(e.id);
      enc.U(e.offset);
      enc.U(e.length);
    }
  }
  nlohmann::json header = {{"kind", "index"},
                           {"version", 1},
                           {"packs", packs.size()},
                           {"body", {{"compression", "zstd"}, {"encryption", "none"}}}};
  return Seal(kIndexMagic, header.dump(), enc.buf(), 1);
}

Result<std::vector<PackInfo>> DecodeIndexFile(std::string_view data, const std::string& path) {
  MV_ASSIGN_OR_RETURN(Sealed s, Unseal(data, kIndexMagic, path));
  // Counts are checked against what the body can hold (a pack or an entry record is at least
  // 18 bytes) before anything is allocated for them.
  constexpr uint64_t kMinRecord = 16 + 1 + 1;
  Decoder dec(s.body);
  uint64_t pack_count = dec.U();
  if (!dec.ok() || pack_count > s.body.size() / kMinRecord)
    return Status::Corruption("bad pack count", path);
  std::vector<PackInfo> packs(pack_count);
  for (auto& p : packs) {
    p.pack_id = dec.Id();
    p.file_size = dec.U();
    uint64_t n = dec.U();
    if (!dec.ok() || n > s.body.size() / kMinRecord)
      return Status::Corruption("bad entry count", path);
    p.entries.resize(n);
    for (auto& e : p.entries) {
      e.id = dec.Id();
      e.offset = dec.U();
      e.length = dec.U();
    }
  }
  if (!dec.ok() || !dec.done()) return Status::Corruption("index body is malformed", path);
  return packs;
}

}  // namespace mv::storage
