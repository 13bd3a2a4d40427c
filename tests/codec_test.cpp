// Exhaustive small-file cases for the byte-level codec and decoders (docs/FORMAT.md §2, §6, §7):
// edge values of the varint codec, and EVERY truncation and EVERY single-byte corruption of a
// small sealed file, index file and snapshot manifest. The mutations behind the sealed hash are
// the libFuzzer targets tests/fuzz/{sealed,manifest,index}_fuzz.cpp; these tests cover the
// damage the hash must catch.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "storage/codec.h"
#include "storage/entry_table.h"
#include "storage/index.h"
#include "storage/sealed.h"
#include "storage/snapshot.h"

namespace mv::storage {
namespace {

const std::string kPath = "/repo/snapshots/0123";  // only used in messages
constexpr std::string_view kMagic{"MVTESTS\x01", 8};

BlobId IdOf(int n) {
  BlobId id;
  for (int i = 0; i < 16; i++) id.bytes[i] = static_cast<uint8_t>(n * 31 + i);
  return id;
}

// A failed decode must be a Corruption (or, for the version byte, Unsupported) that names the
// file, so an operator knows which file to look at.
template <class R>
void ExpectNamedFailure(const R& r, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what << " was accepted";
  EXPECT_TRUE(r.status().code() == Code::kCorruption || r.status().code() == Code::kUnsupported)
      << what << ": " << r.status().ToString();
  EXPECT_EQ(r.status().path(), kPath) << what;
  EXPECT_NE(r.status().ToString().find(kPath), std::string::npos) << what;
}

// Every truncation and every single-byte damage (xor 0x01, set to 0xff) of `file` fails.
template <class DecodeFn>
void ExpectEveryDamageFails(const std::string& file, DecodeFn decode) {
  ASSERT_TRUE(decode(file).ok()) << "the intact file must decode";
  for (size_t n = 0; n < file.size(); n++) {
    auto r = decode(file.substr(0, n));
    ExpectNamedFailure(r, "truncation to " + std::to_string(n) + " bytes");
    if (r.ok()) return;
  }
  for (size_t i = 0; i < file.size(); i++) {
    for (int mode = 0; mode < 2; mode++) {
      std::string bad = file;
      if (mode == 0)
        bad[i] ^= 0x01;
      else if (static_cast<uint8_t>(bad[i]) == 0xff)
        continue;  // unchanged
      else
        bad[i] = static_cast<char>(0xff);
      auto r = decode(bad);
      ExpectNamedFailure(r, std::string(mode ? "byte set to 0xff" : "byte xor 0x01") +
                                " at offset " + std::to_string(i) + " of " +
                                std::to_string(file.size()));
      if (r.ok()) return;
    }
  }
}

// --- Encoder / Decoder ---------------------------------------------------------------------

TEST(Codec, UnsignedEdgeValuesRoundTrip) {
  const uint64_t values[] = {
      0,     1,     127,        128,        255,
      16383, 16384, 1ull << 32, 1ull << 63, std::numeric_limits<uint64_t>::max()};
  Encoder e;
  for (uint64_t v : values) e.U(v);
  Decoder d(e.buf());
  for (uint64_t v : values) EXPECT_EQ(d.U(), v);
  EXPECT_TRUE(d.ok());
  EXPECT_TRUE(d.done());
}

TEST(Codec, VarintLengths) {
  auto len = [](uint64_t v) {
    Encoder e;
    e.U(v);
    return e.buf().size();
  };
  EXPECT_EQ(len(0), 1u);
  EXPECT_EQ(len(127), 1u);
  EXPECT_EQ(len(128), 2u);
  EXPECT_EQ(len(1ull << 63), 10u);
  EXPECT_EQ(len(std::numeric_limits<uint64_t>::max()), 10u);
}

TEST(Codec, SignedEdgeValuesRoundTrip) {
  const int64_t values[] = {0,
                            1,
                            -1,
                            63,
                            -64,
                            64,
                            -65,
                            std::numeric_limits<int64_t>::max(),
                            std::numeric_limits<int64_t>::min(),
                            1796116818000000000};
  Encoder e;
  for (int64_t v : values) e.S(v);
  Decoder d(e.buf());
  for (int64_t v : values) EXPECT_EQ(d.S(), v);
  EXPECT_TRUE(d.ok());
  EXPECT_TRUE(d.done());
}

TEST(Codec, StrIdRawRoundTrip) {
  std::string binary("a\0b\xff", 4);
  std::string big(300, 'x');  // a two-byte length prefix
  Encoder e;
  e.Str("");
  e.Str(binary);
  e.Str(big);
  e.Id(IdOf(7));
  e.Raw("tail");
  Decoder d(e.buf());
  EXPECT_EQ(d.Str(), "");
  EXPECT_EQ(d.Str(), binary);
  EXPECT_EQ(d.Str(), big);
  EXPECT_EQ(d.Id(), IdOf(7));
  EXPECT_EQ(d.Raw(4), "tail");
  EXPECT_TRUE(d.ok());
  EXPECT_TRUE(d.done());
}

TEST(Codec, VarintOfElevenContinuationBytesFails) {
  std::string in(11, static_cast<char>(0x80));
  in.push_back(0x01);
  Decoder d(in);
  EXPECT_EQ(d.U(), 0u);
  EXPECT_FALSE(d.ok());
  // A failed decoder stays failed and reads nothing more.
  EXPECT_EQ(d.U(), 0u);
  EXPECT_EQ(d.Str(), "");
  EXPECT_FALSE(d.ok());
}

TEST(Codec, UnterminatedVarintFails) {
  const std::string in(3,
                       static_cast<char>(0x80));  // the Decoder holds a view: keep the bytes alive
  Decoder d(in);
  EXPECT_EQ(d.U(), 0u);
  EXPECT_FALSE(d.ok());
}

TEST(Codec, ReadsPastTheEndFailAndStayFailed) {
  {
    Decoder d("");
    EXPECT_EQ(d.U(), 0u);
    EXPECT_FALSE(d.ok());
  }
  {
    Decoder d("");
    EXPECT_EQ(d.S(), 0);
    EXPECT_FALSE(d.ok());
  }
  {
    Encoder e;
    e.U(5);
    e.Raw("abcd");  // one byte short of the string
    Decoder d(e.buf());
    EXPECT_EQ(d.Str(), "");
    EXPECT_FALSE(d.ok());
  }
  {
    Encoder e;
    e.U(std::numeric_limits<uint64_t>::max());  // a length beyond any input
    Decoder d(e.buf());
    EXPECT_EQ(d.Str(), "");
    EXPECT_FALSE(d.ok());
  }
  {
    const std::string in(15, 'i');
    Decoder d(in);
    EXPECT_EQ(d.Id(), BlobId{});
    EXPECT_FALSE(d.ok());
  }
  {
    Decoder d("abc");
    EXPECT_EQ(d.Raw(4), "");
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(d.Raw(0), "");  // even an empty read fails once the decoder failed
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(d.Id(), BlobId{});
    EXPECT_FALSE(d.ok());
  }
}

// --- Sealed files --------------------------------------------------------------------------

TEST(Sealed, RoundTrip) {
  std::string body;
  for (int i = 0; i < 1000; i++) body += "line " + std::to_string(i) + "\n";
  auto r = Unseal(Seal(kMagic, R"({"k":1})", body), kMagic, kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->header, R"({"k":1})");
  EXPECT_EQ(r->body, body);

  auto empty = Unseal(Seal(kMagic, "{}", ""), kMagic, kPath);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->header, "{}");
  EXPECT_EQ(empty->body, "");
}

TEST(Sealed, SealWriterMatchesSealContent) {
  SealWriter w(kMagic, R"({"w":true})");
  std::string body;
  for (int i = 0; i < 50; i++) {
    std::string part(i * 7, static_cast<char>('a' + i % 26));
    w.Append(part);
    body += part;
  }
  std::string file = w.Finish();
  auto r = Unseal(file, kMagic, kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->header, R"({"w":true})");
  EXPECT_EQ(r->body, body);

  SealWriter none(kMagic, "{}");
  auto e = Unseal(none.Finish(), kMagic, kPath);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->body, "");
}

