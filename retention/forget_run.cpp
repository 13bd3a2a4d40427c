#include "retention/forget_run.h"

#include <optional>
#include <set>

#include "retention/deleted_mail.h"
#include "retention/select.h"
#include "storage/forget.h"
#include "storage/held_mail.h"
#include "storage/verification.h"

namespace mv::retention {
namespace {

// The policy's view of a snapshot; its proof is its newest verification record (storage/
// verification.h), unverified without one.
SnapshotFacts Facts(const storage::SnapshotMeta& m,
                    const std::map<std::string, storage::Verification>& proofs) {
  auto v = proofs.find(m.id);
  Proof proof = v == proofs.end() ? Proof::kUnverified
                : v->second.ok    ? Proof::kVerified
                                  : Proof::kFailed;
  SnapshotFacts f{
      m.id, m.time_ns ? m.time_ns : m.time * 1000000000LL, m.host, m.tags, {}, m.problems > 0,
      proof};
  for (const auto& s : m.sources) f.sources.push_back(s.name);
  return f;
}

bool Selected(const ForgetRequest& r, const storage::SnapshotMeta& m) {
  SnapshotFilter f;
  f.stack = r.stack;
  f.host = r.host;
  return f.Matches(m);
}

}  // namespace

Result<ForgetOutcome> Forget(storage::Repository& repo, const ForgetRequest& req) {
  ForgetOutcome out;
  std::unique_ptr<storage::HeldLock> lock;
  if (!req.dry_run) {
    MV_ASSIGN_OR_RETURN(lock, repo.LockExclusive("forget", req.lock_wait, &out.took_over_stale));
  }
  std::vector<storage::DamagedFile> damaged;
  MV_ASSIGN_OR_RETURN(auto list, repo.ListSnapshots(&damaged));
  for (const auto& d : damaged)
    out.warnings.push_back(d.path + ": snapshot manifest is damaged (" + d.reason +
                           "); it is left alone: run `mailvault check`");
  std::vector<std::string> ids;
  for (const auto& ref : req.refs) {
    MV_ASSIGN_OR_RETURN(auto id, repo.ResolveSnapshot(ref));
    ids.push_back(id);
  }
  std::vector<std::string> bad_records;
  MV_ASSIGN_OR_RETURN(auto proofs, storage::LoadVerifications(repo, &bad_records));
  for (const auto& b : bad_records)
    out.warnings.push_back(b +
                           ": verification record cannot be read; its snapshot counts as "
                           "unverified");
  std::vector<SnapshotFacts> facts;
  for (const auto& m : list)
    if (!ids.empty() || Selected(req, m)) {
      facts.push_back(Facts(m, proofs));
      out.proof[m.id] = facts.back().proof;
      out.meta[m.id] = m;
    }
  for (const auto& id : ids)
    if (!out.meta.count(id))
      return Status::Corruption("snapshot " + id +
                                " cannot be read (damaged manifest): run `mailvault check`");
  if (!ids.empty()) {
    out.groups = ForgetNamed(facts, ids, req.group);
  } else {
    MV_ASSIGN_OR_RETURN(out.groups,
                        ApplyPolicy(facts, req.policy, req.group, repo.env()->NowNanos()));
  }
  out.policy_empty = ids.empty() && req.policy.empty();
  out.status = RefuseWholeGroups(out.groups);
  if (!out.status.ok()) return out;
  if (req.keep_deleted_mail_ns > 0) {
    // Held before any manifest goes (FORMAT.md §12): a crash in between leaves a record of
    // messages that are still in their snapshots, which is harmless.
    std::vector<storage::SnapshotMeta> removed;
    std::vector<std::string> kept;
    std::set<std::string> doomed;
    for (const auto& g : out.groups)
      for (const auto& d : g.decisions)
        if (!d.keep) doomed.insert(d.id);
    for (const auto& m : list) {
      if (doomed.count(m.id))
        removed.push_back(m);
      else
        kept.push_back(m.id);
    }
    if (!removed.empty()) {
      int64_t now = repo.env()->NowNanos();
      std::optional<Result<DeletedMail>> collected;
      {
        MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
        collected = CollectDeletedMail(*blobs, removed, kept, req.keep_deleted_mail_ns, now);
      }
      // The index it loaded is not kept while a prune that follows loads its own.
      repo.DropIndex();
      MV_ASSIGN_OR_RETURN(DeletedMail mail, std::move(*collected));
      out.held_messages = mail.held.size();
      out.held_expired = mail.expired;
      for (const auto& h : mail.held) out.held_bytes += h.entry.size;
      if (!req.dry_run) MV_RETURN_IF_ERROR(storage::RecordHeldMail(repo, now, mail.held));
    }
  }
  for (const auto& g : out.groups)
    for (const auto& d : g.decisions) {
      if (d.keep || !out.status.ok()) continue;
      if (!req.dry_run) out.status = storage::RemoveSnapshot(repo, d.id);
      if (!out.status.ok()) break;
      out.removed.push_back(d.id);
      // Its records go after it: a record without its snapshot is harmless, the reverse is not.
      if (!req.dry_run) out.status = storage::RemoveVerifications(repo, d.id);
    }
  return out;
}

}  // namespace mv::retention
