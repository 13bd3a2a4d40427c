#include "agent/cli/cli.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

namespace mv::agent {

void AddRepoOption(CLI::App* sub, CliContext& ctx) {
  sub->add_option("-r,--repo", ctx.repo, "Repository directory (default: $MAILVAULT_REPO)");
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace mv::agent
