// The checker's pack reading and the attribution of damaged blobs to snapshots, files, mailboxes.
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "storage/fs.h"
#include "storage/layout.h"
#include "storage/pack.h"
#include "storage/repository.h"
#include "verify/check.h"
#include "verify/tree_scan.h"

namespace mv::verify {

using storage::BlobId;
using storage::BlobIdHash;
using storage::PackInfo;

namespace {

struct Seen {
  uint64_t length = 0;
  bool hashed_ok = false;
};

}  // namespace

void ReadPacks(const storage::Repository& repo, const CheckOptions& opts,
               const std::set<BlobId>& on_disk, const std::map<BlobId, PackInfo>& packs,
               CheckResult& res,
               const std::function<size_t(CheckProblem, const std::vector<BlobId>&)>& add,
               const CheckProgressFn& progress) {
  std::vector<const PackInfo*> todo;
  for (const auto& [id, pk] : packs)
    if (on_disk.count(id) && (!opts.select || opts.select(id))) todo.push_back(&pk);
  // Blobs an index places in a pack that does not hold them: where they really are.
  std::vector<std::pair<BlobId, const PackInfo*>> absent;
  std::unordered_map<BlobId, BlobId, BlobIdHash> found_in;
  bool data = opts.read == PackRead::kData;
  uint64_t done = 0;
  for (const PackInfo* pk : todo) {
    std::string path = repo.PackPath(pk->pack_id);
    std::unordered_map<BlobId, Seen, BlobIdHash> seen;
    Status st = repo.ReadPackFile(
        pk->pack_id, {.verify_pack_hash = true},
        [&](const BlobId& id, uint64_t len) {
          seen[id].length = len;
          return data;
        },
        [&](const BlobId& id, std::string_view bytes) {
          res.blobs_hashed++;
          if (repo.hasher().Hash(bytes.data(), bytes.size()) == id)
            seen[id].hashed_ok = true;
          else
            add({"blob-hash", path, pk->pack_id.Hex(), id.Hex(), "",
                 "blob " + id.Hex() + " does not match its hash (damaged content)"},
                {id});
          return true;
        });
    res.packs_read++;
    bool listed = st.ok();
    if (!st.ok()) {
      // Damaged: can its entries still be listed completely (only the pack hash is wrong)? Then
      // the comparison with the index below still names each missing blob precisely.
      std::unordered_map<BlobId, uint64_t, BlobIdHash> relisted;
      Status again = repo.ReadPackFile(
          pk->pack_id, {.verify_pack_hash = false},
          [&](const BlobId& id, uint64_t len) {
            relisted[id] = len;
            return false;
          },
          [](const BlobId&, std::string_view) { return true; });
      listed = again.ok();
      if (listed)
        for (const auto& [id, len] : relisted) seen[id].length = len;
      std::vector<BlobId> unverified;  // present but not proven intact by their hash
      for (const auto& e : pk->entries)
        if (seen.count(e.id) ? !seen[e.id].hashed_ok : !listed) unverified.push_back(e.id);
      add({"pack-damaged", path, pk->pack_id.Hex(), "", "",
           st.message() + " (" + std::to_string(unverified.size()) + " of its " +
               std::to_string(pk->entries.size()) + " blobs are unverified" +
               (listed ? "; its entries can still be listed" : "") + ")"},
          unverified);
    }
    if (listed) {
      for (const auto& e : pk->entries) {
        auto it = seen.find(e.id);
        if (it == seen.end())
          absent.emplace_back(e.id, pk);
        else if (it->second.length != e.length)
          add({"blob-length", path, pk->pack_id.Hex(), e.id.Hex(), "",
               "blob is " + std::to_string(it->second.length) +
                   " bytes in the pack, the index says " + std::to_string(e.length)},
              {e.id});
      }
    }
    for (const auto& [id, sn] : seen) found_in.emplace(id, pk->pack_id);
    if (progress) progress(++done, todo.size());
  }
  for (const auto& [id, pk] : absent) {
    auto it = found_in.find(id);
    std::string path = repo.PackPath(pk->pack_id);
    if (it != found_in.end())
      add({"index-wrong-pack", path, pk->pack_id.Hex(), id.Hex(), "",
           "the index places blob " + id.Hex() + " in this pack, but it is in pack " +
               it->second.Hex() + "; rebuild the index from the packs"},
          {id});
    else
      add({"blob-missing-from-pack", path, pk->pack_id.Hex(), id.Hex(), "",
           "the index places blob " + id.Hex() +
               " in this pack, but the pack does not hold it (lost unless another pack does)"},
          {id});
  }
}

namespace {

// Calls fn(snapshot id, entry, mailbox-of(path)) for every file holding a blob in `wanted`.
template <class Fn>
void ForEachUser(const storage::Repository& repo,
                 const std::unordered_map<BlobId, std::vector<size_t>, BlobIdHash>& wanted, Fn fn) {
  auto names = storage::ListNames(repo.backend(), "snapshots");
  if (!names.ok()) return;
  for (const auto& n : *names) {
    if (!storage::layout::IsSnapshotName(n)) continue;
    auto snap = repo.LoadSnapshot(n);
    if (!snap.ok()) continue;
    std::map<std::string, std::string> mailbox;  // filled on the first hit only
    bool inv_done = false;
    for (const auto& f : snap->files) {
      for (const auto& b : f.blobs) {
        auto it = wanted.find(b);
        if (it == wanted.end()) continue;
        if (!inv_done) {
          for (const auto& m : InventoryOfEntries(snap->files).messages)
            mailbox[m.path] = m.mailbox;
          inv_done = true;
        }
        auto mb = mailbox.find(f.path);
        fn(it->second, Affected{n, f.path, mb == mailbox.end() ? "" : mb->second});
        break;
      }
    }
  }
}

}  // namespace

void Attribute(const storage::Repository& repo, size_t max_listed,
               const std::unordered_map<BlobId, std::vector<size_t>, BlobIdHash>& bad,
               CheckResult& res) {
  if (bad.empty()) return;
  ForEachUser(repo, bad, [&](const std::vector<size_t>& problems, const Affected& a) {
    for (size_t ix : problems) {
      auto& p = res.problems[ix];
      p.affected_total++;
      if (!a.mailbox.empty()) p.affected_mailboxes[a.mailbox]++;
      if (p.affected.size() < max_listed) p.affected.push_back(a);
    }
  });
}

std::vector<Affected> FindBlobUsers(const storage::Repository& repo,
                                    const std::vector<BlobId>& blobs, size_t max_listed,
                                    uint64_t* total) {
  std::unordered_map<BlobId, std::vector<size_t>, BlobIdHash> wanted;
  for (const auto& b : blobs) wanted[b] = {0};
  std::vector<Affected> out;
  uint64_t n = 0;
  ForEachUser(repo, wanted, [&](const std::vector<size_t>&, const Affected& a) {
    n++;
    if (out.size() < max_listed) out.push_back(a);
  });
  if (total) *total = n;
  return out;
}

std::map<BlobId, std::vector<std::string>> SnapshotsHoldingBlobs(const storage::BlobReader& repo,
                                                                 const std::vector<BlobId>& blobs) {
  std::unordered_map<BlobId, std::vector<size_t>, BlobIdHash> wanted;
  for (size_t i = 0; i < blobs.size(); i++) wanted[blobs[i]].push_back(i);
  std::map<BlobId, std::vector<std::string>> out;
  auto names = repo.SnapshotIds();
  if (!names.ok()) return out;
  for (const auto& n : *names) {
    auto snap = repo.LoadSnapshot(n);
    if (!snap.ok()) continue;
    for (const auto& f : snap->files)
      for (const auto& b : f.blobs)
        if (wanted.count(b) && (out[b].empty() || out[b].back() != n)) out[b].push_back(n);
  }
  return out;
}

}  // namespace mv::verify
