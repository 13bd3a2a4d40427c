// Structured mutation fuzzing of the byte-level decoders (docs/FORMAT.md §2, §6, §7): sealed
// files, index files and snapshot manifests (both decoders of the record format). A damaged file
// is normally stopped by the sealed hash, so the mutations are applied to the header and body
// *behind* the hash and the file is sealed again: this is what a buggy writer, or anyone who can
// write to the repository, produces. Every decode must return a value or an error: no crash, no
// exception, no undefined behaviour (tests/run.sh also runs this binary under ASan and UBSan),
// and no allocation out of proportion to the input (the process runs under an address-space
// limit).
//
// Deterministic: the seed is fixed (MV_FUZZ_SEED overrides it, MV_FUZZ_ITERATIONS the count), so
// a failure names the iteration that reproduces it.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <random>
#include <string>

#include "storage/codec.h"
#include "storage/entry_table.h"
#include "storage/index.h"
#include "storage/sealed.h"
#include "storage/snapshot.h"

namespace mv::storage {
namespace {

uint64_t EnvOr(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : dflt;
}

BlobId IdOf(int n) {
  BlobId id;
  for (int i = 0; i < 16; i++) id.bytes[i] = static_cast<uint8_t>(n * 31 + i);
  return id;
}

Snapshot SampleSnapshot() {
  Snapshot s;
  s.meta.id = "0123456789abcdef0123456789abcdef";
  s.meta.time = 1796116818;
  s.meta.time_ns = s.meta.time * 1000000000;
  s.meta.host = "mail";
  s.meta.tags = {{"stack", "mailu"}};
  s.meta.sources = {{"mail", "/srv/mail"}, {"data", "/srv/data"}};
  s.meta.census = {{"mail", "alice@example.org", "INBOX", 2, 240, "b2c92583b51a5c43f50e7b9c1b1b6ecf"}};
  s.meta.files = 4;
  auto add = [&](std::string path, FileType t) -> FileEntry& {
    FileEntry& e = s.files.emplace_back();
    e.path = std::move(path);
    e.type = t;
    e.mode = t == FileType::kDirectory ? 0755 : 0600;
    e.uid = e.gid = 8;
    e.mtime_ns = e.ctime_ns = 1796116818000000000;
    e.dev = 2049;
    e.ino = s.files.size() + 100;
    return e;
  };
  add("data", FileType::kDirectory);
  FileEntry& db = add("data/main.db", FileType::kRegular);
  db.size = 8192;
  db.flags = kFlagSqlite;
  db.blobs = {IdOf(1)};
  db.content = IdOf(1);
  add("mail", FileType::kDirectory);
  add("mail/alice@example.org", FileType::kDirectory);
  add("mail/alice@example.org/cur", FileType::kDirectory);
  FileEntry& m = add("mail/alice@example.org/cur/1700000000.M1P1.host:2,S", FileType::kRegular);
  m.size = 9 << 20;
  m.blobs = {IdOf(2), IdOf(3), IdOf(4)};
  m.content = IdOf(5);
  add("mail/alice@example.org/link", FileType::kSymlink).link_target = "cur";
  add("mail/alice@example.org/new", FileType::kDirectory);
  FileEntry& n = add("mail/alice@example.org/new/1700000001.M2P1.host", FileType::kRegular);
  n.size = 120;
  n.blobs = {IdOf(6)};
  n.content = IdOf(6);
  return s;
}

std::string SampleIndex() {
  std::vector<PackInfo> packs(2);
  for (int p = 0; p < 2; p++) {
    packs[p].pack_id = IdOf(50 + p);
    packs[p].file_size = 1000 + p;
    for (int e = 0; e < 3; e++) packs[p].entries.push_back({IdOf(p * 10 + e), 512u * (e + 1), 100u + e});
  }
  return EncodeIndexFile(packs);
}

// Values that break careless decoders: varints that overflow, counts far beyond the input,
// lengths of 0 and 2^63, and JSON numbers beyond any int64.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  std::string Body(std::string b) {
    int edits = 1 + static_cast<int>(rng_() % 4);
    for (int i = 0; i < edits; i++) {
      size_t pos = b.empty() ? 0 : rng_() % (b.size() + 1);
      switch (rng_() % 7) {
        case 0: if (!b.empty() && pos < b.size()) b[pos] ^= static_cast<char>(1u << (rng_() % 8)); break;
        case 1: if (pos < b.size()) b[pos] = static_cast<char>(kBytes[rng_() % std::size(kBytes)]); break;
        case 2: b.resize(pos); break;                                       // cut short
        case 3: b.insert(pos, BigVarint()); break;                          // a huge count or length
        case 4: if (pos < b.size()) b.erase(pos, 1 + rng_() % 8); break;
        case 5: b.insert(pos, std::string(1 + rng_() % 12, static_cast<char>(0x80 | (rng_() & 0x7f)))); break;  // endless varint
        case 6: b.append(BigVarint()); break;
      }
    }
    return b;
  }

