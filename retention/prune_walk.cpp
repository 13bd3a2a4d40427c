// docs/FORMAT.md §7 (manifests), §7.5 (tree records), §8 "Prune" step 1.
#include "retention/prune_walk.h"

#include "storage/fs.h"
#include "storage/held_mail.h"
#include "storage/index_blob_reader.h"
#include "storage/layout.h"
#include "storage/pack.h"
#include "storage/tree.h"

namespace mv::retention {
namespace {

using storage::BlobId;

Status Stop(const std::string& what, const std::string& path) {
  return Status::Corruption("prune stopped, nothing was changed: " + what +
                                "; run `mailvault check` (and repair what it reports) first",
                            path);
}

// Adds `id` to the used set; fails when the index lacks it.
Status Use(const storage::Index& index, const BlobId& id, const std::string& manifest,
           const std::string& path, UsedBlobs* used) {
  if (!used->all.Insert(id)) return Status::Ok();
  if (!index.Has(id))
    return Stop(
        "the snapshot refers to blob " + id.Hex() + " (of '" + path + "') that the index lacks",
        manifest);
  return Status::Ok();
}

Status WalkSnapshot(const storage::Repository& repo, const storage::BlobReader& blobs,
                    const storage::Index& index, const std::string& id, UsedBlobs* used) {
  std::string p = repo.backend().Describe("snapshots/" + id);
  MV_ASSIGN_OR_RETURN(std::string data, repo.backend().Read("snapshots/" + id));
  MV_ASSIGN_OR_RETURN(storage::Snapshot snap, storage::DecodeSnapshot(data, p));
  std::unique_ptr<storage::EntryCursor> cursor;
  if (!snap.tree.IsZero()) {
    if (used->all.Contains(snap.tree)) return Status::Ok();  // walked for another snapshot
    MV_RETURN_IF_ERROR(Use(index, snap.tree, p, "/", used));
    used->trees.Insert(snap.tree);
    // Every tree seen is skipped below, so each record is loaded once and may leave the cache
    // when it is (storage/tree.h): 63.5 -> 55.5 MB for a forget --prune of 9 snapshots.
    cursor = storage::TreeCursor(blobs, snap.tree, /*once=*/true);
  } else {
    cursor = storage::VectorCursor(std::move(snap.files));
  }
  storage::FileEntry e;
  for (;;) {
    auto more = cursor->Next(&e);
    if (!more.ok()) return Stop("snapshot " + id.substr(0, 8) + ": " + more.status().message(), p);
    if (!*more) return Status::Ok();
    for (const auto& b : e.blobs) MV_RETURN_IF_ERROR(Use(index, b, p, e.path, used));
    if (e.type != storage::FileType::kDirectory || e.tree.IsZero()) continue;
    if (used->all.Contains(e.tree)) {
      cursor->SkipChildren();  // this directory's whole subtree is in the set already
      continue;
    }
    MV_RETURN_IF_ERROR(Use(index, e.tree, p, e.path, used));
    used->trees.Insert(e.tree);
  }
}

}  // namespace

Result<size_t> CollectUsedBlobs(const storage::Repository& repo, const storage::Index& index,
                                const PruneProgressFn& progress, UsedBlobs* used) {
  std::vector<storage::DamagedFile> damaged;
  MV_ASSIGN_OR_RETURN(auto snaps, repo.ListSnapshots(&damaged));
  if (!damaged.empty())
    return Stop("snapshot manifest is damaged (" + damaged[0].reason +
                    "; the blobs it refers to would look unused)",
                damaged[0].path);
  PruneProgress p{"snapshots", 0, snaps.size()};
  storage::IndexBlobReader blobs(repo, index, "prune");
  for (const auto& s : snaps) {
    MV_RETURN_IF_ERROR(WalkSnapshot(repo, blobs, index, s.id, used));
    p.done++;
    if (progress) progress(p);
  }
  // Held mail (§12): a message counts as used until its period ends.
  std::vector<std::string> bad;
  MV_ASSIGN_OR_RETURN(auto held, storage::LoadHeldMail(repo, &bad));
  if (!bad.empty())
    return Stop("a held mail record cannot be read (" + bad[0] +
                    "; the messages it holds would look unused)",
                repo.backend().Describe("held"));
  int64_t now = repo.env()->NowNanos();
  for (const auto& r : held) {
    if (r.expires_ns() <= now) {
      used->expired_records.push_back(r.path);
      continue;
    }
    for (const auto& m : r.messages) {
      if (m.expires_ns <= now) continue;
      used->held_messages++;
      used->held_bytes += m.entry.size;
      for (const auto& b : m.entry.blobs)
        MV_RETURN_IF_ERROR(Use(index, b, r.path, m.entry.path, used));
    }
  }
  return snaps.size();
}

}  // namespace mv::retention
