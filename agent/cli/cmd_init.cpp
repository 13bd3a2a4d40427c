#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "storage/repository.h"
#include "storage/s3/open.h"

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
      "With --recipient age1... (public-key mode) the repository is encrypted to that age\n"
      "recipient only: nothing on this host can read it, and --agent-key-out writes the key\n"
      "a backup agent uses to add backups it cannot read (docs/ENCRYPTION.md).\n\n"
      "Examples:\n"
      "  mailvault init --repo /srv/backup/mailvault\n"
      "  mailvault init --repo /srv/backup/mailvault --encrypt --password-file /root/mv.pass\n"
      "  age-keygen -o identity.txt    # on the operator's machine, not the mail host\n"
      "  mailvault init --repo /srv/backup/mailvault --recipient age1... \\\n"
      "                 --agent-key-out /root/mailvault-agent.key\n"
      "  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...\n"
      "  mailvault init --repo s3:https://s3.example.net/mail-backups/mailu \\\n"
      "                 --copy-key-from /srv/backup/mailvault\n\n"
      "Exit: 0 created, 1 error (something is there already, the bucket is missing, ...),\n"
      "2 usage.");
  auto key_from = std::make_shared<std::string>();
  auto encrypt = std::make_shared<bool>(false);
  auto recipient = std::make_shared<std::string>();
  auto agent_key_out = std::make_shared<std::string>();
  AddRepoOption(sub, ctx);
  sub->add_option("--copy-key-from", *key_from,
                  "Share this repository's content key (a directory or s3:...), for `copy`");
  sub->add_flag("--encrypt", *encrypt,
                "Encrypt the repository with a passphrase (--password-file, or asked)");
  sub->add_option("--recipient", *recipient,
                  "Encrypt to this age recipient (age1...) only: no identity is stored, the "
                  "holder of its identity file reads (public-key mode)");
  sub->add_option("--agent-key-out", *agent_key_out,
                  "With --recipient: write the write-only agent key here (mode 0600), which "
                  "backs up without being able to read anything");
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, key_from, encrypt, recipient, agent_key_out] {
    if (!agent_key_out->empty() && recipient->empty())
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--agent-key-out goes with --recipient (a passphrase "
                                           "repository makes one with `mailvault key "
                                           "export-agent-key`)")));
    if (*encrypt && !recipient->empty())
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("--encrypt (a passphrase) and --recipient (public-key "
                                           "mode) exclude each other: choose one")));
    bool encrypted = *encrypt || !recipient->empty();
    if (Status st = ResolveRepo(ctx); !st.ok()) return void(ctx.exit_code = ReportError(ctx, st));
    std::unique_ptr<storage::Repository> source;
    if (!key_from->empty()) {
      auto src = OpenRepositoryAt(ctx, *key_from);
      if (!src.ok()) return void(ctx.exit_code = ReportError(ctx, src.status()));
      source = std::move(src).value();
      if (source->encrypted() && !encrypted)
        return void(ctx.exit_code = ReportError(
                        ctx, Status::Invalid("--copy-key-from " + *key_from +
                                             " is encrypted: its copy must be too (add --encrypt), "
                                             "or its content key would be written in clear")));
    }
    std::string key_id;
    if (Status st =
            InitRepository(ctx, source.get(), *encrypt, &key_id, *recipient, *agent_key_out);
        !st.ok())
      return void(ctx.exit_code = ReportError(ctx, st));
    // Read back what was written (public-key mode cannot open the repository: no identity here).
    auto backend = storage::s3::OpenBackend(ctx.repo, ctx.s3);
    auto config = backend.ok() ? storage::ReadRepoConfig(**backend)
                               : Result<storage::RepoConfig>(backend.status());
    if (!config.ok()) return void(ctx.exit_code = ReportError(ctx, config.status()));
    int version = config->version;
    std::string pass_from = KeyFilesOf(ctx).password;
    if (pass_from.empty()) pass_from = "the passphrase you typed";
    if (ctx.json) {
      nlohmann::json j = {{"repository", ctx.repo},
                          {"id", config->id},
                          {"version", version},
                          {"encrypted", encrypted}};
      if (*encrypt) j["key_id"] = key_id;
      if (!recipient->empty()) j["recipient"] = *recipient;
      if (!agent_key_out->empty()) j["agent_key_file"] = *agent_key_out;
      PrintJson(j);
    } else {
      std::cout << "created mailvault repository " << config->id.substr(0, 8) << " at " << ctx.repo
                << (encrypted ? " (encrypted)" : "") << "\n";
      if (!recipient->empty())
        std::cout << "Encrypted to " << *recipient
                  << ": only the holder of its identity file can restore, verify, check data,\n"
                     "prune or copy. If that identity is lost, every backup in the repository "
                     "is lost.\n"
                  << (agent_key_out->empty()
                          ? std::string("Back up with --identity-file, or make a write-only "
                                        "agent key with `mailvault key export-agent-key`.\n")
                          : "The write-only agent key is in " + *agent_key_out +
                                " (mode 0600): give it to the backup agent\n"
                                "(--agent-key-file); it can add backups but read none.\n");
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