  std::string Header(std::string h) {
    static const char* kValues[] = {"1e300", "-1e300", "9223372036854775807", "-9223372036854775808",
                                    "18446744073709551615", "99999999999999999999", "-1", "null", "\"x\"",
                                    "[]", "{}", "0.5", "true"};
    for (const char* key : {"\"time\":", "\"time_ns\":", "\"files\":", "\"messages\":", "\"bytes\":",
                            "\"problems\":", "\"version\":", "\"packs\":"}) {
      size_t k = h.find(key);
      if (k == std::string::npos || rng_() % 3) continue;
      size_t v = k + std::strlen(key);
      size_t end = h.find_first_of(",}", v);
      if (end == std::string::npos) continue;
      h.replace(v, end - v, kValues[rng_() % std::size(kValues)]);
    }
    if (rng_() % 5 == 0 && !h.empty()) h.resize(rng_() % h.size());   // malformed JSON
    return h;
  }

 private:
  static constexpr uint8_t kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x02, 0x03, 0x10};
  std::string BigVarint() {
    Encoder e;
    static const uint64_t kBig[] = {1ull << 32, 1ull << 40, 1ull << 62, ~0ull, 0xffffffffull, 1ull << 28};
    e.U(kBig[rng_() % std::size(kBig)]);
    return e.buf();
  }
  std::mt19937_64 rng_;
};

class DecoderFuzz : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Allocation out of proportion to the input fails here (as std::bad_alloc, which must not
    // escape a decoder) instead of passing unnoticed. Sanitizer builds reserve huge shadow
    // mappings, so they bound allocations through ASAN_OPTIONS instead.
#ifndef MV_FUZZ_SANITIZED
    struct rlimit lim = {2ull << 30, 2ull << 30};
    setrlimit(RLIMIT_AS, &lim);
#endif
  }
  uint64_t iterations_ = EnvOr("MV_FUZZ_ITERATIONS", 20000);
  uint64_t seed_ = EnvOr("MV_FUZZ_SEED", 20261201);
};

TEST_F(DecoderFuzz, DamagedManifestsDecodeToValuesOrErrorsNeverCrash) {
  std::string good = EncodeSnapshot(SampleSnapshot());
  auto base = Unseal(good, SnapshotMagic(), "fuzz");
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  ASSERT_TRUE(DecodeSnapshot(good, "fuzz").ok());
  Mutator mut(seed_);
  uint64_t rejected = 0;
  for (uint64_t i = 0; i < iterations_; i++) {
    SCOPED_TRACE("iteration " + std::to_string(i) + " seed " + std::to_string(seed_));
    std::string header = i % 3 == 0 ? mut.Header(base->header) : base->header;
    std::string body = i % 3 == 0 ? base->body : mut.Body(base->body);
    std::string file = Seal(SnapshotMagic(), header, body, 1);
    try {
      auto snap = DecodeSnapshot(file, "fuzz");
      auto table = EntryTable::Decode(file, "fuzz");
      EXPECT_EQ(snap.ok(), table.ok()) << "the two decoders of one record format disagree";
      if (!snap.ok()) rejected++;
      else EXPECT_EQ(snap->files.size(), table->size());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "exception escaped a manifest decoder: " << e.what();
      return;
    }
  }
  EXPECT_GT(rejected, iterations_ / 4) << "the mutations should mostly produce invalid manifests";
}

TEST_F(DecoderFuzz, DamagedIndexFilesDecodeToValuesOrErrorsNeverCrash) {
  std::string good = SampleIndex();
  constexpr std::string_view kIndexMagic{"MVINDEX\x01", 8};
  auto base = Unseal(good, kIndexMagic, "fuzz");
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  ASSERT_TRUE(DecodeIndexFile(good, "fuzz").ok());
  Mutator mut(seed_ + 1);
  for (uint64_t i = 0; i < iterations_; i++) {
    SCOPED_TRACE("iteration " + std::to_string(i));
    std::string file = Seal(kIndexMagic, i % 4 == 0 ? mut.Header(base->header) : base->header,
                            i % 4 == 0 ? base->body : mut.Body(base->body), 1);
    try {
      (void)DecodeIndexFile(file, "fuzz");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "exception escaped the index decoder: " << e.what();
      return;
    }
  }
}

// The framing itself, without re-sealing: any byte string is refused or accepted, never misread.
TEST_F(DecoderFuzz, ArbitraryBytesAreRefusedBySealedFramingWithoutCrash) {
  std::string good = EncodeSnapshot(SampleSnapshot());
  Mutator mut(seed_ + 2);
  for (uint64_t i = 0; i < iterations_; i++) {
    std::string file = mut.Body(good);
    auto s = Unseal(file, SnapshotMagic(), "fuzz");
    if (file != good) EXPECT_FALSE(s.ok()) << "iteration " << i << ": a damaged file passed the sealed hash";
  }
}

}  // namespace
}  // namespace mv::storage