TEST(Sealed, EveryTruncationFailsAsCorruptionNamingThePath) {
  std::string file = Seal(kMagic, R"({"a":"b"})", "hello hello hello");
  ASSERT_TRUE(Unseal(file, kMagic, kPath).ok());
  for (size_t n = 0; n < file.size(); n++) {
    auto r = Unseal(file.substr(0, n), kMagic, kPath);
    ASSERT_FALSE(r.ok()) << "truncation to " << n << " bytes was accepted";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << n << ": " << r.status().ToString();
    EXPECT_EQ(r.status().path(), kPath) << n;
  }
}

TEST(Sealed, EverySingleByteCorruptionFails) {
  std::string file = Seal(kMagic, R"({"a":"b"})", "hello hello hello");
  ExpectEveryDamageFails(file, [](const std::string& f) { return Unseal(f, kMagic, kPath); });
  std::string streamed;
  {
    SealWriter w(kMagic, R"({"s":1})");
    w.Append("streamed ");
    w.Append("body");
    streamed = w.Finish();
  }
  ExpectEveryDamageFails(streamed, [](const std::string& f) { return Unseal(f, kMagic, kPath); });
}

TEST(Sealed, DifferentVersionByteSaysDifferentFormatVersion) {
  std::string file = Seal(kMagic, "{}", "x");
  file[kMagic.size() - 1] = 0x02;
  auto r = Unseal(file, kMagic, kPath);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnsupported);
  EXPECT_NE(r.status().message().find("different format version (2)"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().path(), kPath);

  file[kMagic.size() - 1] = static_cast<char>(0xff);  // versions are unsigned bytes
  auto high = Unseal(file, kMagic, kPath);
  ASSERT_FALSE(high.ok());
  EXPECT_NE(high.status().message().find("different format version (255)"), std::string::npos)
      << high.status().message();
}

