#include "agent/jobs/verify_run.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

#include "agent/restorer/restore.h"
#include "storage/fs.h"
#include "storage/verification.h"

namespace mv::agent {
namespace {

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Result<VerifyRun> RunVerify(storage::Repository& repo, const VerifyRunOptions& opts) {
  // Only the metadata is kept: the comparison reads the entries through a cursor.
  storage::SnapshotMeta meta;
  {  // the header (a version-3 snapshot's entries are not read here)
    MV_ASSIGN_OR_RETURN(auto blobs, repo.OpenBlobReader());
    MV_ASSIGN_OR_RETURN(auto entries, blobs->OpenEntries(opts.snapshot, &meta));
  }
  std::string parent = opts.scratch_parent;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = t && *t ? t : "/var/tmp";
  }
  // A --scratch directory that does not exist yet is made (private), as restore makes --target.
  Status made = storage::fs::MakeDirs(parent, 0700);
  if (!made.ok())
    return Status(made.code(),
                  "cannot create the scratch directory (" + made.ToString() +
                      "); give a writable directory with --scratch",
                  parent);
  std::string tmpl = parent + "/mailvault-verify-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    return Status::FromErrno(errno, "create scratch directory (give another with --scratch)",
                             parent);
  VerifyRun run;
  run.scratch = tmpl;
  // By descriptors: the restored tree may hold paths longer than PATH_MAX.
  auto cleanup = [&] {
    if (!opts.keep) (void)storage::fs::RemoveTree(run.scratch);
  };
  auto t0 = std::chrono::steady_clock::now();
  RestoreOptions ro;
  ro.snapshot = opts.snapshot;
  ro.target = run.scratch;
  ro.threads = opts.threads;
  ro.sync = false;  // a scratch tree, read once and removed: no need to wait for the disk
  // Owners are not compared, and the sidecar runs without CAP_CHOWN (deploy/stack.yml): the
  // scratch tree stays the verifier's own.
  ro.numeric_owner = false;
  auto blobs = repo.OpenBlobReader();
  auto restored = blobs.ok() ? RunRestore(**blobs, ro) : Result<RestoreResult>(blobs.status());
  if (!restored.ok()) {
    cleanup();
    return restored.status();
  }
  run.restore_seconds = Since(t0);
  std::vector<std::string> problems;
  for (const auto& p : restored->problems) problems.push_back(p.path + ": " + p.message);
  restored = RestoreResult{};  // its lists of written paths are not needed while comparing
  verify::VerifyOptions vo;
  vo.restored_root = run.scratch;
  vo.against_snapshot = opts.against_snapshot;
  vo.against_live = opts.against_live;
  vo.sqlite_tables = opts.sqlite_tables;
  vo.live = opts.live;
  if (vo.live.empty() && opts.against_live)
    for (const auto& s : meta.sources)
      if (!s.path.empty() && IsDir(s.path)) vo.live[s.name] = s.path;
  auto t1 = std::chrono::steady_clock::now();
  auto res = verify::VerifyRestoredStream(**blobs, opts.snapshot, vo, problems);
  cleanup();
  if (!res.ok()) return res.status();
  run.compare_seconds = Since(t1);
  run.result = std::move(res).value();
  if (opts.record) {
    // Recorded for retention and `snapshots` (storage/verification.h); a repository this run
    // cannot write to (a read-only mount) still gets its verdict, with the reason it was not kept.
    const auto& r = run.result;
    storage::Verification v;
    v.snapshot = opts.snapshot;
    v.time = ::time(nullptr);
    v.ok = r.ok();
    v.partial = r.partial();
    v.files = r.files;
    v.messages = r.messages;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) v.host = host;
    auto errors = r.Errors();
    v.summary = errors.empty()
                    ? (r.partial() ? "partial: intact, but files were unreadable at backup"
                                   : "complete and consistent")
                    : errors.front();
    Status st = storage::RecordVerification(repo, v);
    if (!st.ok())
      run.record_problem = "the result was not recorded in the repository: " + st.ToString();
  }
  return run;
}

}  // namespace mv::agent
