#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "storage/repository.h"

namespace mv::agent {

void RegisterInit(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("init", "Create a new, empty repository");
  sub->footer(
      "Create a new repository in an empty or missing directory: a random 192-byte key for\n"
      "content addressing (keys/default: keep it with the backups; without it, the repository\n"
      "cannot be written to or checked), and the layout of docs/FORMAT.md.");
  AddRepoOption(sub, ctx);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    if (Status st = InitRepository(ctx); !st.ok())
      return void(ctx.exit_code = ReportError(ctx, st));
    auto repo = OpenRepository(ctx);
    if (!repo.ok()) return void(ctx.exit_code = ReportError(ctx, repo.status()));
    if (ctx.json)
      PrintJson(
          {{"repository", ctx.repo}, {"id", (*repo)->id()}, {"version", storage::kFormatVersion}});
    else
      std::cout << "created mailvault repository " << (*repo)->id().substr(0, 8) << " at "
                << ctx.repo << "\n";
  });
}

}  // namespace mv::agent