TEST(Sealed, WrongMagicSaysBadMagic) {
  std::string file = Seal(kMagic, "{}", "x");
  file[0] = 'X';
  auto r = Unseal(file, kMagic, kPath);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("bad magic"), std::string::npos) << r.status().message();
}

// --- Index files ---------------------------------------------------------------------------

std::vector<PackInfo> SmallPacks() {
  std::vector<PackInfo> packs(2);
  for (int p = 0; p < 2; p++) {
    packs[p].pack_id = IdOf(50 + p);
    packs[p].file_size = p == 0 ? 0 : std::numeric_limits<uint64_t>::max();
    for (int e = 0; e < 2 - p; e++)
      packs[p].entries.push_back({IdOf(p * 10 + e), 128u << (20 * e), 127u + e});
  }
  packs.emplace_back().pack_id = IdOf(99);  // a pack with no entries
  return packs;
}

TEST(CodecIndex, RoundTrip) {
  std::vector<PackInfo> packs = SmallPacks();
  auto r = DecodeIndexFile(EncodeIndexFile(packs), kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), packs.size());
  for (size_t p = 0; p < packs.size(); p++) {
    EXPECT_EQ((*r)[p].pack_id, packs[p].pack_id);
    EXPECT_EQ((*r)[p].file_size, packs[p].file_size);
    ASSERT_EQ((*r)[p].entries.size(), packs[p].entries.size());
    for (size_t e = 0; e < packs[p].entries.size(); e++) {
      EXPECT_EQ((*r)[p].entries[e].id, packs[p].entries[e].id);
      EXPECT_EQ((*r)[p].entries[e].offset, packs[p].entries[e].offset);
      EXPECT_EQ((*r)[p].entries[e].length, packs[p].entries[e].length);
    }
  }
  auto empty = DecodeIndexFile(EncodeIndexFile({}), kPath);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
}

TEST(CodecIndex, EveryTruncationAndByteDamageFails) {
  ExpectEveryDamageFails(EncodeIndexFile(SmallPacks()),
                         [](const std::string& f) { return DecodeIndexFile(f, kPath); });
}

// --- Snapshot manifests --------------------------------------------------------------------

