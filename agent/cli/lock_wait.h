// `--retry-lock DURATION`, shared by the commands that take the repository lock (backup, prune).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "agent/cli/cli.h"
#include "storage/lock.h"
#include "storage/status.h"

namespace mv::agent {

// Adds `--retry-lock` to `sub`, storing its text in *text.
void AddRetryLockOption(CLI::App* sub, std::string* text);
// The wait `--retry-lock` asks for (an empty text: none, fail at once). While it waits, a line
// on stderr says who holds the lock, once per holder (not in --quiet mode).
Result<storage::LockWait> ParseRetryLock(const std::string& text, const CliContext& ctx);

}  // namespace mv::agent
