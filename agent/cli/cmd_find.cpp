// mailvault find | history | index-headers (agent/jobs/find_mail.h; docs/RESTORE.md "Finding
// mail").
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "agent/cli/time_arg.h"
#include "agent/jobs/find_mail.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

nlohmann::json FoundJson(const FoundMessage& m) {
  const auto& h = m.headers;
  return {{"mailbox", m.place.mailbox},
          {"folder", m.place.folder},
          {"source", m.place.source},
          {"name", m.place.unique},
          {"file", m.place.file},
          {"content", h.content.Hex()},
          {"size", h.size},
          {"date", h.date},
          {"date_unix", h.date_unix},
          {"from", h.from},
          {"to", h.to},
          {"subject", h.subject},
          {"message_id", h.message_id},
          {"first_snapshot", m.first_snapshot},
          {"first_time", m.first_time},
          {"last_snapshot", m.last_snapshot},
          {"last_time", m.last_time},
          {"snapshots", m.snapshots}};
}

std::string Short(const std::string& id) { return id.substr(0, 8); }

void PrintFoundHuman(const FoundMessage& m, bool with_snapshots) {
  const auto& h = m.headers;
  std::cout << m.place.mailbox << " " << m.place.folder << " " << m.place.unique << "  ("
            << HumanBytes(h.size) << ")\n";
  if (!h.date.empty()) std::cout << "  Date:       " << h.date << "\n";
  if (!h.from.empty()) std::cout << "  From:       " << h.from << "\n";
  if (!h.subject.empty()) std::cout << "  Subject:    " << h.subject << "\n";
  if (!h.message_id.empty()) std::cout << "  Message-ID: <" << h.message_id << ">\n";
  if (with_snapshots)
    std::cout << "  in " << m.snapshots << " snapshot(s): first " << Short(m.first_snapshot) << " ("
              << HumanTime(m.first_time) << "), last " << Short(m.last_snapshot) << " ("
              << HumanTime(m.last_time) << ")\n";
}

// The snapshots the filter selects (every one without a filter).
Result<std::vector<storage::SnapshotMeta>> Selected(const storage::Repository& repo,
                                                    const retention::SnapshotFilter& filter) {
  MV_ASSIGN_OR_RETURN(auto all, repo.ListSnapshots());
  std::vector<storage::SnapshotMeta> out;
  for (auto& m : all)
    if (filter.Matches(m)) out.push_back(std::move(m));
  return out;
}

