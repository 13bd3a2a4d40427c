// Restore never writes outside --target, whatever a manifest says ('..',
// absolute paths, empty components, symlink-then-file tricks) and whatever symlinks someone
// planted in the target. Through the real binary; the crafted manifest is committed with the
// storage API, after a real backup so that its blobs exist.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "storage/repository.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class RestoreTraversal : public RepoTest {};

TEST_F(RestoreTraversal, RefusesEveryPathThatWouldLeaveTheTargetAndRestoresTheRest) {
  WriteFile(vol_ / "mail/good", "a real message\n");
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  auto opened = storage::Repository::Open(repo());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  storage::Repository& r0 = **opened;
  auto real = r0.LoadSnapshot(r0.ResolveSnapshot("latest").value());
  ASSERT_TRUE(real.ok());
  storage::FileEntry dir, good;
  for (const auto& f : real->files)
    (f.path == "mail" ? dir : f.path == "mail/good" ? good : dir) = f;
  ASSERT_EQ(good.path, "mail/good");

  TempDir outside("mvbad-outside");
  std::string evil2 = "/tmp/evil2";  // where mail/link2 -> / plus tmp/evil2 would land
  ::unlink(evil2.c_str());
  auto file = [&](const std::string& p) {
    storage::FileEntry e = good;
    e.path = p;
    return e;
  };
  auto link = [&](const std::string& p, const std::string& target) {
    storage::FileEntry e = dir;
    e.path = p;
    e.type = storage::FileType::kSymlink;
    e.link_target = target;
    return e;
  };
  storage::Snapshot crafted;
  crafted.meta = real->meta;
  crafted.meta.id.clear();
  crafted.meta.time_ns += 1000;
  // In manifest order (sorted bytewise): each symlink comes before the file written through it.
  crafted.files = {file("../escape3"),
                   file("/abs/path"),
                   dir,
                   file("mail/../../escape"),
                   file("mail/./x"),
                   file("mail//empty"),
                   good,
                   link("mail/link", outside.path()),
                   file("mail/link/evil"),
                   link("mail/link2", "/"),
                   file("mail/link2/tmp/evil2")};
  ASSERT_TRUE(r0.CommitSnapshot(crafted).ok());

  std::string target = out_ / "t";
  RunResult r = Restore(crafted.meta.id, target);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto report = Json(r);
  std::map<std::string, std::string> problems;
  for (const auto& p : report["problems"]) problems[p["path"].get<std::string>()] = p["message"];
  for (const char* bad : {"../escape3", "/abs/path", "mail/../../escape", "mail/./x", "mail//empty",
                          "mail/link/evil", "mail/link2/tmp/evil2"}) {
    ASSERT_TRUE(problems.count(bad)) << bad << " not reported; problems: " << report["problems"];
    EXPECT_EQ(problems[bad].rfind("refused", 0), 0u) << bad << ": " << problems[bad];
  }
  EXPECT_EQ(problems.size(), 7u) << report["problems"];
  // Nothing outside the target: not beside it, not through either symlink.
  EXPECT_EQ(ListTree(out_.path()).count("escape"), 0u);
  EXPECT_EQ(std::distance(stdfs::directory_iterator(out_.path()), {}), 1)
      << "only the target itself";
  EXPECT_TRUE(ListTree(outside.path()).empty());
  EXPECT_FALSE(stdfs::exists(evil2));
  EXPECT_FALSE(stdfs::exists("/abs/path"));
  // The good entries are restored, the symlinks as symlinks.
  EXPECT_EQ(ReadFile(target + "/mail/good"), "a real message\n");
  EXPECT_EQ(stdfs::read_symlink(target + "/mail/link"), outside.path());
  EXPECT_EQ(stdfs::read_symlink(target + "/mail/link2"), "/");
  EXPECT_EQ(report["files_written"], 1);
}

TEST_F(RestoreTraversal, NeverFollowsASymlinkPlantedInTheTarget) {
  MakeMailVolume(vol_.path(), {.users = 1, .messages_per_user = 8, .seed = 4});
  ASSERT_EQ(Backup("mail=" + vol_ / "mail").exit_code, 0);
  TempDir outside("mvbad-outside");
  // Where a source goes: the whole restore is refused before anything is written.
  std::string t1 = out_ / "t1", t2 = out_ / "t2";
  stdfs::create_directories(t1);
  stdfs::create_directory_symlink(outside.path(), t1 + "/mail");
  RunResult r = RunMailvault({"restore", "--repo", repo(), "--snapshot", "latest", "--target", t1});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(t1 + "/mail: refused: this is a symlink"), std::string::npos) << r.err;
  // Where a mailbox goes: that mailbox is refused, entry by entry; nothing lands outside.
  stdfs::create_directories(t2 + "/mail");
  stdfs::create_directory_symlink(outside.path(), t2 + "/mail/user0@example.org");
  r = Restore("latest", t2);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto report = Json(r);
  size_t refused = 0;
  for (const auto& p : report["problems"])
    refused += p["message"].get<std::string>().starts_with("refused");
  size_t below = 0;
  for (const auto& e :
       Json(RunMailvault({"ls", "--repo", repo(), "--json", "mail/user0@example.org"})))
    below += e["path"] != "mail/user0@example.org";
  EXPECT_GT(below, 8u);
  EXPECT_EQ(refused, below) << "every entry below the symlink: " << report["problems"];
  EXPECT_EQ(report["problems"].size(), below + 1) << "and the symlink itself is kept, not replaced";
  EXPECT_TRUE(ListTree(outside.path()).empty());
  EXPECT_EQ(report["files_written"], 0);
}

}  // namespace
}  // namespace mv::testing
