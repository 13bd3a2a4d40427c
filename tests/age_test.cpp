// The age v1 codec (storage/crypto/age.h) against the reference: Debian's `age` 1.1.1 and
// `age-keygen` (installed by deploy/install-deps.sh --test). Files written here must decrypt
// with `age -d` byte for byte, and `age`'s files must decrypt here; a flipped byte, a cut file
// and a wrong identity are errors that say which.
#include <gtest/gtest.h>

#include "storage/crypto/age.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace age = storage::crypto;

std::string Plain(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 7;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// Sizes around the 64 KiB chunk boundary, and empty.
const size_t kSizes[] = {0, 1, 65535, 65536, 65537, 3 * 65536, 200000};

TEST(Age, FilesWrittenHereDecryptWithDebiansAgeByteForByte) {
  TempDir dir("mvage");
  age::AgeIdentity id = age::GenerateAgeIdentity();
  WriteFile(dir / "identity.txt", "# created by the test\n" + age::FormatIdentity(id) + "\n", 0600);
  for (size_t n : kSizes) {
    std::string plain = Plain(n, static_cast<uint32_t>(n));
    auto file = age::AgeEncrypt(plain, {age::RecipientOf(id)});
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(file->size(), age::AgeEncryptor::FileSize(n, file->find("\n", file->find("---")) + 1))
        << n;
    WriteFile(dir / "f.age", *file);
    RunResult r = Shell("age -d -i '" + dir / "identity.txt" + "' -o '" + dir / "f.out" + "' '" +
                        dir / "f.age" + "'");
    ASSERT_EQ(r.exit_code, 0) << n << " bytes: " << r.err;
    EXPECT_TRUE(ReadFile(dir / "f.out") == plain) << n << " bytes differ after age -d";
  }
}

TEST(Age, FilesDebiansAgeWritesDecryptHere) {
  TempDir dir("mvage");
  ASSERT_EQ(Shell("age-keygen -o '" + dir / "key.txt" + "' 2>/dev/null").exit_code, 0);
  auto id = age::ParseIdentity(ReadFile(dir / "key.txt"), "key.txt");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // age-keygen prints the recipient in a comment line; ours must be the same.
  RunResult pub = Shell("age-keygen -y '" + dir / "key.txt" + "'");
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  std::string recipient = pub.out.substr(0, pub.out.find('\n'));
  EXPECT_EQ(age::FormatRecipient(age::RecipientOf(*id)), recipient);
  auto parsed = age::ParseRecipient(recipient);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(*parsed == age::RecipientOf(*id));
  // Two recipients: ours second, so the first stanza is another's and must be passed over.
  age::AgeIdentity other = age::GenerateAgeIdentity();
  for (size_t n : kSizes) {
    std::string plain = Plain(n, static_cast<uint32_t>(n) + 1);
    WriteFile(dir / "p", plain);
    RunResult r = Shell("age -r " + age::FormatRecipient(age::RecipientOf(other)) + " -r " +
                        recipient + " -o '" + dir / "p.age" + "' '" + dir / "p" + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = age::AgeDecrypt(ReadFile(dir / "p.age"), *id, dir / "p.age");
    ASSERT_TRUE(got.ok()) << n << " bytes: " << got.status().ToString();
    EXPECT_TRUE(*got == plain) << n << " bytes differ";
  }
}

TEST(Age, AFlippedByteACutFileAndAWrongIdentityAreErrorsThatSayWhich) {
  age::AgeIdentity id = age::GenerateAgeIdentity();
  std::string plain = Plain(3 * 65536 + 100, 9);
  auto file = age::AgeEncrypt(plain, {age::RecipientOf(id)});
  ASSERT_TRUE(file.ok());
  const std::string path = "packs/ab/ab12.tar.zst.age";
  size_t payload = file->find("\n", file->find("---")) + 1 + 16;

  // A flipped byte in the stanza: no stanza opens (age cannot tell a damaged stanza from one
  // for another recipient either).
  std::string stanza = *file;
  stanza[file->find("X25519 ") + 12] ^= 0x01;
  auto st = age::AgeDecrypt(stanza, id, path);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.status().ToString().find("damaged") != std::string::npos ||
              st.status().ToString().find("not a valid age file") != std::string::npos)
      << st.status().ToString();
  // A flipped byte in the MAC line and in each chunk.
  for (size_t at :
       {file->find("---") + 6, payload + 10, payload + 65536 + 16 + 5, file->size() - 3}) {
    std::string bad = *file;
    bad[at] ^= 0x20;
    auto r = age::AgeDecrypt(bad, id, path);
    ASSERT_FALSE(r.ok()) << "flipped byte " << at << " went unnoticed";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << at << ": " << r.status().ToString();
    EXPECT_NE(r.status().ToString().find(path), std::string::npos) << r.status().ToString();
  }
  // Cut after a whole chunk: the chunk there is not flagged last.
  auto cut = age::AgeDecrypt(file->substr(0, payload + 2 * (65536 + 16)), id, path);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().ToString().find("cut short"), std::string::npos)
      << cut.status().ToString();
  // Cut in the middle of a chunk, and in the header.
  EXPECT_EQ(age::AgeDecrypt(file->substr(0, payload + 1000), id, path).status().code(),
            Code::kCorruption);
  auto head = age::AgeDecrypt(file->substr(0, 40), id, path);
  EXPECT_NE(head.status().ToString().find("cut short"), std::string::npos)
      << head.status().ToString();
  // Bytes appended.
  EXPECT_EQ(age::AgeDecrypt(*file + std::string(65536 + 16, 'x'), id, path).status().code(),
            Code::kCorruption);
  // Another identity: not corruption, and the message says what to use.
  auto wrong = age::AgeDecrypt(*file, age::GenerateAgeIdentity(), path);
  EXPECT_EQ(wrong.status().code(), Code::kInvalidArgument) << wrong.status().ToString();
  EXPECT_NE(wrong.status().ToString().find("identity"), std::string::npos);
  // Debian's age agrees the flipped payload is bad.
  TempDir dir("mvage");
  WriteFile(dir / "identity.txt", age::FormatIdentity(id) + "\n", 0600);
  std::string bad = *file;
  bad[payload + 10] ^= 1;
  WriteFile(dir / "bad.age", bad);
  RunResult r =
      Shell("age -d -i '" + dir / "identity.txt" + "' '" + dir / "bad.age" + "' > /dev/null");
  EXPECT_NE(r.exit_code, 0);
}

