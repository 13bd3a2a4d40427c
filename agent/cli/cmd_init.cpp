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
      "cannot be written to or checked), and the layout of docs/FORMAT.md.\n\n"
      "With --copy-key-from SOURCE the new repository shares SOURCE's content key and chunker\n"
      "parameters instead, so the same mail has the same blob IDs in both and `mailvault copy`\n"
      "sends packs as they are, never re-hashing or re-packing (an off-site copy, 3-2-1).\n\n"
      "Examples:\n"
      "  mailvault init --repo /srv/backup/mailvault\n"
      "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...\n"
      "  mailvault init --repo s3:https://s3.example.net/mail-backups/mailu \\\n"
      "                 --copy-key-from /srv/backup/mailvault\n\n"
      "Exit: 0 created, 1 error (something is there already, the bucket is missing, ...),\n"
      "2 usage.");
  auto key_from = std::make_shared<std::string>();
  AddRepoOption(sub, ctx);
  sub->add_option("--copy-key-from", *key_from,
                  "Share this repository's content key (a directory or s3:...), for `copy`");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, key_from] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    std::unique_ptr<storage::Repository> source;
    if (!key_from->empty()) {
      auto src = OpenRepositoryAt(ctx, *key_from);
      if (!src.ok()) return void(ctx.exit_code = ReportError(ctx, src.status()));
      source = std::move(src).value();
    }
    if (Status st = InitRepository(ctx, source.get()); !st.ok())
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
