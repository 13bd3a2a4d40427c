// Packs as zstd frames with a seek table (docs/FORMAT.md §5.1, format version 6): what the
// writer produces, that stock tools still read it, and that a reader of a few blobs fetches only
// their frames, with the fallbacks for packs without a table and the check against an index that
// does not match its pack. The byte counts against a real S3 engine are in s3_repo_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "storage/local_backend.h"
#include "storage/pack.h"
#include "test_util.h"

namespace mv::testing {
namespace {

using storage::Backend;
using storage::BlobId;
using storage::PackEntry;
using storage::PackFrame;
using storage::PackInfo;

// The local backend, counting the bytes read by range (what a remote backend would download).
class CountingBackend final : public Backend {
 public:
  explicit CountingBackend(const std::string& root) : in_(root) {}
  std::string Describe(std::string_view rel = {}) const override { return in_.Describe(rel); }
  const std::string& local_root() const override { return in_.local_root(); }
  std::string ScratchDir() const override { return in_.ScratchDir(); }
  Status Create() override { return in_.Create(); }
  Result<std::vector<storage::ObjectInfo>> List(const std::string& d) const override {
    return in_.List(d);
  }
  Result<std::string> Read(const std::string& n) const override { return in_.Read(n); }
  Result<std::unique_ptr<storage::ObjectReader>> OpenReader(const std::string& n) const override {
    whole_reads++;
    return in_.OpenReader(n);
  }
  Result<std::string> ReadAt(const std::string& n, uint64_t off, uint64_t len) const override {
    range_reads++;
    range_bytes += len;
    return in_.ReadAt(n, off, len);
  }
  Result<uint64_t> Size(const std::string& n) const override { return in_.Size(n); }
  Status Put(const std::string& n, std::string_view d) override { return in_.Put(n, d); }
  Status PutFile(const std::string& p, const std::string& n) override { return in_.PutFile(p, n); }
  Status SyncDir(const std::string& d) override { return in_.SyncDir(d); }
  Status Overwrite(const std::string& n, std::string_view d) override {
    return in_.Overwrite(n, d);
  }
  Status Delete(const std::string& n) override { return in_.Delete(n); }
  Result<std::unique_ptr<storage::HeldLock>> LockExclusive(const std::string& purpose,
                                                           const storage::LockWait& wait,
                                                           std::string* stale) override {
    return in_.LockExclusive(purpose, wait, stale);
  }

  mutable std::atomic<uint64_t> range_reads{0}, range_bytes{0}, whole_reads{0};

 private:
  storage::LocalBackend in_;
};

// Text-like blobs (words from a small vocabulary), so they compress about as mail does.
std::string TextBlob(uint32_t seed, size_t len) {
  static const char* kWords[] = {
      "mail ",     "backup ",    "restore ", "the ",   "of ",   "dovecot ",
      "Subject: ", "Received: ", "from ",    "alice ", "bob\n", "=20\n"};
  std::string s;
  uint32_t x = seed * 2654435761u + 1;
  while (s.size() < len) {
    x = x * 1664525u + 1013904223u;
    s += kWords[(x >> 16) % 12];
    s += std::to_string(x % 1000);
  }
  s.resize(len);
  return s;
}

class PackFrames : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(backend_.Create().ok());
    auto w = storage::PackWriter::Create(backend_.ScratchDir(), 3);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (uint32_t i = 0; i < 400; i++) {
      blobs_.push_back(TextBlob(i, 6000 + (i * 7919) % 20000));
      BlobId id = hasher_.Hash(blobs_.back().data(), blobs_.back().size());
      ASSERT_TRUE((*w)->Add(id, blobs_.back().data(), blobs_.back().size()).ok());
    }
    auto info = (*w)->Finish(backend_);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    info_ = *info;
    path_ = backend_.Describe(storage::PackRelPath(info_.pack_id));
  }

  // The blobs of entries `ks` through ReadPackFrames, in the order delivered.
  std::vector<std::pair<size_t, std::string>> ReadSome(const std::vector<size_t>& ks, bool* whole,
                                                       Status* st, const PackInfo* info = nullptr) {
    if (!info) info = &info_;
    std::vector<bool> sel(info->entries.size());
    for (size_t k : ks) sel[k] = true;
    std::vector<std::pair<size_t, std::string>> got;
    *st = storage::ReadPackFrames(
        backend_, path_, *info, sel,
        [&](const BlobId& id, std::string_view data) {
          size_t k = 0;
          while (k < info->entries.size() && info->entries[k].id != id) k++;
          got.emplace_back(k, std::string(data));
          return true;
        },
        whole);
    return got;
  }

