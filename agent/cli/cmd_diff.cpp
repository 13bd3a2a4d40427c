#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/cli/snapshot_ref.h"
#include "storage/mailfiles/maildir.h"

namespace mv::agent {
namespace {

struct DiffOut {
  std::vector<std::string> added, removed, modified, meta;
  std::vector<std::pair<std::string, std::string>> renamed;  // Maildir flag changes / moves
};

DiffOut Diff(const storage::Snapshot& a, const storage::Snapshot& b) {
  std::unordered_map<std::string_view, const storage::FileEntry*> in_a;
  for (const auto& e : a.files) in_a.emplace(e.path, &e);
  std::unordered_map<std::string_view, const storage::FileEntry*> in_b;
  for (const auto& e : b.files) in_b.emplace(e.path, &e);
  DiffOut d;
  for (const auto& e : b.files) {
    auto it = in_a.find(e.path);
    if (it == in_a.end()) {
      d.added.push_back(e.path);
      continue;
    }
    const auto* o = it->second;
    if (o->type != e.type || o->content != e.content || o->link_target != e.link_target)
      d.modified.push_back(e.path);
    else if (o->mode != e.mode || o->uid != e.uid || o->gid != e.gid ||
             (e.type == storage::FileType::kRegular && o->mtime_ns != e.mtime_ns))
      d.meta.push_back(e.path);
  }
  for (const auto& e : a.files)
    if (!in_b.count(e.path)) d.removed.push_back(e.path);
  // Pair removed/added Maildir messages with the same unique name and content: renames.
  std::multimap<std::pair<std::string, storage::BlobId>, std::string> gone;
  for (const auto& p : d.removed) {
    const auto* e = in_a.at(p);
    if (e->type == storage::FileType::kRegular)
      gone.emplace(
          std::make_pair(std::string(mailfiles::UniqueName(p.substr(p.find_last_of('/') + 1))),
                         e->content),
          p);
  }
  std::vector<std::string> added, removed_left;
  std::set<std::string> matched;
  for (const auto& p : d.added) {
    const auto* e = in_b.at(p);
    auto key = std::make_pair(std::string(mailfiles::UniqueName(p.substr(p.find_last_of('/') + 1))),
                              e->content);
    auto it = e->type == storage::FileType::kRegular ? gone.find(key) : gone.end();
    if (it != gone.end()) {
      d.renamed.emplace_back(it->second, p);
      matched.insert(it->second);
      gone.erase(it);
    } else {
      added.push_back(p);
    }
  }
  for (const auto& p : d.removed)
    if (!matched.count(p)) removed_left.push_back(p);
  d.added = std::move(added);
  d.removed = std::move(removed_left);
  return d;
}

}  // namespace

void RegisterDiff(CLI::App& app, CliContext& ctx) {
  auto* sub = app.add_subcommand("diff", "Show what changed between two snapshots");
  sub->footer(
      "Compare two snapshots: files added (+), removed (-), content changed (M),\n"
      "metadata changed (m), and Maildir messages renamed or moved (R: same unique\n"
      "name and content, e.g. a flag change), then message counts per folder.\n\n" +
      std::string(kLatestHelp));
  AddRepoOption(sub, ctx);
  auto ids = std::make_shared<std::vector<std::string>>();
  sub->add_option("snapshots", *ids, "SNAP_A SNAP_B (IDs, prefixes or 'latest')")
      ->expected(2)
      ->required();
  auto filter = std::make_shared<retention::SnapshotFilter>();
  AddSnapshotFilterOptions(sub, filter.get());
  AddOutputOptions(sub, ctx);
  sub->callback([&ctx, ids, filter] {
    auto repo = OpenRepoOrReport(ctx);
    if (!repo) return;
    std::string a = ResolveOrReport(ctx, *repo, (*ids)[0], *filter);
    if (a.empty()) return;
    std::string b = ResolveOrReport(ctx, *repo, (*ids)[1], *filter);
    if (b.empty()) return;
    auto sa = repo->LoadSnapshot(a);
    if (!sa.ok()) return void(ctx.exit_code = ReportError(ctx, sa.status()));
    auto sb = repo->LoadSnapshot(b);
    if (!sb.ok()) return void(ctx.exit_code = ReportError(ctx, sb.status()));
    DiffOut d = Diff(*sa, *sb);
    std::map<std::string, std::pair<int64_t, int64_t>> census;  // folder -> (a, b)
    for (const auto& c : sa->meta.census)
      census[c.source + "/" + c.mailbox + "/" + c.folder].first = static_cast<int64_t>(c.messages);
    for (const auto& c : sb->meta.census)
      census[c.source + "/" + c.mailbox + "/" + c.folder].second = static_cast<int64_t>(c.messages);
    if (ctx.json) {
      nlohmann::json j = {{"from", a},
                          {"to", b},
                          {"added", d.added},
                          {"removed", d.removed},
                          {"modified", d.modified},
                          {"metadata", d.meta},
                          {"renamed", nlohmann::json::array()},
                          {"folders", nlohmann::json::array()}};
      for (const auto& [f, t] : d.renamed) j["renamed"].push_back({{"from", f}, {"to", t}});
      for (const auto& [k, v] : census)
        if (v.first != v.second)
          j["folders"].push_back({{"folder", k}, {"from", v.first}, {"to", v.second}});
      return PrintJson(j);
    }
    for (const auto& p : d.added) std::printf("+ %s\n", p.c_str());
    for (const auto& p : d.removed) std::printf("- %s\n", p.c_str());
    for (const auto& p : d.modified) std::printf("M %s\n", p.c_str());
    for (const auto& p : d.meta) std::printf("m %s\n", p.c_str());
    for (const auto& [f, t] : d.renamed) std::printf("R %s -> %s\n", f.c_str(), t.c_str());
    for (const auto& [k, v] : census)
      if (v.first != v.second)
        std::printf("folder %s: %lld -> %lld messages\n", k.c_str(),
                    static_cast<long long>(v.first), static_cast<long long>(v.second));
    std::printf("%zu added, %zu removed, %zu modified, %zu metadata, %zu renamed\n", d.added.size(),
                d.removed.size(), d.modified.size(), d.meta.size(), d.renamed.size());
  });
}

}  // namespace mv::agent
