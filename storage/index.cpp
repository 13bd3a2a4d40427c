// docs/FORMAT.md §6 (index).
#include "storage/index.h"

#include <algorithm>
#include <bit>

#include <nlohmann/json.hpp>

#include "storage/codec.h"
#include "storage/layout.h"
#include "storage/sealed.h"

namespace mv::storage {

constexpr std::string_view kIndexMagic{"MVINDEX\x01", 8};

namespace {

uint32_t RowKey(const BlobId& id) { return static_cast<uint32_t>(MixedBits(id) >> 32); }

// Buckets of about 8 rows, at most 2^16 of them.
int BucketBits(size_t rows) {
  int width = std::bit_width(rows);
  return std::clamp(width - 4, 0, 16);
}

}  // namespace

Index& Index::operator=(Index&& other) noexcept {
  if (this == &other) return *this;
  packs_ = std::move(other.packs_);
  pack_ix_ = std::move(other.pack_ix_);
  table_ = std::move(other.table_);
  settled_.store(other.settled_.load());
  other.settled_.store(true);
  other.packs_.clear();
  other.pack_ix_.clear();
  other.table_ = Table();
  return *this;
}

void Index::AddPack(const PackInfo& pack) {
  if (pack_ix_.count(pack.pack_id)) return;
  AddPack(PackInfo(pack));
}

void Index::AddPack(PackInfo&& pack) {
  if (pack_ix_.count(pack.pack_id)) return;
  pack_ix_[pack.pack_id] = static_cast<uint32_t>(packs_.size());
  if (!pack.entries.empty()) settled_.store(false, std::memory_order_relaxed);
  packs_.push_back(std::move(pack));
}

std::vector<PackInfo> Index::TakePacks() && {
  std::vector<PackInfo> out = std::move(packs_);
  *this = Index();
  return out;
}

size_t Index::blob_count() const {
  Settle();
  return table_.rows.size();
}

void Index::Settle() const {
  if (settled_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> l(mu_);
  if (settled_.load(std::memory_order_relaxed)) return;
  MergeNewPacks();
  settled_.store(true, std::memory_order_release);
}

void Index::MergeNewPacks() const {
  std::vector<Row>& rows = table_.rows;
  size_t old_rows = rows.size(), added = 0;
  for (size_t p = table_.merged_packs; p < packs_.size(); p++) added += packs_[p].entries.size();
  rows.reserve(old_rows + added);
  for (size_t p = table_.merged_packs; p < packs_.size(); p++) {
    const auto& entries = packs_[p].entries;
    for (size_t e = 0; e < entries.size(); e++)
      rows.push_back({RowKey(entries[e].id), static_cast<uint32_t>(p), static_cast<uint32_t>(e)});
  }
  table_.merged_packs = packs_.size();
  // Total order: rows of one blob end up adjacent-by-key with the first-added one first.
  auto less = [](const Row& a, const Row& b) {
    if (a.key != b.key) return a.key < b.key;
    if (a.pack_ix != b.pack_ix) return a.pack_ix < b.pack_ix;
    return a.entry_ix < b.entry_ix;
  };
  auto mid = rows.begin() + static_cast<std::ptrdiff_t>(old_rows);
  std::sort(mid, rows.end(), less);
  std::inplace_merge(rows.begin(), mid, rows.end(), less);
  DropDuplicates();
  BuildStarts();
}

void Index::DropDuplicates() const {
  std::vector<Row>& rows = table_.rows;
  size_t out = 0;
  for (size_t i = 0; i < rows.size();) {
    size_t end = i + 1;
    while (end < rows.size() && rows[end].key == rows[i].key) end++;
    size_t run_start = out;  // rows sharing a key: almost always one; keep each ID's first
    for (size_t j = i; j < end; j++) {
      const BlobId& id = EntryOf(rows[j]).id;
      bool seen = false;
      for (size_t k = run_start; k < out && !seen; k++) seen = EntryOf(rows[k]).id == id;
      if (!seen) rows[out++] = rows[j];
    }
    i = end;
  }
  rows.resize(out);
  if (rows.capacity() - rows.size() > rows.size() / 4 + 1024) rows.shrink_to_fit();
}

void Index::BuildStarts() const {
  const std::vector<Row>& rows = table_.rows;
  int bits = BucketBits(rows.size());
  table_.shift = 32 - bits;
  std::vector<uint32_t>& starts = table_.starts;
  starts.assign((size_t{1} << bits) + 1, 0);
  // starts[b] = number of rows in buckets below b
  for (const Row& r : rows) starts[(uint64_t{r.key} >> table_.shift) + 1]++;
  for (size_t b = 1; b < starts.size(); b++) starts[b] += starts[b - 1];
}

const Index::Row* Index::FindRow(const BlobId& id) const {
  Settle();
  const std::vector<Row>& rows = table_.rows;
  if (rows.empty()) return nullptr;
  uint32_t key = RowKey(id);
  uint64_t bucket = uint64_t{key} >> table_.shift;
  const Row* first = rows.data() + table_.starts[bucket];
  const Row* last = rows.data() + table_.starts[bucket + 1];
  const Row* it =
      std::lower_bound(first, last, key, [](const Row& r, uint32_t k) { return r.key < k; });
  for (; it != last && it->key == key; ++it)
    if (EntryOf(*it).id == id) return it;
  return nullptr;
}

std::optional<BlobLocation> Index::Find(const BlobId& id) const {
  const Row* r = FindRow(id);
  if (!r) return std::nullopt;
  const PackEntry& e = EntryOf(*r);
  return BlobLocation{packs_[r->pack_ix].pack_id, e.offset, e.length};
}

std::string EncodeIndexFile(const std::vector<PackInfo>& packs) {
  return EncodeIndexFile({&packs});
}

std::string EncodeIndexFile(std::initializer_list<const std::vector<PackInfo>*> parts) {
  std::vector<const PackInfo*> all;
  for (const auto* part : parts)
    for (const auto& p : *part) all.push_back(&p);
  return EncodeIndexFile(all);
}

std::string EncodeIndexFile(const std::vector<const PackInfo*>& packs) {
  nlohmann::json header = {{"kind", "index"},
                           {"version", 1},
                           {"packs", packs.size()},
                           {"body", {{"compression", "zstd"}, {"encryption", "none"}}}};
  SealWriter out(kIndexMagic, header.dump(), 1);
  Encoder enc;
  enc.U(packs.size());
  for (const PackInfo* p : packs) {
    enc.Id(p->pack_id);
    enc.U(p->file_size);
    enc.U(p->entries.size());
    for (const auto& e : p->entries) {
      enc.Id(e.id);
      enc.U(e.offset);
      enc.U(e.length);
    }
    if (enc.buf().size() >= (1u << 20)) {  // compressed as it goes: never held raw whole
      out.Append(enc.buf());
      enc.buf().clear();
    }
  }
  out.Append(enc.buf());
  return out.Finish();
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

Result<IndexFiles> ReadIndexFiles(const Backend& backend) {
  IndexFiles out;
  MV_ASSIGN_OR_RETURN(auto names, ListNames(backend, "index"));
  std::unordered_map<BlobId, bool, BlobIdHash> seen;
  for (const auto& n : names) {
    std::string rel = "index/" + n;
    if (layout::IsTempName(n)) {
      out.temp.push_back(rel);
      continue;
    }
    std::string p = backend.Describe(rel);
    auto data = backend.Read(rel);
    if (!data.ok()) return Status(data.status().code(), data.status().message(), p);
    MV_ASSIGN_OR_RETURN(auto packs, DecodeIndexFile(*data, p));
    out.paths.push_back(rel);
    for (auto& pk : packs)
      if (seen.emplace(pk.pack_id, true).second) out.packs.push_back(std::move(pk));
  }
  return out;
}

}  // namespace mv::storage