// One entry of each type, with and without flags, and edge values in the numeric fields.
Snapshot SmallSnapshot() {
  Snapshot s;
  s.meta.id = "0123456789abcdef0123456789abcdef";
  s.meta.time = 1796116818;
  s.meta.time_ns = s.meta.time * 1000000000 + 123;
  s.meta.host = "mail";
  s.meta.parent = "fedcba9876543210fedcba9876543210";
  s.meta.tags = {{"stack", "mailu"}};
  s.meta.sources = {{"data", "/srv/data"}, {"mail", "/srv/mail"}};
  s.meta.census = {
      {"mail", "alice@example.org", "INBOX", 1, 120, "b2c92583b51a5c43f50e7b9c1b1b6ecf"}};
  s.meta.files = 2;
  s.meta.bytes = 8312;
  auto add = [&](std::string path, FileType t) -> FileEntry& {
    FileEntry& e = s.files.emplace_back();
    e.path = std::move(path);
    e.type = t;
    e.mode = t == FileType::kDirectory ? 0755 : 0600;
    e.uid = 8;
    e.gid = 12;
    e.mtime_ns = 1796116818000000001;
    e.ctime_ns = -1;  // before the epoch: the signed varint
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
  add("mail/link", FileType::kSymlink).link_target = "alice@example.org/cur";
  FileEntry& m = add("mail/msg:2,S", FileType::kRegular);
  m.size = 120;
  m.blobs = {IdOf(2), IdOf(3)};
  m.content = IdOf(4);
  m.ino = std::numeric_limits<uint64_t>::max();
  add("mail/empty", FileType::kRegular).content = IdOf(5);  // no blobs
  return s;
}

TEST(CodecSnapshot, RoundTripEveryEntryTypeAndFlag) {
  Snapshot s = SmallSnapshot();
  std::string file = EncodeSnapshot(s);
  auto r = DecodeSnapshot(file, kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->meta.id, s.meta.id);
  EXPECT_EQ(r->meta.time, s.meta.time);
  EXPECT_EQ(r->meta.time_ns, s.meta.time_ns);
  EXPECT_EQ(r->meta.host, s.meta.host);
  EXPECT_EQ(r->meta.parent, s.meta.parent);
  EXPECT_EQ(r->meta.tags, s.meta.tags);
  ASSERT_EQ(r->meta.sources.size(), 2u);
  EXPECT_EQ(r->meta.sources[1].path, "/srv/mail");
  ASSERT_EQ(r->meta.census.size(), 1u);
  EXPECT_EQ(r->meta.census[0].digest, s.meta.census[0].digest);
  EXPECT_EQ(r->meta.files, 2u);
  EXPECT_EQ(r->meta.bytes, 8312u);
  ASSERT_EQ(r->files.size(), s.files.size());
  for (size_t i = 0; i < s.files.size(); i++) {
    const FileEntry &a = s.files[i], &b = r->files[i];
    SCOPED_TRACE(a.path);
    EXPECT_EQ(b.path, a.path);
    EXPECT_EQ(b.type, a.type);
    EXPECT_EQ(b.mode, a.mode);
    EXPECT_EQ(b.uid, a.uid);
    EXPECT_EQ(b.gid, a.gid);
    EXPECT_EQ(b.mtime_ns, a.mtime_ns);
    EXPECT_EQ(b.ctime_ns, a.ctime_ns);
    EXPECT_EQ(b.dev, a.dev);
    EXPECT_EQ(b.ino, a.ino);
    EXPECT_EQ(b.flags, a.flags);
    EXPECT_EQ(b.link_target, a.link_target);
    if (a.type == FileType::kRegular) {
      EXPECT_EQ(b.size, a.size);
      EXPECT_EQ(b.content, a.content);
      EXPECT_EQ(b.blobs, a.blobs);
    }
  }

  auto t = EntryTable::Decode(file, kPath);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->size(), s.files.size());
  for (size_t i = 0; i < s.files.size(); i++) {
    const FileEntry& a = s.files[i];
    const EntryTable::Row& row = t->row(i);
    SCOPED_TRACE(a.path);
    EXPECT_EQ(t->path(row), a.path);
    EXPECT_EQ(row.type, a.type);
    EXPECT_EQ(row.mtime_ns, a.mtime_ns);
    EXPECT_EQ(row.ctime_ns, a.ctime_ns);
    EXPECT_EQ(row.dev, a.dev);
    EXPECT_EQ(row.ino, a.ino);
    EXPECT_EQ(row.flags, a.flags);
    if (a.type == FileType::kRegular) {
      EXPECT_EQ(row.size, a.size);
      EXPECT_EQ(row.content, a.content);
      auto blobs = t->blobs(row);
      EXPECT_EQ(std::vector<BlobId>(blobs.begin(), blobs.end()), a.blobs);
    }
  }
}

TEST(CodecSnapshot, EveryTruncationAndByteDamageFails) {
  std::string file = EncodeSnapshot(SmallSnapshot());
  ExpectEveryDamageFails(file, [](const std::string& f) { return DecodeSnapshot(f, kPath); });
}

TEST(CodecSnapshot, EntryTableEveryTruncationAndByteDamageFails) {
  std::string file = EncodeSnapshot(SmallSnapshot());
  ExpectEveryDamageFails(file, [](const std::string& f) { return EntryTable::Decode(f, kPath); });
}

}  // namespace
}  // namespace mv::storage
