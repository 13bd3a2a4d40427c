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
                            const std::string& ref, const retention::SnapshotFilter& filter) {
  auto id = retention::ResolveSnapshotRef(repo, ref, filter);
  if (!id.ok()) {
    ctx.exit_code = ReportError(ctx, id.status());
    return "";
  }
  return *id;
}

const char kLatestHelp[] =
    "'latest' is the newest snapshot of one stack on one host. In a repository shared by\n"
    "several, name the one with --stack, --host or --tag; without, 'latest' is an error that\n"
    "lists them. A snapshot ID is used as given.";

void AddSnapshotFilterOptions(CLI::App* sub, retention::SnapshotFilter* filter, bool stack) {
  if (stack) sub->add_option("--stack", filter->stack, "'latest' of this stack (tag stack=S)");
  sub->add_option("--host", filter->host, "'latest' of this host");
  sub->add_option_function<std::vector<std::string>>(
         "--tag",
         [filter](const std::vector<std::string>& kvs) {
           for (const auto& kv : kvs) {
             size_t eq = kv.find('=');
             filter->tags.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
           }
         },
         "'latest' of snapshots with this KEY=VALUE tag; repeatable")
      ->check(
          [](const std::string& kv) -> std::string {
            size_t eq = kv.find('=');
            return eq == std::string::npos || eq == 0
                       ? "'" + kv + "' is not KEY=VALUE; give e.g. --tag env=prod"
                       : "";
          },
          "KEY=VALUE");
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