  TempDir dir_{"mvframes"};
  CountingBackend backend_{dir_.path()};
  storage::KeyedHasher hasher_{std::string(192, 'k')};
  std::vector<std::string> blobs_;
  PackInfo info_;
  std::string path_;
};

TEST_F(PackFrames, APackIsFramesOfAbout128KiBOfTarWithASeekTableThatAddsUpToTheFile) {
  std::string file = ReadFile(path_);
  ASSERT_EQ(file.size(), info_.file_size);
  uint64_t table = 0;
  std::vector<PackFrame> frames = storage::ParseSeekTable(file, &table);
  ASSERT_GT(frames.size(), 10u) << "a pack of " << info_.entries.size() << " blobs";
  uint64_t comp = 0, raw = 0;
  for (size_t i = 0; i < frames.size(); i++) {
    comp += frames[i].compressed;
    raw += frames[i].raw;
    if (i + 1 < frames.size()) {
      EXPECT_GE(frames[i].raw, storage::kPackFrameTarget) << "frame " << i;
      EXPECT_LT(frames[i].raw, storage::kPackFrameTarget + 27000) << "frame " << i;
    }
  }
  EXPECT_EQ(comp + table, file.size());
  const PackEntry& last = info_.entries.back();
  EXPECT_GE(raw, last.offset + last.length) << "the frames hold the whole tar";
  EXPECT_LT(comp, raw / 2) << "text-like blobs still compress";
}

TEST_F(PackFrames, StockToolsReadAFramedPackAsBefore) {
  RunResult t = Shell("tar --zstd -tf '" + path_ + "' | wc -l");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(std::stoul(t.out), info_.entries.size());
  TempDir x("mvframes-x");
  ASSERT_EQ(Shell("cd '" + x.path() + "' && tar --zstd -xf '" + path_ + "'").exit_code, 0);
  EXPECT_EQ(ReadFile(x.path() + "/" + info_.entries[123].id.Hex()), blobs_[123]);
  RunResult z = Shell("zstd -t -q '" + path_ + "'");
  EXPECT_EQ(z.exit_code, 0) << z.err;
  // libarchive (what check and prune read packs with) lists the same entries.
  auto listed = storage::ListPack(path_, info_.pack_id);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->entries.size(), info_.entries.size());
  for (size_t k = 0; k < info_.entries.size(); k++) {
    EXPECT_EQ(listed->entries[k].id, info_.entries[k].id);
    EXPECT_EQ(listed->entries[k].offset, info_.entries[k].offset);
  }
  EXPECT_EQ(listed->file_size, info_.file_size);
}

TEST_F(PackFrames, ReadingTwoBlobsFetchesOnlyTheirFramesAndTheTable) {
  bool whole = true;
  Status st;
  auto got = ReadSome({10, 300}, &whole, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_FALSE(whole);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, 10u);
  EXPECT_EQ(got[0].second, blobs_[10]);
  EXPECT_EQ(got[1].first, 300u);
  EXPECT_EQ(got[1].second, blobs_[300]);
  // The table's tail and at most two frames per blob, each at most ~150 KiB of tar compressed.
  EXPECT_EQ(backend_.range_reads.load(), 3u) << "the tail, then one run per blob";
  EXPECT_LT(backend_.range_bytes.load(), info_.file_size / 4)
      << "of a " << info_.file_size << "-byte pack";
  EXPECT_EQ(backend_.whole_reads.load(), 0u);
}

