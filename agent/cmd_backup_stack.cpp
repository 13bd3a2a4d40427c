// `mailvault backup` with no --source: discover the labelled stacks and back each one up.
#include "agent/cli.h"

namespace mv::agent {

int RunStackBackupCommand(CliContext& ctx, storage::Repository& repo, const BackupOptions& base) {
  return ReportError(ctx, Status::Invalid("nothing to back up: give --source NAME=DIR (stack discovery is not wired yet)"));
}

}  // namespace mv::agent

namespace mv::agent {

int RunStackRestoreCommand(CliContext& ctx, storage::Repository& repo, const RestoreOptions& base) {
  return ReportError(ctx, Status::Invalid("no restore target: give --target DIR (stack restore is not wired yet)"));
}

}  // namespace mv::agent
