#include "agent/cli/cli.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "storage/crypto/repo_keys.h"
#include "storage/fs.h"

namespace mv::agent {
namespace {

// The command list of `mailvault --help`: one line per command, the first line of its
// description (a command whose description is a whole page has its summary here).
const std::map<std::string, std::string> kSummaries = {
    {"agent", "Run as the backup sidecar: scheduled stack backups, retention, off-site copies"}};

class CommandListFormatter final : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    auto it = kSummaries.find(sub->get_name());
    std::string d = it != kSummaries.end() ? it->second : sub->get_description();
    d = d.substr(0, d.find('\n'));
    if (!d.empty() && d.back() == '.') d.pop_back();
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_display_name(), d, column_width_);
    return out.str();
  }
};

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "unknown command 'restor'; did you mean 'restore'?", with the list of commands.
int UnknownCommand(CLI::App& app, const std::string& word, bool json) {
  std::string best, list;
  size_t best_d = 3;  // at most two edits away, or a prefix of a command
  for (const auto* s : app.get_subcommands([](CLI::App*) { return true; })) {
    const std::string& n = s->get_name();
    list += (list.empty() ? "" : ", ") + n;
    size_t d = n.rfind(word, 0) == 0 ? 1 : EditDistance(word, n);
    if (d < best_d) best_d = d, best = n;
  }
  std::string msg = "unknown command '" + word + "'";
  if (!best.empty()) msg += "; did you mean '" + best + "'?";
  if (json) std::cout << nlohmann::json({{"error", msg}, {"code", "usage"}}).dump() << std::endl;
  std::cerr << "mailvault: " << msg << "\nCommands: " << list
            << ". `mailvault help COMMAND` shows one." << std::endl;
  return kExitUsage;
}

}  // namespace

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
  auto* k = sub->add_option_group("Encryption", "For an encrypted repository (docs/ENCRYPTION.md)");
  k->add_option("--password-file", ctx.keys.password_file,
                "File holding the repository's passphrase (one trailing newline is dropped); "
                "default: $MAILVAULT_PASSWORD_FILE, else asked on a terminal");
  k->add_option("--identity-file", ctx.keys.identity_file,
                "age identity file (AGE-SECRET-KEY-1..., from `mailvault key export-identity` "
                "or age-keygen) that opens the repository instead of a passphrase; default: "
                "$MAILVAULT_IDENTITY_FILE");
  k->add_option("--agent-key-file", ctx.keys.agent_key_file,
                "Write-only agent key (init --recipient --agent-key-out, or key "
                "export-agent-key): backs up without being able to read anything; default: "
                "$MAILVAULT_AGENT_KEY_FILE");
  g->add_flag("--no-cache", ctx.s3.no_cache,
              "Read everything from S3, not from the cache (check --read-data does so always)");
}

namespace {

namespace crypto = storage::crypto;

std::string EnvOr(const std::string& given, const char* var) {
  if (!given.empty()) return given;
  const char* e = std::getenv(var);
  return e && *e ? e : "";
}

// One line from the terminal without echo (the passphrase never shows).
Result<std::string> PromptHidden(const std::string& label) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::Invalid("no terminal to ask for a passphrase on");
  std::string out = label;
  (void)!::write(fd, out.data(), out.size());
  termios old{};
  bool restore = ::tcgetattr(fd, &old) == 0;
  if (restore) {
    termios t = old;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &t);
  }
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  if (restore) ::tcsetattr(fd, TCSAFLUSH, &old);
  (void)!::write(fd, "\n", 1);
  ::close(fd);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return Status::AccessDenied("no passphrase was typed");
  return line;
}

Result<std::string> PassphraseFile(const std::string& file) {
  auto text = storage::fs::ReadFile(file);
  if (!text.ok())
    return Status(text.status().code() == Code::kNotFound ? Code::kNotFound : Code::kIOError,
                  "cannot read the passphrase file (" + text.status().message() +
                      "): give the file holding the repository's passphrase",
                  file);
  auto pass = crypto::PassphraseFromFile(*text, file);
  // A bad key file is an error opening the repository (exit 1), not a usage error.
  if (!pass.ok()) return Status::AccessDenied(pass.status().message(), file);
  return pass;
}

