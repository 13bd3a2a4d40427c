#include "agent/cli/snapshot_ref.h"

#include <iostream>

namespace mv::agent {

std::unique_ptr<storage::Repository> OpenRepoOrReport(CliContext& ctx) {
  if (Status st = ResolveRepo(ctx); !st.ok()) {
    ctx.exit_code = ReportError(ctx, st);
    return nullptr;
  }
  auto repo = OpenRepository(ctx);
  if (!repo.ok()) {
    ctx.exit_code = ReportError(ctx, repo.status());
    return nullptr;
  }
  return std::move(repo).value();
}

std::string ResolveOrReport(CliContext& ctx, const storage::Repository& repo,
                            const std::string& ref) {
  auto id = repo.ResolveSnapshot(ref);
  if (!id.ok()) {
    ctx.exit_code = ReportError(ctx, id.status());
    return "";
  }
  return *id;
}

void WarnDamagedIndex(const storage::Repository& repo) {
  for (const auto& d : repo.damaged_index_files())
    std::cerr << "mailvault: warning: " << d.path << ": damaged index file skipped (" << d.reason
              << "); the packs it named were re-listed for this run. Rebuild the index with "
                 "`mailvault repair index`\n";
}

std::string ModeString(const storage::FileEntry& e) {
  std::string s = e.type == storage::FileType::kDirectory ? "d"
                  : e.type == storage::FileType::kSymlink ? "l"
                                                          : "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; i++) s += (e.mode & (0400 >> i)) ? rwx[i] : '-';
  return s;
}

}  // namespace mv::agent
