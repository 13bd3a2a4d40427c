// mailvault key: the passphrases of an encrypted repository, and its identity.
#include <fcntl.h>
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "storage/crypto/repo_keys.h"
#include "storage/fs.h"

namespace mv::agent {
namespace {

namespace crypto = storage::crypto;

// Writes `text` (a key) to `output` (WriteSecretFile) or to stdout when that is not a terminal.
Status WriteKey(const std::string& text, const std::string& output, const std::string& what) {
  if (output.empty() || output == "-") {
    if (::isatty(STDOUT_FILENO))
      return Status::Invalid("refusing to print the " + what +
                             " on a terminal: give --output FILE, or redirect stdout to a file "
                             "or a pipe");
    std::cout << text << std::flush;
    return Status::Ok();
  }
  return WriteSecretFile(output, text);
}

std::string IdentityText(const crypto::RepoKeys& keys) {
  return "# mailvault repository identity: opens every pack and object of the repository.\n"
         "# public key: " +
         crypto::FormatRecipient(keys.recipient) + "\n" + crypto::FormatIdentity(*keys.identity) +
         "\n";
}

}  // namespace

void RegisterKey(CLI::App& app, CliContext& ctx) {
  auto* key =
      app.add_subcommand("key", "Manage the passphrases and identity of an encrypted repository");
  key->footer(
      "An encrypted repository (init --encrypt) has one identity (an age X25519 key) that opens\n"
      "everything in it. keys/ holds it wrapped once per passphrase (argon2id), so passphrases\n"
      "are added, changed and removed without rewriting any data. Every subcommand first opens\n"
      "the repository with --password-file, --identity-file or the prompt.\n\n"
      "Examples:\n"
      "  mailvault key list   --repo /srv/backup/mv --password-file /root/mv.pass\n"
      "  mailvault key add    --repo /srv/backup/mv --password-file /root/mv.pass \\\n"
      "                       --new-password-file /root/colleague.pass\n"
      "  mailvault key passwd --repo /srv/backup/mv --password-file /root/mv.pass \\\n"
      "                       --new-password-file /root/mv.pass.new\n"
      "  mailvault key remove --repo /srv/backup/mv --password-file /root/mv.pass 3f2a...\n"
      "  mailvault key export-identity --repo /srv/backup/mv --output /root/identity.txt\n"
      "  mailvault key export-agent-key --repo /srv/backup/mv --output /root/agent.key\n"
      "  age -d -i /root/identity.txt /srv/backup/mv/packs/ab/ab....tar.zst | tar --zstd -tvf -\n\n"
      "Exit: 0 done, 1 error (wrong passphrase, unknown key, ...), 2 usage.");
  key->require_subcommand(1);

  auto fail = [&ctx](const Status& st) { ctx.exit_code = ReportError(ctx, st); };

  auto* list = key->add_subcommand("list", "List the passphrase key files");
  AddRepoOption(list, ctx);
  AddOutputOptions(list, ctx);
  list->callback([&ctx, fail] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return fail(st);
    auto u = UnlockRepository(ctx);
    if (!u.ok()) return fail(u.status());
    auto ids = crypto::ListKeyIds(*u->backend);
    if (!ids.ok()) return fail(ids.status());
    if (ctx.json) {
      nlohmann::json keys = nlohmann::json::array();
      for (const auto& id : *ids) keys.push_back({{"id", id}, {"current", id == u->keys.key_id}});
      PrintJson({{"repository", ctx.repo},
                 {"recipient", u->config.recipient},
                 {"mode", u->config.key_mode},
                 {"keys", keys}});
      return;
    }
    std::cout << "recipient " << u->config.recipient << " (" << u->config.key_mode << " mode)\n";
    for (const auto& id : *ids) std::cout << (id == u->keys.key_id ? "* " : "  ") << id << "\n";
    if (!u->keys.key_id.empty()) std::cout << "(* opened this time)\n";
  });

  auto new_file = std::make_shared<std::string>();
  auto add_new_option = [new_file](CLI::App* sub) {
    sub->add_option("--new-password-file", *new_file,
                    "File holding the new passphrase (default: asked twice on a terminal)");
  };