Result<crypto::KeySource> KeySourceOf(const CliContext& ctx, const std::string& repo) {
  crypto::KeySource k;
  KeyFiles files = KeyFilesOf(ctx);
  const std::string &pw = files.password, &idf = files.identity, &agf = files.agent;
  auto read_key_file = [](const std::string& path, const std::string& what) -> Result<std::string> {
    auto text = storage::fs::ReadFile(path);
    if (!text.ok())
      return Status(text.status().code() == Code::kNotFound ? Code::kNotFound : Code::kIOError,
                    "cannot read the " + what + " (" + text.status().message() + ")", path);
    return text;
  };
  if (!idf.empty()) {
    MV_ASSIGN_OR_RETURN(std::string text, read_key_file(idf,
                                                        "identity file: give the age identity "
                                                        "(AGE-SECRET-KEY-1...) of the repository"));
    auto id = crypto::ParseIdentity(text, idf);
    if (!id.ok()) return Status::AccessDenied(id.status().message(), idf);
    k.identity = *id;
    k.identity_from = idf;
    return k;
  }
  if (!pw.empty() || !ctx.keys.passphrase->empty() || (agf.empty() && ::isatty(STDIN_FILENO))) {
    MV_ASSIGN_OR_RETURN(std::string pass, ReadPassphrase(ctx, "repository " + repo, false));
    k.passphrase = pass;
    k.passphrase_from = pw.empty() ? "the prompt" : pw;
    return k;
  }
  if (!agf.empty()) {
    MV_ASSIGN_OR_RETURN(std::string text, read_key_file(agf, "agent key file"));
    MV_ASSIGN_OR_RETURN(crypto::AgentKey agent, crypto::DecodeAgentKey(text, agf, ""));
    k.agent = agent;
    k.agent_from = agf;
  }
  return k;
}

}  // namespace

KeyFiles KeyFilesOf(const CliContext& ctx) {
  return {EnvOr(ctx.keys.password_file, "MAILVAULT_PASSWORD_FILE"),
          EnvOr(ctx.keys.identity_file, "MAILVAULT_IDENTITY_FILE"),
          EnvOr(ctx.keys.agent_key_file, "MAILVAULT_AGENT_KEY_FILE")};
}

bool OpensWithAgentKeyOnly(const CliContext& ctx) {
  KeyFiles f = KeyFilesOf(ctx);
  return !f.agent.empty() && f.password.empty() && f.identity.empty() &&
         ctx.keys.passphrase->empty();
}

Result<std::string> ReadPassphrase(const CliContext& ctx, const std::string& purpose,
                                   bool confirm) {
  if (!ctx.keys.passphrase->empty()) return *ctx.keys.passphrase;
  std::string file = EnvOr(ctx.keys.password_file, "MAILVAULT_PASSWORD_FILE");
  MV_ASSIGN_OR_RETURN(std::string pass, confirm ? NewPassphrase(file, purpose)
                                        : !file.empty()
                                            ? PassphraseFile(file)
                                            : PromptHidden("Passphrase for " + purpose + ": "));
  *ctx.keys.passphrase = pass;
  return pass;
}

Result<std::string> NewPassphrase(const std::string& file, const std::string& purpose) {
  if (!file.empty()) return PassphraseFile(file);
  if (!::isatty(STDIN_FILENO))
    return Status::Invalid("no passphrase for " + purpose +
                           ": give --password-file FILE (or set MAILVAULT_PASSWORD_FILE), or run "
                           "on a terminal to be asked");
  MV_ASSIGN_OR_RETURN(std::string a, PromptHidden("New passphrase for " + purpose + ": "));
  MV_ASSIGN_OR_RETURN(std::string b, PromptHidden("Type it again: "));
  if (a != b) return Status::Invalid("the two passphrases differ; nothing was written");
  return a;
}

Result<std::unique_ptr<storage::Repository>> OpenRepository(const CliContext& ctx) {
  return OpenRepositoryAt(ctx, ctx.repo);
}

Result<std::unique_ptr<storage::Repository>> OpenRepositoryAt(const CliContext& ctx,
                                                              const std::string& repo) {
  MV_ASSIGN_OR_RETURN(auto backend, storage::s3::OpenBackend(repo, ctx.s3));
  MV_ASSIGN_OR_RETURN(storage::RepoConfig config, storage::ReadRepoConfig(*backend));
  if (config.encryption.empty()) return storage::Repository::Open(std::move(backend));
  MV_ASSIGN_OR_RETURN(crypto::KeySource source, KeySourceOf(ctx, repo));
  MV_ASSIGN_OR_RETURN(crypto::RepoKeys keys, crypto::Unlock(*backend, config, source));
  if (!keys.identity && !ctx.write_only_ok)
    return Status::AccessDenied(
        "the agent key in " + source.agent_from +
            " can only back up (it cannot read the repository): give the passphrase "
            "(--password-file) or the identity (--identity-file) for this command",
        backend->Describe());
  std::string plain_cache;
  if (!keys.identity)
    plain_cache = storage::fs::Join(storage::s3::CacheDir(ctx.s3), "agent-" + config.id);
  auto encrypted = crypto::OpenEncrypted(std::move(backend), config, keys, plain_cache);
  return storage::Repository::Open(std::move(encrypted), storage::Env::Default(),
                                   &keys.secrets.content);
}

