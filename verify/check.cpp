// The repository checker: index files and manifests first (cheap), then packs.
#include "verify/check.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "storage/fs.h"
#include "storage/header_index.h"
#include "storage/held_mail.h"
#include "storage/index.h"
#include "storage/layout.h"
#include "storage/repository.h"
#include "storage/snapshot.h"
#include "storage/tree.h"
#include "verify/tree_scan.h"

namespace mv::verify {
namespace {

using storage::BlobId;
using storage::BlobIdHash;
using storage::PackInfo;
namespace sfs = storage::fs;

// Per problem, the blobs whose loss it causes (attributed to files at the end).
struct State {
  CheckResult res;
  std::map<BlobId, PackInfo> packs;                                 // from the index files, merged
  std::map<BlobId, std::string> pack_index_file;                    // which index file named a pack
  std::unordered_map<BlobId, std::vector<size_t>, BlobIdHash> bad;  // blob -> problem indexes

  size_t Add(CheckProblem p, const std::vector<BlobId>& blobs = {}) {
    res.problems.push_back(std::move(p));
    size_t ix = res.problems.size() - 1;
    for (const auto& b : blobs) bad[b].push_back(ix);
    return ix;
  }
};

// A version-3 snapshot (docs/FORMAT.md §7.5): every tree record reachable from its root is read,
// and the blobs its files name must be indexed. A subtree an earlier snapshot shares was checked
// then (same ID, same bytes) and is skipped.
template <class IndexedSet>
Status CheckTrees(const storage::Repository& repo, const BlobId& root, const IndexedSet& indexed,
                  std::unordered_set<BlobId, BlobIdHash>* seen, std::set<BlobId>* unindexed) {
  if (seen->count(root)) return Status::Ok();
  MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
  auto cursor = storage::TreeCursor(*blobs, root);
  storage::FileEntry e;
  std::vector<BlobId> added;  // forgotten again if a record below fails: not checked clean
  for (;;) {
    auto more = cursor->Next(&e);
    if (!more.ok()) {
      for (const auto& id : added) seen->erase(id);
      return more.status();
    }
    if (!*more) break;
    if (e.type == storage::FileType::kDirectory) {
      if (seen->count(e.tree)) {
        cursor->SkipChildren();
        continue;
      }
      added.push_back(e.tree);
    }
    for (const auto& b : e.blobs)
      if (!indexed.count(b)) unindexed->insert(b);
  }
  for (const auto& id : added) seen->insert(id);
  seen->insert(root);
  return Status::Ok();
}

std::vector<std::string> Names(const storage::Repository& repo, const std::string& dir) {
  auto names = storage::ListNames(repo.backend(), dir);
  if (!names.ok()) return {};
  return *names;
}

void LoadIndexFiles(const storage::Repository& repo, State& s) {
  for (const auto& n : Names(repo, "index")) {
    if (storage::layout::IsTempName(n)) continue;
    std::string p = repo.backend().Describe("index/" + n);
    s.res.index_files++;
    auto data = repo.backend().Read("index/" + n);
    auto packs = data.ok() ? storage::DecodeIndexFile(*data, p)
                           : Result<std::vector<PackInfo>>(data.status());
    if (!packs.ok()) {
      s.Add({"index-damaged", p, "", "", "",
             packs.status().message() + "; the index is derived data: rebuild it from the packs "
                                        "with `mailvault repair index`"});
      continue;
    }
    for (auto& pk : *packs) {
      auto [it, fresh] = s.packs.try_emplace(pk.pack_id, pk);
      if (fresh) {
        s.pack_index_file[pk.pack_id] = p;
        continue;
      }
      auto key = [](const PackInfo& x) {
        std::vector<std::pair<BlobId, uint64_t>> v;
        for (const auto& e : x.entries) v.emplace_back(e.id, e.length);
        std::sort(v.begin(), v.end());
        return v;
      };
      if (key(it->second) != key(pk))
        s.Add({"index-conflict", p, pk.pack_id.Hex(), "", "",
               "index files " + s.pack_index_file[pk.pack_id] + " and " + p +
                   " list different blobs for this pack"});
    }
  }
}

// Decodes every manifest; records blobs that are not indexed.
void CheckSnapshots(const storage::Repository& repo, State& s) {
  std::unordered_set<BlobId, BlobIdHash> indexed;
  for (const auto& [id, pk] : s.packs)
    for (const auto& e : pk.entries) indexed.insert(e.id);
  s.res.blobs = indexed.size();
  std::set<BlobId> unindexed;
  std::unordered_set<BlobId, BlobIdHash> seen_trees;
  for (const auto& n : Names(repo, "snapshots")) {
    if (!storage::layout::IsSnapshotName(n)) continue;
    std::string p = repo.backend().Describe("snapshots/" + n);
    s.res.snapshots++;
    auto data = repo.backend().Read("snapshots/" + n);
    auto snap =
        data.ok() ? storage::DecodeSnapshot(*data, p) : Result<storage::Snapshot>(data.status());
    if (!snap.ok()) {
      s.Add({"snapshot-damaged", p, "", "", n,
             "snapshot manifest cannot be read: " + snap.status().message() +
                 "; this snapshot cannot be restored (others are not affected)"});
      continue;
    }
    for (const auto& f : snap->files)
      for (const auto& b : f.blobs)
        if (!indexed.count(b)) unindexed.insert(b);
    if (!snap->tree.IsZero()) {
      Status st = CheckTrees(repo, snap->tree, indexed, &seen_trees, &unindexed);
      if (!st.ok())
        s.Add({"snapshot-damaged", p, "", "", n,
               "snapshot's tree records cannot be read: " + st.ToString() +
                   "; this snapshot cannot be restored (others are not affected)"});
    }
  }
  // Held deleted mail (§12): what `restore --deleted-since` needs must be indexed too.
  std::vector<std::string> bad_held;
  auto held = storage::LoadHeldMail(repo, &bad_held);
  if (!held.ok()) bad_held.push_back(held.status().ToString());
  for (const auto& b : bad_held)
    s.Add({"held-mail-damaged", storage::layout::HeldDir(repo.path()), "", "", "",
           "held mail record cannot be read: " + b +
               "; the deleted mail it holds cannot be restored, and prune refuses to run until "
               "the record is removed (which gives that mail up)"});
  // Header records (§15): a damaged one loses nothing but what find can see.
  std::vector<std::string> bad_headers;
  Status hs = storage::ForEachRecordedHeaders(
      repo, [](storage::MessageHeaders&&) {}, &bad_headers);
  if (!hs.ok()) bad_headers.push_back(hs.ToString());
  for (const auto& b : bad_headers) {
    CheckProblem pr{"headers-damaged",
                    repo.backend().Describe("headers"),
                    "",
                    "",
                    "",
                    "header record cannot be read: " + b +
                        "; no mail is affected, but `mailvault find` does not see the messages "
                        "it indexed: remove the file and run `mailvault index-headers`"};
    pr.warning = true;
    s.Add(std::move(pr));
  }
  std::set<BlobId> held_unindexed;
  if (held.ok()) {
    int64_t now = repo.env()->NowNanos();
    for (const auto& r : *held)
      for (const auto& m : r.messages) {
        if (m.expires_ns <= now) continue;
        s.res.held_messages++;
        for (const auto& b : m.entry.blobs)
          if (!indexed.count(b) && !unindexed.count(b)) held_unindexed.insert(b);
      }
  }
  for (const auto& b : held_unindexed)
    s.Add({"held-blob-not-indexed", "", "", b.Hex(), "",
           "blob " + b.Hex() +
               " of held deleted mail is not named by any index (its pack is gone or was never "
               "indexed): that message cannot be restored"},
          {b});
  for (const auto& b : unindexed)
    s.Add({"blob-not-indexed", "", "", b.Hex(), "",
           "blob " + b.Hex() +
               " is used by a snapshot but no index "
               "names it (its pack is gone or was never indexed)"},
          {b});
}

std::vector<BlobId> EntryIds(const PackInfo& pk) {
  std::vector<BlobId> v;
  for (const auto& e : pk.entries) v.push_back(e.id);
  return v;
}

void CheckPackFiles(const storage::Repository& repo, State& s, std::set<BlobId>* on_disk) {
  // One listing of the whole repository, with the sizes (on S3 every object once): the packs,
  // and what is not part of the format.
  auto objects = repo.backend().List("");
  if (!objects.ok()) {
    s.Add({"pack-missing", repo.PacksDir(), "", "", "",
           "cannot list the repository: " + objects.status().message()});
    return;
  }
  std::map<BlobId, uint64_t> sizes;
  for (const auto& o : *objects) {
    BlobId id;
    if (storage::layout::ParsePackRelPath(o.name, &id)) {
      sizes[id] = o.size;
    } else if (!storage::layout::IsFormatName(o.name)) {
      CheckProblem pr{"foreign-object",
                      repo.backend().Describe(o.name),
                      "",
                      "",
                      "",
                      "not part of the repository format (docs/FORMAT.md section 1): mailvault "
                      "ignores it; move it out of the repository if nobody needs it there"};
      pr.warning = true;
      s.Add(std::move(pr));
    }
  }
  for (const auto& [id, size] : sizes) on_disk->insert(id);
  for (const auto& [id, size] : sizes) {
    std::string p = repo.PackPath(id);
    s.res.pack_bytes += size;
    auto it = s.packs.find(id);
    if (it == s.packs.end()) {
      // Orphans are rare and small: check that this one is a pack before promising its adoption.
      auto listed = repo.ListPackFile(id);
      if (!listed.ok()) {
        s.Add({"pack-invalid", p, id.Hex(), "", "",
               "file under packs/ is not a valid pack (" + listed.status().message() +
                   "); no index names it and backups ignore it: move it out of the "
                   "repository"});
        continue;
      }
      CheckProblem pr{"pack-not-indexed",
                      p,
                      id.Hex(),
                      "",
                      "",
                      "pack is not named by any index file (left by "
                      "an interrupted backup or a damaged index file; the next backup adopts it)"};
      pr.warning = true;
      s.Add(std::move(pr));
    } else if (it->second.file_size && size != it->second.file_size) {
      s.Add({"pack-size", p, id.Hex(), "", "",
             "pack is " + std::to_string(size) + " bytes, the index says " +
                 std::to_string(it->second.file_size) + " (truncated or replaced)"},
            EntryIds(it->second));
    }
  }
  s.res.packs = s.packs.size();
  for (const auto& [id, pk] : s.packs)
    if (!on_disk->count(id))
      s.Add({"pack-missing", repo.PackPath(id), id.Hex(), "", "",
             "pack file is missing; every blob in it is lost "
             "unless another pack holds it"},
            EntryIds(pk));
}

}  // namespace

// Defined in check_packs.cpp.
void ReadPacks(const storage::Repository& repo, const CheckOptions& opts,
               const std::set<BlobId>& on_disk, const std::map<BlobId, PackInfo>& packs,
               CheckResult& res,
               const std::function<size_t(CheckProblem, const std::vector<BlobId>&)>& add,
               const CheckProgressFn& progress);
void Attribute(const storage::Repository& repo, size_t max_listed,
               const std::unordered_map<BlobId, std::vector<size_t>, BlobIdHash>& bad,
               CheckResult& res);

size_t CheckResult::errors() const {
  return static_cast<size_t>(
      std::count_if(problems.begin(), problems.end(), [](const auto& p) { return !p.warning; }));
}

Result<CheckResult> CheckRepository(const storage::Repository& repo, const CheckOptions& opts,
                                    const CheckProgressFn& progress) {
  if (!repo.backend().Size("config").ok())
    return Status::NotFound("no repository here", repo.path());
  State s;
  LoadIndexFiles(repo, s);
  CheckSnapshots(repo, s);
  std::set<BlobId> on_disk;
  CheckPackFiles(repo, s, &on_disk);
  if (opts.read != PackRead::kNone)
    ReadPacks(
        repo, opts, on_disk, s.packs, s.res,
        [&](CheckProblem p, const std::vector<BlobId>& b) { return s.Add(std::move(p), b); },
        progress);
  Attribute(repo, opts.max_affected, s.bad, s.res);
  return std::move(s.res);
}

PackSelector SubsetBucket(uint32_t k, uint32_t n) {
  return [k, n](const BlobId& id) {
    uint32_t v = (uint32_t{id.bytes[0]} << 24) | (uint32_t{id.bytes[1]} << 16) |
                 (uint32_t{id.bytes[2]} << 8) | id.bytes[3];
    return v % n == k - 1;
  };
}

PackSelector SubsetPercent(double percent) {
  auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [rng, percent](const BlobId&) {
    return std::uniform_real_distribution<double>(0, 100)(*rng) < percent;
  };
}

Result<PackSelector> ParseSubset(const std::string& spec) {
  try {
    if (!spec.empty() && spec.back() == '%') {
      double p = std::stod(spec.substr(0, spec.size() - 1));
      if (p > 0 && p <= 100) return SubsetPercent(p);
    } else if (auto slash = spec.find('/'); slash != std::string::npos) {
      long k = std::stol(spec.substr(0, slash)), n = std::stol(spec.substr(slash + 1));
      if (n >= 1 && k >= 1 && k <= n)
        return SubsetBucket(static_cast<uint32_t>(k), static_cast<uint32_t>(n));
    }
  } catch (const std::exception&) {
  }
  return Status::Invalid("bad subset '" + spec +
                         "': give K/N (1 <= K <= N, e.g. 3/7) or a percentage (e.g. 10%)");
}

}  // namespace mv::verify
