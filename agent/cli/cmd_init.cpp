#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

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
      "With --encrypt, every pack, index file and manifest is encrypted (age, X25519) and\n"
      "authenticated, and the repository opens only with a passphrase: from --password-file\n"
      "(or $MAILVAULT_PASSWORD_FILE; one trailing newline is dropped), else asked twice on a\n"
      "terminal. Lose every passphrase (and every exported identity) and every backup in the\n"
      "repository is lost: nobody can read it. `mailvault key` adds, changes and removes\n"
      "passphrases and exports the identity that opens packs with Debian's `age`\n"
      "(docs/ENCRYPTION.md).\n\n"
      "Examples:\n"
      "  mailvault init --repo /srv/backup/mailvault\n"
      "  mailvault init --repo /srv/backup/mailvault --encrypt --password-file /root/mv.pass\n"
      "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...\n"
      "  mailvault init --repo s3:https://s3.example.net/mail-backups/mailu \\\n"
      "                 --copy-key-from /srv/backup/mailvault\n\n"
      "Exit: 0 created, 1 error (something is there already, the bucket is missing, ...),\n"
      "2 usage.");
  auto key_from = std::make_shared<std::string>();
  auto encrypt = std::make_shared<bool>(false);
  AddRepoOption(sub, ctx);
  sub->add_option("--copy-key-from", *key_from,
                  "Share this repository's content key (a directory or s3:...), for `copy`");
  sub->add_flag("--encrypt", *encrypt,
                "Encrypt the repository with a passphrase (--password-file, or asked)");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, key_from, encrypt] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    std::unique_ptr<storage::Repository> source;
    if (!key_from->empty()) {
      auto src = OpenRepositoryAt(ctx, *key_from);
      if (!src.ok()) return void(ctx.exit_code = ReportError(ctx, src.status()));
      source = std::move(src).value();
      if (source->encrypted() && !*encrypt)
        return void(ctx.exit_code = ReportError(
                        ctx, Status::Invalid("--copy-key-from " + *key_from +
                                             " is encrypted: its copy must be too (add --encrypt), "
                                             "or its content key would be written in clear")));
    }
    std::string key_id;
    if (Status st = InitRepository(ctx, source.get(), *encrypt, &key_id); !st.ok())
      return void(ctx.exit_code = ReportError(ctx, st));
    auto repo = OpenRepository(ctx);
    if (!repo.ok()) return void(ctx.exit_code = ReportError(ctx, repo.status()));
    int version = *encrypt ? storage::kFormatVersion : storage::kPlainFormatVersion;
    std::string pass_from = ctx.keys.password_file.empty()
                                ? (std::getenv("MAILVAULT_PASSWORD_FILE")
                                       ? std::string(std::getenv("MAILVAULT_PASSWORD_FILE"))
                                       : std::string("the passphrase you typed"))
                                : ctx.keys.password_file;
    if (ctx.json) {
      nlohmann::json j = {{"repository", ctx.repo},
                          {"id", (*repo)->id()},
                          {"version", version},
                          {"encrypted", *encrypt}};
      if (*encrypt) j["key_id"] = key_id;
      PrintJson(j);
    } else {
      std::cout << "created mailvault repository " << (*repo)->id().substr(0, 8) << " at "
                << ctx.repo << (*encrypt ? " (encrypted)" : "") << "\n";
      if (*encrypt)
        std::cout << "The repository opens only with the passphrase from " << pass_from << " (key "
                  << key_id << ", wrapped in keys/" << key_id
                  << ").\nIf every passphrase is lost, every backup in it is lost: keep a copy "
                     "of the passphrase\noff this host, or export the identity with `mailvault "
                     "key export-identity --output FILE`\nand keep that offline.\n";
    }
  });
}

}  // namespace mv::agent