Result<UnlockedRepository> UnlockRepository(const CliContext& ctx) {
  UnlockedRepository u;
  MV_ASSIGN_OR_RETURN(u.backend, storage::s3::OpenBackend(ctx.repo, ctx.s3));
  MV_ASSIGN_OR_RETURN(u.config, storage::ReadRepoConfig(*u.backend));
  if (u.config.encryption.empty())
    return Status::Invalid(
        "the repository is not encrypted, so it has no keys to manage: its content key is "
        "keys/default; to have an encrypted one, `mailvault init --encrypt` a new repository "
        "and `mailvault copy` the snapshots into it",
        u.backend->Describe());
  MV_ASSIGN_OR_RETURN(crypto::KeySource source, KeySourceOf(ctx, ctx.repo));
  MV_ASSIGN_OR_RETURN(u.keys, crypto::Unlock(*u.backend, u.config, source));
  if (!u.keys.identity)
    return Status::AccessDenied(
        "an agent key cannot manage keys: give the passphrase (--password-file) or the "
        "identity (--identity-file)",
        u.backend->Describe());
  return u;
}

Status WriteSecretFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::FromErrno(errno,
                             errno == EEXIST ? "the file exists already (a key is never written "
                                               "over a file); give a new name"
                                             : "create the key file",
                             path);
  Status st = storage::fs::WriteAll(fd, text.data(), text.size(), path);
  if (st.ok() && ::fsync(fd) != 0) st = Status::FromErrno(errno, "fsync", path);
  ::close(fd);
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

Status InitRepository(const CliContext& ctx, const storage::Repository* key_from, bool encrypt,
                      std::string* key_id, const std::string& recipient,
                      const std::string& agent_key_out) {
  MV_ASSIGN_OR_RETURN(auto backend, storage::s3::OpenBackend(ctx.repo, ctx.s3));
  std::string secret = key_from ? key_from->hasher().secret() : "";
  if (!recipient.empty()) {
    auto r = crypto::ParseRecipient(recipient);
    if (!r.ok())
      return Status::Invalid("--recipient '" + recipient +
                             "' is not an age recipient (age1..., from `age-keygen -y "
                             "identity.txt` or `mailvault key generate-identity`)");
    if (!agent_key_out.empty() && storage::fs::Exists(agent_key_out))
      return Status::Invalid("--agent-key-out " + agent_key_out +
                             " exists already: a key is never written over a file");
    MV_ASSIGN_OR_RETURN(crypto::RecipientEncryption re,
                        crypto::NewRecipientEncryption(*r, key_from ? &secret : nullptr));
    MV_RETURN_IF_ERROR(
        storage::Repository::Init(*backend, storage::Env::Default(), key_from, &re.enc));
    if (agent_key_out.empty()) return Status::Ok();
    return WriteSecretFile(agent_key_out, crypto::EncodeAgentKey({re.enc.id, *r, re.secrets}));
  }
  if (!encrypt) return storage::Repository::Init(*backend, storage::Env::Default(), key_from);
  MV_ASSIGN_OR_RETURN(std::string pass,
                      ReadPassphrase(ctx, "the new repository " + ctx.repo, /*confirm=*/true));
  MV_ASSIGN_OR_RETURN(storage::RepoEncryption enc,
                      crypto::NewPassphraseEncryption(pass, key_from ? &secret : nullptr));
  for (const auto& [name, bytes] : enc.key_files)
    if (key_id && name != "keys/secrets") *key_id = name.substr(5);
  return storage::Repository::Init(*backend, storage::Env::Default(), key_from, &enc);
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
  app.formatter(std::make_shared<CommandListFormatter>());  // the commands inherit it
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
  RegisterFind(app, ctx);
  RegisterKey(app, ctx);
  // Before CLI11 sees them: `help [COMMAND]`, `version`, `--json` before the command, and a
  // first word that is no command (CLI11 would only say that a subcommand is required).
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool json = std::find(args.begin(), args.end(), "--json") != args.end();
  auto known = [&](const std::string& n) {
    return !app.get_subcommands([&](CLI::App* s) { return s->check_name(n); }).empty();
  };
  if (!args.empty() && args[0] == "version") {
    std::cout << "mailvault " << MAILVAULT_VERSION << std::endl;
    return kExitOk;
  }
  if (!args.empty() && args[0] == "help") {
    if (args.size() == 1) {
      args = {"--help"};
    } else if (known(args[1])) {
      args = {args[1], "--help"};
    } else {
      return UnknownCommand(app, args[1], json);
    }
  }
  if (args.size() > 1 && args[0] == "--json" && known(args[1])) std::swap(args[0], args[1]);
  if (!args.empty() && !args[0].empty() && args[0][0] != '-' && !known(args[0]))
    return UnknownCommand(app, args[0], json);
  std::reverse(args.begin(), args.end());  // CLI11 takes the vector last argument first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    if (json && e.get_exit_code() != 0)
      std::cout << nlohmann::json({{"error", std::string(e.what())}, {"code", "usage"}}).dump()
                << std::endl;
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace mv::agent