void RegisterFindCmd(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "find", "Find messages across snapshots by Message-ID, sender, recipient, subject or date");
  sub->footer(
      "Answers \"which snapshots hold a message like this, where, and from when to when\": for\n"
      "each match, its mailbox, folder, unique name, size, Date, From, Subject and Message-ID,\n"
      "and the first and last snapshot that held it (with its name there, so `restore --mailbox\n"
      "M --folder F --message NAME --into-folder ...` brings it back). Reads the header index\n"
      "(written by every backup since format version 8; `mailvault index-headers` fills it for\n"
      "older snapshots) and the snapshots' directory trees, never a message.\n\n"
      "--from, --to (To and Cc) and --subject match substrings, ignoring case, after RFC 2047\n"
      "decoding; --message-id matches exactly, with or without <>. --since/--until bound the\n"
      "Date header. Give at least one of these.\n\n"
      "Examples:\n"
      "  mailvault find -r /srv/repo --message-id '<CAF1234@mail.example.com>'\n"
      "  mailvault find -r /srv/repo --mailbox bob@example.org --subject invoice --since "
      "2026-10-01\n"
      "  mailvault find -r /srv/repo --from alice@example.org --json\n\n"
      "Exit: 0 found, 1 nothing found (or an error), 2 usage.");
  AddRepoOption(sub, ctx);
  auto q = std::make_shared<FindQuery>();
  auto since = std::make_shared<std::string>(), until = std::make_shared<std::string>();
  sub->add_option("--mailbox", q->mailbox, "Only this mailbox (alice@example.org)");
  sub->add_option("--folder", q->folder, "Only this folder (INBOX, .Sent or Sent, ...)");
  sub->add_option("--message-id", q->message_id, "Exactly this Message-ID, with or without <>");
  sub->add_option("--from", q->from, "From contains this text (case-insensitive)");
  sub->add_option("--to", q->to, "To or Cc contains this text (case-insensitive)");
  sub->add_option("--subject", q->subject, "Subject contains this text (case-insensitive)");
  sub->add_option("--since", *since, "Date header at or after this date (2026-11-01)");
  sub->add_option("--until", *until, "Date header at or before this date (2026-11-30 23:59:59)");
  auto filter = std::make_shared<retention::SnapshotFilter>();
  AddSnapshotFilterOptions(sub, filter.get());
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, q, since, until, filter] {
    if (!since->empty()) {
      auto t = ParseTimeArg("--since", *since, true);
      if (!t.ok()) return void(ctx.exit_code = ReportError(ctx, t.status()));
      q->since = *t / 1000000000LL;
    }
    if (!until->empty()) {
      auto t = ParseTimeArg("--until", *until, true);
      if (!t.ok()) return void(ctx.exit_code = ReportError(ctx, t.status()));
      q->until = *t / 1000000000LL;
    }
    if (!q->HasHeaderFilter())
      return void(ctx.exit_code = ReportError(
                      ctx, Status::Invalid("give at least one of --message-id, --from, --to, "
                                           "--subject, --since, --until (to list a folder: "
                                           "`mailvault ls`; its history: `mailvault history`)")));
    q->folder = mailfiles::FolderArg(q->folder);
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    auto snaps = Selected(*repo, *filter);
    if (!snaps.ok()) return void(ctx.exit_code = ReportError(ctx, snaps.status()));
    ProgressPrinter pp(ctx);
    auto res = FindMail(*repo, *snaps, *q, pp.fn());
    pp.Done();
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    for (const auto& d : res->damaged) std::cerr << "mailvault: warning: " << d << "\n";
    if (ctx.json) {
      // Written a message at a time, as one json document would print (keys sorted): a broad
      // search finds tens of thousands, and their document costs several times their text.
      std::cout << "{\"damaged\":" << Dump(res->damaged) << ",\"indexed\":" << res->indexed
                << ",\"messages\":[";
      for (size_t i = 0; i < res->messages.size(); i++)
        std::cout << (i ? "," : "") << Dump(FoundJson(res->messages[i]));
      std::cout << "],\"snapshots_searched\":" << res->snapshots_searched << "}" << std::endl;
    } else {
      for (const auto& m : res->messages) PrintFoundHuman(m, true);
      std::cout << res->messages.size() << " message(s) found in " << res->snapshots_searched
                << " snapshot(s); the header index knows " << res->indexed << " message(s)\n";
      if (res->indexed == 0)
        std::cout << "the header index is empty: run `mailvault index-headers` once for "
                     "snapshots written before it existed\n";
    }
    ctx.exit_code = res->messages.empty() ? kExitError : kExitOk;
  });
}

