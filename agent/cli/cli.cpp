#include "agent/cli/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

namespace mv::agent {

void AddRepoOption(CLI::App* sub, CliContext& ctx) {
  sub->add_option("-r,--repo", ctx.repo,
                  "Repository: a directory, or s3:https://HOST/BUCKET[/PREFIX] "
                  "(default: $MAILVAULT_REPO)");
  auto* g = sub->add_option_group("S3", "For a repository on S3-compatible storage (s3:...)");
  g->add_option("--s3-region", ctx.s3.region,
                "Region to sign for (default: $AWS_DEFAULT_REGION, else us-east-1)");
  g->add_option("--s3-credentials-file", ctx.s3.credentials_file,
                "AWS shared credentials file (a swarm secret); default: the environment's "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  g->add_option("--s3-profile", ctx.s3.profile, "Profile in that file (default: default)");
  g->add_flag("--s3-insecure-http", ctx.s3.insecure_http,
              "Allow s3:http:// to a host that is not loopback (credentials are signed, data "
              "travels in clear)");
  g->add_option("--cache-dir", ctx.s3.cache_dir,
                "Local directory for an S3 repository's temp files and its cache of index "
                "files, manifests and tree packs, each checked before use (default: "
                "$XDG_CACHE_HOME/mailvault, or /var/cache/mailvault for root)");
  g->add_flag("--no-cache", ctx.s3.no_cache,
              "Read everything from S3, not from the cache (check --read-data does so always)");
}

Result<std::unique_ptr<storage::Repository>> OpenRepository(const CliContext& ctx) {
  MV_ASSIGN_OR_RETURN(auto backend, storage::s3::OpenBackend(ctx.repo, ctx.s3));
  return storage::Repository::Open(std::move(backend));
}

Result<std::unique_ptr<storage::Repository>> OpenRepositoryAt(const CliContext& ctx,
                                                              const std::string& repo) {
  MV_ASSIGN_OR_RETURN(auto backend, storage::s3::OpenBackend(repo, ctx.s3));
  return storage::Repository::Open(std::move(backend));
}

Status InitRepository(const CliContext& ctx, const storage::Repository* key_from) {
  MV_ASSIGN_OR_RETURN(auto backend, storage::s3::OpenBackend(ctx.repo, ctx.s3));
  return storage::Repository::Init(*backend, storage::Env::Default(), key_from);
}

void AddOutputOptions(CLI::App* sub, CliContext& ctx) {
  sub->add_flag("--json", ctx.json, "Print machine-readable JSON on stdout");
  sub->add_flag("-q,--quiet", ctx.quiet, "No progress output; errors only");
  sub->add_flag("-v,--verbose", ctx.verbose, "More detail (repeat for more)");
}

Status ResolveRepo(CliContext& ctx) {
  if (ctx.repo.empty()) {
    if (const char* env = std::getenv("MAILVAULT_REPO"); env && *env) ctx.repo = env;
  }
  if (ctx.repo.empty())
    return Status::Invalid("no repository given: pass --repo DIR or set MAILVAULT_REPO");
  return Status::Ok();
}

int ReportError(const CliContext& ctx, const Status& st) {
  if (ctx.json) {
    nlohmann::json j = {{"error", st.message()}, {"code", CodeName(st.code())}};
    if (!st.path().empty()) j["path"] = st.path();
    std::cout << j.dump() << std::endl;
  }
  std::cerr << "mailvault: error: " << st.ToString() << std::endl;
  return st.code() == Code::kInvalidArgument ? kExitUsage : kExitError;
}

int RunCli(int argc, char** argv) {
  CliContext ctx;
  CLI::App app{
      "mailvault - backup, restore and verification of self-hosted mail stacks\n\n"
      "Backs up Maildir trees, SQLite databases (through SQLite's online backup API) and any\n"
      "other files into a content-addressed repository of zstd-compressed tar packs, restores\n"
      "any snapshot bit-exact, and proves each snapshot by restoring and comparing it.\n\n"
      "Exit codes: 0 ok, 1 error (or loss/corruption found), 2 usage, 3 partial (some files\n"
      "could not be read or restored; each is reported), 4 stale (report: no recent backup).",
      "mailvault"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mailvault ") + MAILVAULT_VERSION);
  RegisterInit(app, ctx);
  RegisterBackup(app, ctx);
  RegisterSnapshots(app, ctx);
  RegisterLs(app, ctx);
  RegisterRestore(app, ctx);
  RegisterDiff(app, ctx);
  RegisterAgent(app, ctx);
  RegisterDiscover(app, ctx);
  RegisterCheck(app, ctx);
  RegisterVerify(app, ctx);
  RegisterReport(app, ctx);
  RegisterRepair(app, ctx);
  RegisterPrune(app, ctx);
  RegisterForget(app, ctx);
  RegisterCopy(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace mv::agent