TEST(Age, AnyRangeOfChunksDecryptsAloneFromTheHeader) {
  age::AgeIdentity id = age::GenerateAgeIdentity();
  std::string plain = Plain(5 * 65536 + 4321, 11);
  auto file = age::AgeEncrypt(plain, {age::RecipientOf(id)});
  ASSERT_TRUE(file.ok());
  uint64_t need = 0;
  // Too short a prefix asks for more.
  auto partial = age::AgeReadHeader(file->substr(0, 50), id, "f", &need);
  EXPECT_EQ(partial.status().code(), Code::kNotFound);
  EXPECT_GT(need, 50u);
  auto h = age::AgeReadHeader(file->substr(0, 4096), id, "f", &need);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  for (uint64_t first : {0u, 2u, 5u}) {
    for (uint64_t count : {1u, 2u}) {
      if (first + count > 6) continue;
      uint64_t from = age::AgeChunkOffset(*h, first);
      uint64_t to = std::min<uint64_t>(file->size(), age::AgeChunkOffset(*h, first + count));
      auto got = age::AgeDecryptChunks(*h, file->size(), first,
                                       std::string_view(*file).substr(from, to - from), "f");
      ASSERT_TRUE(got.ok()) << first << "+" << count << ": " << got.status().ToString();
      EXPECT_TRUE(*got == plain.substr(first * 65536, count * 65536)) << first << "+" << count;
    }
  }
}

TEST(Age, KeysInTheirTextFormsRoundTripAndBadOnesAreRefusedWithoutEchoingSecrets) {
  age::AgeIdentity id = age::GenerateAgeIdentity();
  std::string text = age::FormatIdentity(id);
  EXPECT_EQ(text.rfind("AGE-SECRET-KEY-1", 0), 0u) << text;
  auto back = age::ParseIdentity("\n# comment\n" + text + "\r\n", "id.txt");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->secret, id.secret);
  std::string r = age::FormatRecipient(age::RecipientOf(id));
  EXPECT_EQ(r.rfind("age1", 0), 0u);
  EXPECT_EQ(r.size(), 62u);
  std::string typo = text;
  typo[20] = typo[20] == 'Q' ? 'P' : 'Q';  // the checksum catches one changed character
  auto bad = age::ParseIdentity(typo, "id.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().ToString().find(typo), std::string::npos) << "the key is not echoed";
  EXPECT_NE(bad.status().ToString().find("id.txt"), std::string::npos);
  EXPECT_FALSE(age::ParseIdentity("# only a comment\n", "empty.txt").ok());
  EXPECT_FALSE(age::ParseRecipient(r.substr(0, 61) + (r[61] == 'q' ? "p" : "q")).ok());
  EXPECT_FALSE(age::ParseRecipient("AGE1" + r.substr(4, 20) + r.substr(24)).ok())
      << "mixed case is refused";
}

// The fuzz target's seeds (tests/fuzz/corpus/age/, written by Debian's age) open with its fixed
// identity, so its mutations reach past the header.
TEST(Age, TheFuzzSeedsOpenWithTheFuzzIdentity) {
  age::AgeIdentity id;
  id.secret.fill(0x42);
  EXPECT_EQ(age::FormatRecipient(age::RecipientOf(id)),
            "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
  std::string dir = std::string(MAILVAULT_SOURCE_DIR) + "/tests/fuzz/corpus/age/";
  auto small = age::AgeDecrypt(ReadFile(dir + "small"), id, "small");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(*small, "hello fuzz");
  auto two = age::AgeDecrypt(ReadFile(dir + "two-chunks"), id, "two-chunks");
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(two->size(), 70000u);
  auto empty = age::AgeDecrypt(ReadFile(dir + "empty"), id, "empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
}

}  // namespace
}  // namespace mv::testing
