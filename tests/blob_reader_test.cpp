// The narrow read side of a repository (storage/blob_reader.h) and its names (storage/layout.h).
// A reader comes only from Repository::OpenBlobReader(), which loads the index: there is no
// call order under which a lookup runs against an index that was never read (before, index()
// on a freshly opened repository answered every lookup with "not there").
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/restorer/restore.h"
#include "storage/layout.h"
#include "storage/repository.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

class BlobReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(src_ / "mail/a@example.org/cur/1700000000.M1P1.host,S=12:2,S", "hello alice\n", 0600);
    WriteFile(src_ / "mail/b@example.org/cur/1700000001.M2P2.host,S=10:2,", "hello bob\n", 0600);
    ASSERT_EQ(RunMailvault({"init", "--repo", repo_.path()}).exit_code, 0);
    RunResult b =
        RunMailvault({"backup", "--repo", repo_.path(), "--source", "vol=" + src_.path()});
    ASSERT_EQ(b.exit_code, 0) << b.err;
  }
  std::unique_ptr<storage::Repository> Open() {
    auto r = storage::Repository::Open(repo_.path());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  TempDir src_{"mvblobs-src"}, repo_{"mvblobs-repo"};
};

TEST_F(BlobReaderTest, AReaderFromAFreshlyOpenedRepositoryFindsEveryBlobWithoutAnotherCall) {
  auto repo = Open();
  ASSERT_TRUE(repo);
  auto blobs = repo->OpenBlobReader();  // the only call: it loads the index itself
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  auto ids = (*blobs)->SnapshotIds();
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 1u);
  auto snap = (*blobs)->LoadSnapshot(ids->front());
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  size_t files = 0;
  for (const auto& f : snap->files) {
    if (f.type != storage::FileType::kRegular) continue;
    files++;
    ASSERT_EQ(f.blobs.size(), 1u) << f.path;
    auto loc = (*blobs)->Find(f.blobs[0]);
    ASSERT_TRUE(loc.has_value()) << f.path << ": the reader's index is empty";
    EXPECT_TRUE(stdfs::exists((*blobs)->PackPath(loc->pack))) << f.path;
    auto data = (*blobs)->ReadBlob(f.blobs[0]);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    EXPECT_EQ(*data, ReadFile(src_.path() + "/" + f.path.substr(f.path.find('/') + 1))) << f.path;
  }
  EXPECT_EQ(files, 2u);
  EXPECT_FALSE((*blobs)->index_damaged());
}

TEST_F(BlobReaderTest, RestoreThroughAFreshReaderWritesEveryFile) {
  auto repo = Open();
  ASSERT_TRUE(repo);
  auto blobs = repo->OpenBlobReader();
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  TempDir out("mvblobs-out");
  agent::RestoreOptions o;
  o.snapshot = (*blobs)->SnapshotIds()->front();
  o.target = out.path();
  auto res = agent::RunRestore(**blobs, o);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_TRUE(res->problems.empty()) << res->problems.front().message;
  EXPECT_EQ(res->stats.files_written, 2u);
  EXPECT_EQ(DiffTrees(ListTree(src_.path()), ListTree(out.path() + "/vol")), "");
}

TEST_F(BlobReaderTest, ADamagedIndexFileIsReportedAndItsBlobsAreStillFound) {
  for (const auto& n : stdfs::directory_iterator(storage::layout::IndexDir(repo_.path())))
    WriteFile(n.path(), "not an index file");
  auto repo = Open();
  ASSERT_TRUE(repo);
  auto blobs = repo->OpenBlobReader();
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  EXPECT_TRUE((*blobs)->index_damaged());
  EXPECT_EQ(repo->damaged_index_files().size(), 1u);
  auto snap = (*blobs)->LoadSnapshot((*blobs)->SnapshotIds()->front());
  ASSERT_TRUE(snap.ok());
  for (const auto& f : snap->files)
    for (const auto& b : f.blobs)
      EXPECT_TRUE((*blobs)->ReadBlob(b).ok()) << f.path;  // its pack, re-listed
}

TEST(RepositoryLayout, NamesFollowFormatSection1) {
  storage::BlobId id;
  ASSERT_TRUE(storage::BlobId::FromHex("ab0123456789abcdef0123456789abcd", &id));
  EXPECT_EQ(storage::layout::PackFile("/r", id),
            "/r/packs/ab/ab0123456789abcdef0123456789abcd.tar.zst");
  storage::BlobId parsed;
  EXPECT_TRUE(storage::layout::ParsePackName("ab0123456789abcdef0123456789abcd.tar.zst", &parsed));
  EXPECT_EQ(parsed, id);
  EXPECT_FALSE(storage::layout::ParsePackName("ab0123456789abcdef0123456789abcd.tar", &parsed));
  EXPECT_EQ(storage::layout::ConfigFile("/r"), "/r/config");
  EXPECT_EQ(storage::layout::KeyFile("/r/"), "/r/keys/default");
  EXPECT_EQ(storage::layout::SnapshotFile("/r", "x"), "/r/snapshots/x");
  EXPECT_EQ(storage::layout::IndexFile("/r", "y"), "/r/index/y");
  EXPECT_EQ(storage::layout::ExclusiveLockFile("/r"), "/r/locks/exclusive");
  EXPECT_EQ(storage::layout::TmpDir("/r"), "/r/tmp");
  EXPECT_TRUE(storage::layout::IsTempName(storage::layout::TempNameFor("config", "abc123")));
  EXPECT_FALSE(storage::layout::IsTempName("0123456789abcdef0123456789abcdef"));
}

}  // namespace
}  // namespace mv::testing
