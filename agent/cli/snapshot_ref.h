// Opening a repository and resolving a snapshot reference, shared by the read-only commands.
#pragma once

#include <memory>
#include <string>

#include "agent/cli/cli.h"
#include "storage/repository.h"

namespace mv::agent {

// Opens ctx.repo; on failure reports it and sets ctx.exit_code, returning null.
std::unique_ptr<storage::Repository> OpenRepoOrReport(CliContext& ctx);
// Resolves "latest"/prefix/ID; on failure reports and sets ctx.exit_code, returning "".
std::string ResolveOrReport(CliContext& ctx, const storage::Repository& repo,
                            const std::string& ref);
// One stderr line per damaged index file LoadIndex() skipped, naming it and the repair.
void WarnDamagedIndex(const storage::Repository& repo);
// Mode bits as `ls -l` shows them.
std::string ModeString(const storage::FileEntry& e);

}  // namespace mv::agent