TEST_F(PackFrames, MostOfThePackIsReadWholeInstead) {
  std::vector<size_t> ks;
  for (size_t k = 0; k < info_.entries.size(); k += 2) ks.push_back(k);
  bool whole = false;
  Status st;
  auto got = ReadSome(ks, &whole, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(whole) << "every frame is needed: one stream is cheaper";
  EXPECT_TRUE(got.empty()) << "nothing is delivered when the caller is to read it whole";
  // Every blob (a tree load, a full restore): read whole without fetching the table first.
  ks.clear();
  for (size_t k = 0; k < info_.entries.size(); k++) ks.push_back(k);
  uint64_t ranges = backend_.range_reads.load();
  got = ReadSome(ks, &whole, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(whole);
  EXPECT_EQ(backend_.range_reads.load(), ranges) << "no request before the whole read";
}

TEST_F(PackFrames, APackWithoutASeekTableIsReadWhole) {
  // A version-5 pack: the same tar as one zstd stream, no table.
  TempDir x("mvframes-old");
  ASSERT_EQ(Shell("cd '" + x.path() + "' && tar --zstd -xf '" + path_ +
                  "' && tar --format=ustar "
                  "-cf - $(tar --zstd -tf '" +
                  path_ + "') | zstd -q -3 > '" + path_ +
                  ".old' && "
                  "mv '" +
                  path_ + ".old' '" + path_ + "'")
                .exit_code,
            0);
  PackInfo old = info_;
  old.file_size = ReadFile(path_).size();
  uint64_t table = 0;
  EXPECT_TRUE(storage::ParseSeekTable(ReadFile(path_), &table).empty());
  bool whole = false;
  Status st;
  auto got = ReadSome({5}, &whole, &st, &old);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(whole);
  EXPECT_TRUE(got.empty());
}

TEST_F(PackFrames, AnIndexThatDoesNotMatchItsPackFailsInsteadOfHandingOutOtherBytes) {
  PackInfo wrong = info_;
  wrong.entries[200].offset = info_.entries[201].offset;  // blob 200's ID, blob 201's place
  bool whole = true;
  Status st;
  auto got = ReadSome({200}, &whole, &st, &wrong);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_NE(st.ToString().find("repair index"), std::string::npos) << st.ToString();
  EXPECT_NE(st.ToString().find(path_), std::string::npos) << "names the pack: " << st.ToString();
  EXPECT_TRUE(got.empty());
}

// Blobs larger than a frame, and a wanted run longer than one request fetches: each blob comes
// out whole and in order, though the reader holds one frame and the blob it is filling, and the
// run is fetched in pieces of at most 4 MiB compressed.
TEST_F(PackFrames, BlobsSpanningFramesAndARunLongerThanOneRequestComeOutWhole) {
  TempDir d("mvframes-big");
  CountingBackend backend(d.path());
  ASSERT_TRUE(backend.Create().ok());
  auto w = storage::PackWriter::Create(backend.ScratchDir(), 3);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<std::string> blobs;
  uint32_t x = 7;
  for (uint32_t i = 0; i < 40; i++) {  // noise compresses poorly: ~16 MiB of pack
    std::string b(i % 5 == 0 ? 1000 : 300000 + (i * 7919) % 400000, '\0');
    for (char& c : b) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
    blobs.push_back(std::move(b));
    BlobId id = hasher_.Hash(blobs.back().data(), blobs.back().size());
    ASSERT_TRUE((*w)->Add(id, blobs.back().data(), blobs.back().size()).ok());
  }
  auto info = (*w)->Finish(backend);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::vector<bool> sel(info->entries.size());
  std::vector<size_t> want;
  for (size_t k = 2; k < 25; k++) want.push_back(k);  // about half the pack, in one run
  for (size_t k : want) sel[k] = true;
  std::vector<std::string> got;
  bool whole = true;
  Status st = storage::ReadPackFrames(
      backend, backend.Describe(storage::PackRelPath(info->pack_id)), *info, sel,
      [&](const BlobId& id, std::string_view data) {
        EXPECT_EQ(id, info->entries[want[got.size()]].id);
        got.emplace_back(data);
        return true;
      },
      &whole);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_FALSE(whole);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); i++)
    EXPECT_TRUE(got[i] == blobs[want[i]]) << "blob " << want[i] << " differs";
  uint64_t data = backend.range_bytes.load();
  EXPECT_GT(data, 6u << 20) << "the wanted half of a " << info->file_size << "-byte pack";
  EXPECT_GE(backend.range_reads.load(), 1 + (data + (4u << 20) - 1) / (4u << 20))
      << "the tail, then the run in pieces of at most 4 MiB";
}

TEST(SeekTable, ATableLongerThanTheTailReadSaysHowLongItIs) {
  std::vector<PackFrame> frames(3000, PackFrame{40000, 131072});
  std::string t = storage::EncodeSeekTable(frames);
  EXPECT_EQ(t.size(), 8 + 3000 * 8 + 9u);
  uint64_t table = 0;
  EXPECT_TRUE(storage::ParseSeekTable(std::string_view(t).substr(t.size() - 100), &table).empty());
  EXPECT_EQ(table, t.size());
  auto back = storage::ParseSeekTable("some frame bytes before it" + t, &table);
  ASSERT_EQ(back.size(), 3000u);
  EXPECT_EQ(back[2999].compressed, 40000u);
  EXPECT_EQ(back[2999].raw, 131072u);
  EXPECT_TRUE(storage::ParseSeekTable("no table here, just bytes", &table).empty());
  EXPECT_EQ(table, 0u);
}

}  // namespace
}  // namespace mv::testing
