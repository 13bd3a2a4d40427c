// The command-line front end: one Register<Verb>() per cmd_<verb>.cpp, each adding a CLI11
// subcommand whose callback sets ctx.exit_code. Only agent/cli prints or chooses exit codes
// (tests/check_layers.sh enforces it).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "storage/crypto/repo_keys.h"
#include "storage/repository.h"
#include "storage/s3/open.h"
#include "storage/status.h"

namespace mv::agent {

// The documented exit codes (README "Exit codes"). Monitoring relies on these values.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,    // the operation failed, or verification found loss/corruption
  kExitUsage = 2,    // bad command line
  kExitPartial = 3,  // done, but some files could not be read/restored; each was reported
  kExitStale = 4,    // report: no successful backup within the expected interval
};

// How an encrypted repository is opened (docs/ENCRYPTION.md): --password-file or
// --identity-file, else $MAILVAULT_PASSWORD_FILE or $MAILVAULT_IDENTITY_FILE, else a prompt when
// stdin is a terminal. What was read is kept for the run, so a command opening the repository
// twice asks once.
struct KeyOptions {
  std::string password_file;
  std::string identity_file;
  std::string agent_key_file;  // write-only (docs/ENCRYPTION.md): only commands that allow it
  std::shared_ptr<std::string> passphrase = std::make_shared<std::string>();  // read once
};

struct CliContext {
  std::string repo;            // --repo or $MAILVAULT_REPO
  KeyOptions keys;             // --password-file, --identity-file, --agent-key-file
  bool write_only_ok = false;  // this command works with a write-only agent key (backup)
  storage::s3::S3Options s3;   // --s3-region, --s3-credentials-file, --cache-dir, ...
  bool json = false;           // --json: machine-readable output on stdout
  bool quiet = false;          // --quiet: no progress, only errors
  int verbose = 0;             // -v
  int exit_code = kExitOk;
};

// Adds the global options shared by every subcommand to `sub`.
void AddRepoOption(CLI::App* sub, CliContext& ctx);
void AddOutputOptions(CLI::App* sub, CliContext& ctx);

// Prints `st` (to stderr, or as JSON {"error":...} on stdout in --json mode) and returns the
// exit code for it.
int ReportError(const CliContext& ctx, const Status& st);
// The exit code of `mailvault report` (also written into the JSON report): damage wins.
int ReportExitCode(bool damage, bool stale);
// Resolves ctx.repo from $MAILVAULT_REPO when --repo was not given; usage error if neither.
Status ResolveRepo(CliContext& ctx);
// Opens the repository ctx.repo names (a directory or s3:…), with the S3 options.
Result<std::unique_ptr<storage::Repository>> OpenRepository(const CliContext& ctx);
// The same for another repository argument (copy's --to), with the same S3 options.
Result<std::unique_ptr<storage::Repository>> OpenRepositoryAt(const CliContext& ctx,
                                                              const std::string& repo);
// Creates it (`init`); with `key_from`, sharing that repository's content key (copy). With
// `encrypt`, an encrypted repository (format 7) opening with the passphrase of ctx.keys (asked
// twice on a terminal); *key_id is then the id of its passphrase key file.
// With `recipient` (age1…), an encrypted repository in public-key mode: no identity is stored;
// with `agent_key_out`, the write-only agent key is written there (WriteSecretFile).
Status InitRepository(const CliContext& ctx, const storage::Repository* key_from = nullptr,
                      bool encrypt = false, std::string* key_id = nullptr,
                      const std::string& recipient = "", const std::string& agent_key_out = "");
// Creates `path` (mode 0600, never over an existing file) holding `text`, durably: identity and
// agent key files.
Status WriteSecretFile(const std::string& path, const std::string& text);
// The key files ctx.keys names, each from its option or else its environment variable.
struct KeyFiles {
  std::string password, identity, agent;
};
KeyFiles KeyFilesOf(const CliContext& ctx);
// Whether an encrypted repository would be opened with the write-only agent key: one is given
// and neither a passphrase nor an identity, which take precedence (KeySourceOf in cli.cpp).
bool OpensWithAgentKeyOnly(const CliContext& ctx);
// The passphrase ctx.keys gives (file, environment, or prompt); `purpose` words the prompt.
// kInvalidArgument when none can be had (no file and no terminal).
Result<std::string> ReadPassphrase(const CliContext& ctx, const std::string& purpose, bool confirm);
// A passphrase from a file (one trailing newline dropped), or asked twice on a terminal.
Result<std::string> NewPassphrase(const std::string& file, const std::string& purpose);
// An encrypted repository's backend (as stored, not decrypting), config and unlocked keys, for
// `mailvault key`. kInvalidArgument when ctx.repo is not encrypted.
struct UnlockedRepository {
  std::unique_ptr<storage::Backend> backend;
  storage::RepoConfig config;
  storage::crypto::RepoKeys keys;
};
Result<UnlockedRepository> UnlockRepository(const CliContext& ctx);
void RegisterKey(CLI::App& app, CliContext& ctx);

void RegisterInit(CLI::App& app, CliContext& ctx);
void RegisterBackup(CLI::App& app, CliContext& ctx);
void RegisterSnapshots(CLI::App& app, CliContext& ctx);
void RegisterLs(CLI::App& app, CliContext& ctx);
void RegisterRestore(CLI::App& app, CliContext& ctx);
void RegisterDiff(CLI::App& app, CliContext& ctx);
void RegisterAgent(CLI::App& app, CliContext& ctx);
void RegisterDiscover(CLI::App& app, CliContext& ctx);
void RegisterCheck(CLI::App& app, CliContext& ctx);
void RegisterVerify(CLI::App& app, CliContext& ctx);
void RegisterReport(CLI::App& app, CliContext& ctx);
void RegisterRepair(CLI::App& app, CliContext& ctx);
void RegisterPrune(CLI::App& app, CliContext& ctx);
void RegisterForget(CLI::App& app, CliContext& ctx);
void RegisterCopy(CLI::App& app, CliContext& ctx);
void RegisterFind(CLI::App& app, CliContext& ctx);  // find, history, index-headers

int RunCli(int argc, char** argv);

}  // namespace mv::agent
