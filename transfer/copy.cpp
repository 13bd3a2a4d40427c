// docs/FORMAT.md §13 (copy), §8 (write order), §3 (content keys).
#include "transfer/copy.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "storage/blob_id_set.h"
#include "storage/fs.h"
#include "storage/header_index.h"
#include "storage/index.h"
#include "storage/index_blob_reader.h"
#include "storage/layout.h"
#include "storage/snapshot.h"
#include "storage/tree.h"

namespace mv::transfer {
namespace {

using storage::BlobId;
using storage::PackInfo;

Status SourceDamaged(const std::string& what, const std::string& path) {
  return Status::Corruption("copy stopped before writing anything of this snapshot: " + what +
                                "; run `mailvault check` on the source (and repair what it "
                                "reports) first",
                            path);
}

// The source's index, read by the copy itself (packs with their entries, which the
// destination's index file repeats). A damaged index file stops the copy.
Result<storage::Index> ReadSourceIndex(const storage::Repository& from) {
  auto read = storage::ReadIndexFiles(from.backend());
  if (!read.ok())
    return SourceDamaged("an index file cannot be read (" + read.status().message() + ")",
                         read.status().path());
  storage::Index index;
  for (auto& pk : read->packs) index.AddPack(std::move(pk));
  return index;
}

// The packs present in `repo` (indexed or not), from one listing.
Result<std::set<BlobId>> ListedPacks(const storage::Backend& b) {
  MV_ASSIGN_OR_RETURN(auto objects, b.List("packs"));
  std::set<BlobId> out;
  for (const auto& o : objects) {
    BlobId id;
    if (storage::layout::ParsePackRelPath(o.name, &id)) out.insert(id);
  }
  return out;
}

// Streams pack `pk` from `from` into a new pack of `to` (its PackSink: encrypted there as it
// arrives when `to` is encrypted), checks its bytes against its name, and puts it into `to`.
// Returns the bytes sent and the pack's name in `to`: the same but in an encrypted repository of
// version 9, which names a pack by the hash of its age file (FORMAT.md §14.2).
struct Sent {
  uint64_t bytes = 0;
  BlobId id;
};
Result<Sent> SendPack(const storage::Repository& from, storage::Repository& to,
                      const PackInfo& pk) {
  std::string rel = storage::layout::PackRelPath(pk.pack_id);
  std::string src = from.backend().Describe(rel);
  // A version-9 encrypted source's reader checks the age file against the name at its end.
  MV_ASSIGN_OR_RETURN(auto reader, from.backend().OpenReader(rel));
  std::string scratch = to.backend().ScratchDir();
  MV_RETURN_IF_ERROR(storage::fs::MakeDirs(scratch, 0700, to.env()));
  std::string tmp = storage::fs::Join(scratch, "copy-" + storage::fs::RandomHex(8));
  MV_ASSIGN_OR_RETURN(auto sink, to.backend().NewPackSink(tmp, to.env()));
  storage::PlainHashStream hash;
  std::string buf(1 << 20, '\0');
  Sent sent;
  for (;;) {
    MV_ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
    if (n == 0) break;
    hash.Update(buf.data(), n);
    sent.bytes += n;
    MV_RETURN_IF_ERROR(sink->Append(std::string_view(buf.data(), n)));
  }
  MV_ASSIGN_OR_RETURN(sent.id, sink->Close());
  if (!from.pack_names_hash_age_file() && hash.Final() != pk.pack_id)
    return SourceDamaged("the pack's bytes do not hash to its name (" + std::to_string(sent.bytes) +
                             " bytes read; `check --read-data` names the damage)",
                         src);
  // On failure the sink removes the temp file.
  MV_RETURN_IF_ERROR(sink->Commit(to.backend(), storage::layout::PackRelPath(sent.id)));
  return sent;
}

}  // namespace

Status CheckSameContentKey(const storage::Repository& from, const storage::Repository& to) {
  const auto& a = from.chunker().params();
  const auto& b = to.chunker().params();
  bool same_chunker = a.min_size == b.min_size && a.avg_size == b.avg_size &&
                      a.max_size == b.max_size && a.file_threshold == b.file_threshold;
  if (from.hasher().secret() == to.hasher().secret() && same_chunker) return Status::Ok();
  return Status::Unsupported(
      "the destination " + to.path() + " has " +
          (same_chunker ? "another content key (fingerprint " + storage::KeyId(to.hasher()) +
                              ", the source's is " + storage::KeyId(from.hasher()) + ")"
                        : std::string("other chunker parameters")) +
          ", so the same mail has other blob IDs there. Copy into a repository made with "
          "`mailvault init --repo DEST --copy-key-from " +
          from.path() + "` (re-packing into a repository with its own key is not supported)",
      to.path());
}

Result<CopyResult> Copy(const storage::Repository& from, storage::Repository& to,
                        const CopyOptions& opts, const CopyProgressFn& progress) {
  MV_RETURN_IF_ERROR(CheckSameContentKey(from, to));
  if (from.encrypted() && !to.encrypted())
    return Status::Invalid(
        "the source is encrypted and the destination " + to.path() +
            " is not: the copy would hold the mail in clear. Copy into a repository made with "
            "`mailvault init --repo DEST --encrypt --copy-key-from " +
            from.path() + "`",
        to.path());
  if (from.id() == to.id() && from.path() == to.path())
    return Status::Invalid("the source and the destination are the same repository", to.path());
  CopyResult res;
  res.dry_run = opts.dry_run;

  // The snapshots, oldest first.
  std::vector<storage::DamagedFile> damaged;
  MV_ASSIGN_OR_RETURN(auto all, from.ListSnapshots(&damaged));
  std::vector<std::string> wanted;
  if (opts.snapshots.empty()) {
    for (const auto& d : damaged)
      return SourceDamaged("a snapshot manifest is damaged (" + d.reason + ")", d.path);
    for (const auto& s : all) wanted.push_back(s.id);
  } else {
    std::set<std::string> sel(opts.snapshots.begin(), opts.snapshots.end());
    for (const auto& s : all)
      if (sel.erase(s.id)) wanted.push_back(s.id);
    if (!sel.empty())
      return SourceDamaged("snapshot " + *sel.begin() + " cannot be read",
                           from.backend().Describe("snapshots/" + *sel.begin()));
  }

  std::unique_ptr<storage::HeldLock> lock;
  if (!opts.dry_run) {
    MV_ASSIGN_OR_RETURN(lock, to.LockExclusive("copy", opts.lock_wait, &res.took_over_stale));
    to.CleanTmp();
  }
  MV_ASSIGN_OR_RETURN(auto there, storage::ListNames(to.backend(), "snapshots"));
  std::set<std::string> dest_snaps(there.begin(), there.end());
  std::vector<std::string> todo;
  for (const auto& id : wanted) (dest_snaps.count(id) ? res.present : todo).push_back(id);
  // The header index goes first (it only adds files): find works on the copy as on the source.
  if (!opts.dry_run) MV_RETURN_IF_ERROR(storage::CopyHeaderRecords(from, to, &res.header_records));
  if (todo.empty()) return res;

  MV_ASSIGN_OR_RETURN(storage::Index src_index, ReadSourceIndex(from));
  std::unordered_map<BlobId, const PackInfo*, storage::BlobIdHash> src_packs;
  for (const auto& pk : src_index.packs()) src_packs.emplace(pk.pack_id, &pk);
  storage::IndexBlobReader src_blobs(from, src_index, "copy");
  MV_ASSIGN_OR_RETURN(auto dest, to.OpenBlobReader());
  MV_ASSIGN_OR_RETURN(std::set<BlobId> dest_listed, ListedPacks(to.backend()));

  storage::BlobIdSet seen;     // blobs of the snapshots walked so far
  std::set<BlobId> scheduled;  // packs sent or indexed by this run
  CopyProgress walk{"walk", 0, todo.size()};
  for (const auto& id : todo) {
    std::string rel = "snapshots/" + id;
    std::string p = from.backend().Describe(rel);
    MV_ASSIGN_OR_RETURN(std::string manifest, from.backend().Read(rel));
    MV_ASSIGN_OR_RETURN(storage::Snapshot snap, storage::DecodeSnapshot(manifest, p));
    // The packs of this snapshot's blobs that the destination lacks.
    std::vector<const PackInfo*> need;
    Status bad;
    auto use = [&](const BlobId& b, const std::string& path) -> bool {
      if (!seen.Insert(b)) return true;
      if (dest->Has(b)) {
        res.blobs_present++;
        return true;
      }
      auto loc = src_index.Find(b);
      if (!loc) {
        bad = SourceDamaged("snapshot " + id.substr(0, 8) + " refers to blob " + b.Hex() +
                                " (of '" + path + "') that the index lacks",
                            p);
        return false;
      }
      if (scheduled.insert(loc->pack).second) need.push_back(src_packs.at(loc->pack));
      return true;
    };
    std::unique_ptr<storage::EntryCursor> cursor;
    if (!snap.tree.IsZero()) {
      if (!use(snap.tree, "/")) return bad;
      cursor = storage::TreeCursor(src_blobs, snap.tree);
    } else {
      cursor = storage::VectorCursor(std::move(snap.files));
    }
    storage::FileEntry e;
    for (;;) {
      auto more = cursor->Next(&e);
      if (!more.ok()) return SourceDamaged(more.status().message(), p);
      if (!*more) break;
      for (const auto& b : e.blobs)
        if (!use(b, e.path)) return bad;
      if (e.type != storage::FileType::kDirectory || e.tree.IsZero()) continue;
      if (seen.Contains(e.tree)) {
        cursor->SkipChildren();  // walked for an earlier snapshot of this run
        continue;
      }
      if (!use(e.tree, e.path)) return bad;
    }
    cursor.reset();

    // The packs, in parallel; then their index file; then the manifest (§8).
    // A pack sent gets its name in `to` (another one in a version-9 encrypted repository).
    std::vector<size_t> send;  // into `indexed`
    std::vector<PackInfo> indexed;
    uint64_t total = 0;
    for (const auto* pk : need) {
      indexed.push_back(*pk);
      res.blobs_sent += pk->entries.size();
      if (dest_listed.count(pk->pack_id)) {
        res.packs_resumed++;
      } else {
        send.push_back(indexed.size() - 1);
        total += pk->file_size;
      }
    }
    if (opts.dry_run) {
      res.packs_sent += send.size();
      res.bytes_sent += total;
      res.copied.push_back(id);
      walk.done++;
      if (progress) progress(walk);
      continue;
    }
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> sent{0};
    std::mutex mu;
    Status failed;
    std::set<std::string> dirs;
    auto worker = [&] {
      for (size_t i = next++; i < send.size(); i = next++) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (!failed.ok()) return;
        }
        PackInfo& pk = indexed[send[i]];
        auto n = SendPack(from, to, pk);
        std::lock_guard<std::mutex> l(mu);
        if (!n.ok()) {
          if (failed.ok()) failed = n.status();
          return;
        }
        pk.pack_id = n->id;
        sent += n->bytes;
        res.packs_sent++;
        res.bytes_sent += n->bytes;
        dirs.insert(storage::fs::Dirname(storage::layout::PackRelPath(n->id)));
        if (progress) progress({"packs", sent.load(), total});
      }
    };
    int n = std::max(1, std::min<int>(opts.workers, static_cast<int>(send.size())));
    std::vector<std::thread> threads;
    for (int i = 1; i < n; i++) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    MV_RETURN_IF_ERROR(failed);
    for (const auto& d : dirs) MV_RETURN_IF_ERROR(to.backend().SyncDir(d));
    if (!dirs.empty()) MV_RETURN_IF_ERROR(to.backend().SyncDir("packs"));
    for (size_t k : send) dest_listed.insert(indexed[k].pack_id);
    MV_RETURN_IF_ERROR(to.WriteIndex(indexed));
    MV_RETURN_IF_ERROR(to.backend().SyncDir("index"));
    MV_RETURN_IF_ERROR(to.backend().Put(rel, manifest));
    MV_RETURN_IF_ERROR(to.backend().SyncDir("snapshots"));
    res.copied.push_back(id);
    walk.done++;
    if (progress) progress(walk);
  }
  return res;
}

}  // namespace mv::transfer