  auto* add = key->add_subcommand("add", "Add a passphrase that opens the repository");
  AddRepoOption(add, ctx);
  add_new_option(add);
  AddOutputOptions(add, ctx);
  add->callback([&ctx, fail, new_file] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return fail(st);
    auto u = UnlockRepository(ctx);
    if (!u.ok()) return fail(u.status());
    auto pass = NewPassphrase(*new_file, "the new key of " + ctx.repo);
    if (!pass.ok()) return fail(pass.status());
    auto id = crypto::AddKey(*u->backend, *u->keys.identity, *pass);
    if (!id.ok()) return fail(id.status());
    if (ctx.json)
      PrintJson({{"repository", ctx.repo}, {"added", *id}});
    else
      std::cout << "added key " << *id << "\n";
  });

  auto* passwd = key->add_subcommand(
      "passwd", "Change the passphrase that opened the repository (adds the new, removes the old)");
  AddRepoOption(passwd, ctx);
  add_new_option(passwd);
  AddOutputOptions(passwd, ctx);
  passwd->callback([&ctx, fail, new_file] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return fail(st);
    auto u = UnlockRepository(ctx);
    if (!u.ok()) return fail(u.status());
    if (u->keys.key_id.empty())
      return fail(Status::Invalid(
          "the repository was opened with an identity, not a passphrase, so there is no "
          "passphrase to change: use `mailvault key add`, then `key remove ID`"));
    auto pass = NewPassphrase(*new_file, "the key replacing " + u->keys.key_id);
    if (!pass.ok()) return fail(pass.status());
    auto id = crypto::AddKey(*u->backend, *u->keys.identity, *pass);
    if (!id.ok()) return fail(id.status());
    // The new key is durable before the old one goes: a crash between leaves both.
    if (Status st = crypto::RemoveKey(*u->backend, u->keys.key_id); !st.ok()) return fail(st);
    if (ctx.json)
      PrintJson({{"repository", ctx.repo}, {"added", *id}, {"removed", u->keys.key_id}});
    else
      std::cout << "changed: key " << *id << " replaces " << u->keys.key_id << "\n";
  });

  auto rm_id = std::make_shared<std::string>();
  auto* rm = key->add_subcommand("remove", "Remove a passphrase key file");
  AddRepoOption(rm, ctx);
  rm->add_option("ID", *rm_id, "The key's id (`mailvault key list`)")->required();
  AddOutputOptions(rm, ctx);
  rm->callback([&ctx, fail, rm_id] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return fail(st);
    auto u = UnlockRepository(ctx);
    if (!u.ok()) return fail(u.status());
    if (Status st = crypto::RemoveKey(*u->backend, *rm_id); !st.ok()) return fail(st);
    if (ctx.json)
      PrintJson({{"repository", ctx.repo}, {"removed", *rm_id}});
    else
      std::cout << "removed key " << *rm_id << "\n";
  });

  auto output = std::make_shared<std::string>();
  auto* exp = key->add_subcommand(
      "export-identity",
      "Write the repository's identity (age) to a file or a pipe: it opens every pack with "
      "`age -d -i FILE`");
  AddRepoOption(exp, ctx);
  exp->add_option("-o,--output", *output,
                  "File to create (mode 0600; never over an existing file); default: stdout, "
                  "which must not be a terminal");
  AddOutputOptions(exp, ctx);
  exp->callback([&ctx, fail, output] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return fail(st);
    auto u = UnlockRepository(ctx);
    if (!u.ok()) return fail(u.status());
    if (Status st = WriteKey(IdentityText(u->keys), *output, "identity"); !st.ok()) return fail(st);
    if (!output->empty() && *output != "-") {
      if (ctx.json)
        PrintJson({{"repository", ctx.repo}, {"identity_file", *output}});
      else
        std::cout << "wrote the identity to " << *output
                  << ": whoever has this file can read every backup in the repository\n";
    }
  });

  auto agent_out = std::make_shared<std::string>();
  auto* agent = key->add_subcommand(
      "export-agent-key",
      "Write a write-only agent key: backs up into the repository, reads nothing in it");
  AddRepoOption(agent, ctx);
  agent->add_option("-o,--output", *agent_out,
                    "File to create (mode 0600; never over an existing file); default: stdout, "
                    "which must not be a terminal");
  AddOutputOptions(agent, ctx);
  agent->callback([&ctx, fail, agent_out] {
    if (Status st = ResolveRepo(ctx); !st.ok()) return fail(st);
    auto u = UnlockRepository(ctx);
    if (!u.ok()) return fail(u.status());
    if (Status st = WriteKey(crypto::AgentKeyFile(u->keys, u->config.id), *agent_out, "agent key");
        !st.ok())
      return fail(st);
    if (!agent_out->empty() && *agent_out != "-") {
      if (ctx.json)
        PrintJson({{"repository", ctx.repo}, {"agent_key_file", *agent_out}});
      else
        std::cout << "wrote a write-only agent key to " << *agent_out
                  << ": it adds backups (--agent-key-file) and reads nothing\n";
    }
  });
}

}  // namespace mv::agent
