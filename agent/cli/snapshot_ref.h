// Opening a repository and resolving a snapshot reference, shared by the read-only commands.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "agent/cli/cli.h"
#include "retention/select.h"
#include "storage/repository.h"

namespace mv::agent {

// Opens ctx.repo; on failure reports it and sets ctx.exit_code, returning null.
std::unique_ptr<storage::Repository> OpenRepoOrReport(CliContext& ctx);
// What restore and verify let a remote repository keep of the packs they download, for the run
// (storage::Backend::KeepReadPacks; at most half the cache file system's free space): a pack
// that holds files of several restore batches is then downloaded once.
constexpr uint64_t kRestoreKeepPackBytes = 4ull << 30;
// Resolves "latest"/prefix/ID (retention::ResolveSnapshotRef: "latest" is the newest snapshot
// of one group matching `filter`); on failure reports and sets ctx.exit_code, returning "".
std::string ResolveOrReport(CliContext& ctx, const storage::Repository& repo,
                            const std::string& ref, const retention::SnapshotFilter& filter = {});
// --host and --tag KEY=VALUE (repeatable), and --stack unless `stack` is false (a command whose
// --stack means more): which snapshots "latest" may mean.
void AddSnapshotFilterOptions(CLI::App* sub, retention::SnapshotFilter* filter, bool stack = true);
// The footer paragraph that says so.
extern const char kLatestHelp[];
// One stderr line per damaged index file LoadIndex() skipped, naming it and the repair.
void WarnDamagedIndex(const storage::Repository& repo);
// Mode bits as `ls -l` shows them.
std::string ModeString(const storage::FileEntry& e);

}  // namespace mv::agent