void RegisterHistoryCmd(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "history", "A mailbox's folders, messages and bytes across snapshots; what disappeared");
  sub->footer(
      "Without --diff: one line per snapshot holding the mailbox, with each folder's message\n"
      "count and size (from the census each snapshot records: no tree or message is read).\n"
      "With --diff A B: the mailbox's messages in snapshot A whose content is in no folder of it\n"
      "in snapshot B (deleted, or changed, between the two), with their headers when indexed,\n"
      "and how many appeared.\n\n"
      "Examples:\n"
      "  mailvault history -r /srv/repo --mailbox alice@example.org\n"
      "  mailvault history -r /srv/repo --mailbox alice@example.org --diff 1a2b3c4d latest "
      "--json\n\n"
      "Exit: 0 ok, 1 error (the mailbox is in no snapshot), 2 usage.");
  AddRepoOption(sub, ctx);
  auto mailbox = std::make_shared<std::string>();
  auto diff = std::make_shared<std::vector<std::string>>();
  sub->add_option("--mailbox", *mailbox, "The mailbox (alice@example.org)")->required();
  sub->add_option("--diff", *diff, "Two snapshots A B: what A's mailbox had that B's lacks")
      ->expected(2);
  auto filter = std::make_shared<retention::SnapshotFilter>();
  AddSnapshotFilterOptions(sub, filter.get());
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, mailbox, diff, filter] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    if (!diff->empty()) {
      std::string a = ResolveOrReport(ctx, *repo, (*diff)[0], *filter);
      if (a.empty()) return;
      std::string b = ResolveOrReport(ctx, *repo, (*diff)[1], *filter);
      if (b.empty()) return;
      auto all = repo->ListSnapshots();
      if (!all.ok()) return void(ctx.exit_code = ReportError(ctx, all.status()));
      const storage::SnapshotMeta *ma = nullptr, *mb = nullptr;
      for (const auto& m : *all) {
        if (m.id == a) ma = &m;
        if (m.id == b) mb = &m;
      }
      if (!ma || !mb)
        return void(ctx.exit_code = ReportError(
                        ctx, Status::NotFound("snapshot " + (!ma ? a : b) + " cannot be read")));
      auto d = MailboxDiff(*repo, *mailbox, *ma, *mb);
      if (!d.ok()) return void(ctx.exit_code = ReportError(ctx, d.status()));
      if (ctx.json) {
        nlohmann::json j = {{"mailbox", *mailbox},
                            {"a", a},
                            {"b", b},
                            {"appeared", d->appeared},
                            {"disappeared", nlohmann::json::array()}};
        for (const auto& m : d->messages) j["disappeared"].push_back(FoundJson(m));
        PrintJson(j);
      } else {
        for (const auto& m : d->messages) PrintFoundHuman(m, false);
        std::cout << d->messages.size() << " message(s) of " << *mailbox << " in " << Short(a)
                  << " (" << HumanTime(ma->time) << ") are not in " << Short(b) << " ("
                  << HumanTime(mb->time) << "); " << d->appeared << " appeared\n";
        if (!d->messages.empty())
          std::cout << "bring them back: mailvault restore --snapshot " << Short(a) << " --mailbox "
                    << *mailbox << " --into-folder NAME [--folder F]\n";
      }
      return;
    }
    auto snaps = Selected(*repo, *filter);
    if (!snaps.ok()) return void(ctx.exit_code = ReportError(ctx, snaps.status()));
    std::sort(snaps->begin(), snaps->end(),
              [](const auto& x, const auto& y) { return x.time_ns < y.time_ns; });
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& s : *snaps) {
      nlohmann::json folders = nlohmann::json::array();
      uint64_t n = 0, bytes = 0;
      for (const auto& c : s.census)
        if (c.mailbox == *mailbox) {
          folders.push_back({{"folder", c.folder}, {"messages", c.messages}, {"bytes", c.bytes}});
          n += c.messages;
          bytes += c.bytes;
        }
      if (folders.empty()) continue;
      rows.push_back({{"snapshot", s.id},
                      {"time", s.time},
                      {"messages", n},
                      {"bytes", bytes},
                      {"folders", folders}});
    }
    if (rows.empty())
      return void(
          ctx.exit_code = ReportError(
              ctx, Status::NotFound("mailbox " + *mailbox + " is in no snapshot" +
                                    (filter->empty() ? "" : " matching " + filter->Describe()))));
    if (ctx.json) {
      PrintJson({{"mailbox", *mailbox}, {"snapshots", rows}});
      return;
    }
    for (const auto& r : rows) {
      std::cout << Short(r["snapshot"]) << "  " << HumanTime(r["time"]) << "  "
                << r["messages"].get<uint64_t>() << " messages, "
                << HumanBytes(r["bytes"].get<uint64_t>()) << ":";
      for (const auto& f : r["folders"])
        std::cout << "  " << f["folder"].get<std::string>() << " " << f["messages"].get<uint64_t>();
      std::cout << "\n";
    }
  });
}

void RegisterIndexHeadersCmd(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand(
      "index-headers", "Index the headers of messages in snapshots written before format 8");
  sub->footer(
      "Backups since format version 8 record the Date, From, To, Subject and Message-ID of the\n"
      "messages they read, for `mailvault find`. This reads, once, every message of every\n"
      "snapshot that the index does not know yet (the first blob of each, pack by pack) and\n"
      "records its headers. Run it once after upgrading; running it again reads nothing new.\n"
      "It only adds files; backups may run meanwhile.\n\n"
      "Example:\n"
      "  mailvault index-headers -r /srv/repo\n\n"
      "Exit: 0 ok, 1 error, 3 partial (some messages could not be read; listed).");
  AddRepoOption(sub, ctx);
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    ProgressPrinter pp(ctx);
    auto res = IndexHeaders(*repo, pp.fn());
    pp.Done();
    if (!res.ok()) return void(ctx.exit_code = ReportError(ctx, res.status()));
    for (const auto& p : res->problems) std::cerr << "mailvault: " << p << "\n";
    if (ctx.json)
      PrintJson({{"messages", res->messages_seen},
                 {"already_indexed", res->already},
                 {"indexed", res->indexed},
                 {"unreadable", res->unreadable},
                 {"problems", res->problems}});
    else
      std::cout << "indexed the headers of " << res->indexed << " message(s); " << res->already
                << " of the " << res->messages_seen
                << " distinct messages in the snapshots were indexed already"
                << (res->unreadable ? "; " + std::to_string(res->unreadable) + " unreadable" : "")
                << "\n";
    ctx.exit_code = res->unreadable ? kExitPartial : kExitOk;
  });
}

}  // namespace

void RegisterFind(CLI::App& app, CliContext& ctx) {
  RegisterFindCmd(app, ctx);
  RegisterHistoryCmd(app, ctx);
  RegisterIndexHeadersCmd(app, ctx);
}

}  // namespace mv::agent
