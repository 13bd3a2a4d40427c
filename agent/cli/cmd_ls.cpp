#include <cstdio>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"

namespace mv::agent {

void RegisterLs(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("ls", "List the files of a snapshot");
  sub->footer(
      "List the entries of a snapshot under PATH (default: everything). Paths start\n"
      "with the source name: `mailvault ls --snapshot latest mail/alice@example.org`.\n\n" +
      std::string(kLatestHelp));
  AddRepoOption(sub, ctx);
  auto snap = std::make_shared<std::string>("latest");
  auto path = std::make_shared<std::string>();
  sub->add_option("--snapshot", *snap, "Snapshot ID, unique prefix, or 'latest' (default)");
  sub->add_option("path", *path, "Only entries at or below this path");
  auto filter = std::make_shared<retention::SnapshotFilter>();
  AddSnapshotFilterOptions(sub, filter.get());
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, snap, path, filter] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    std::string id = ResolveOrReport(ctx, *repo, *snap, *filter);
    if (id.empty()) return;
    auto s = repo->LoadSnapshot(id);
    if (!s.ok()) return void(ctx.exit_code = ReportError(ctx, s.status()));
    std::string p = *path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    nlohmann::json arr = nlohmann::json::array();
    size_t n = 0;
    for (const auto& e : s->files) {
      if (!p.empty() && e.path != p &&
          !(e.path.size() > p.size() && e.path.compare(0, p.size(), p) == 0 &&
            e.path[p.size()] == '/'))
        continue;
      n++;
      if (ctx.json) {
        nlohmann::json j = {{"path", e.path},
                            {"type", e.type == storage::FileType::kDirectory ? "dir"
                                     : e.type == storage::FileType::kSymlink ? "symlink"
                                                                             : "file"},
                            {"mode", e.mode},
                            {"uid", e.uid},
                            {"gid", e.gid},
                            {"size", e.size},
                            {"mtime_ns", e.mtime_ns}};
        if (e.type == storage::FileType::kSymlink) j["target"] = e.link_target;
        if (e.type == storage::FileType::kRegular) j["content"] = e.content.Hex();
        if (e.flags & storage::kFlagSqlite) j["sqlite"] = true;
        if (e.flags & storage::kFlagSqliteRaw) j["sqlite_raw"] = true;
        if (e.flags & storage::kFlagHardLink) j["hardlink_to"] = e.link_target;
        if (e.flags & storage::kFlagChangedWhileRead) j["changed_while_read"] = true;
        for (const auto& x : e.xattrs) j["xattrs"].push_back(x.name);
        arr.push_back(j);
        continue;
      }
      std::string note = e.type == storage::FileType::kSymlink ? " -> " + e.link_target
                         : (e.flags & storage::kFlagHardLink)
                             ? "  [hard link to " + e.link_target + "]"
                             : "";
      if (e.flags & storage::kFlagSqlite) note += "  [sqlite image]";
      if (e.flags & storage::kFlagSqliteRaw) note += "  [raw copy: SQLite could not open it]";
      std::printf("%s %5u %5u %12llu  %s  %s%s\n", ModeString(e).c_str(), e.uid, e.gid,
                  static_cast<unsigned long long>(e.size),
                  HumanTime(e.mtime_ns / 1000000000).c_str(), e.path.c_str(), note.c_str());
    }
    if (ctx.json) return PrintJson(arr);
    if (n == 0 && !p.empty()) {
      ctx.exit_code = ReportError(
          ctx, Status::NotFound("nothing at '" + p + "' in snapshot " + id.substr(0, 8)));
    }
  });
}

}  // namespace mv::agent
