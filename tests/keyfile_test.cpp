// Passphrase key files (storage/crypto/keyfile.h): an identity wrapped by argon2id and
// secretbox; several passphrases open the same identity; a wrong passphrase, a damaged or foreign
// file and a crafted cost are errors that say which, and never echo the passphrase.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "storage/crypto/keyfile.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace c = storage::crypto;

TEST(KeyFile, TwoPassphrasesOpenTheSameIdentityAndAWrongOneIsNamedAsSuch) {
  c::AgeIdentity id = c::GenerateAgeIdentity();
  auto a = c::WrapIdentity(id, "correct horse", c::InteractiveKdfCost());
  auto b = c::WrapIdentity(id, "battery staple", c::InteractiveKdfCost());
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
  EXPECT_NE(*a, *b) << "each file has its own salt and nonce";
  EXPECT_EQ(a->find(c::FormatIdentity(id)), std::string::npos);
  auto from_a = c::UnwrapIdentity(*a, "correct horse", "keys/a");
  auto from_b = c::UnwrapIdentity(*b, "battery staple", "keys/b");
  ASSERT_TRUE(from_a.ok()) << from_a.status().ToString();
  ASSERT_TRUE(from_b.ok()) << from_b.status().ToString();
  EXPECT_EQ(from_a->secret, id.secret);
  EXPECT_EQ(from_b->secret, id.secret);
  // What the identity opens: an age file to its recipient.
  auto file = c::AgeEncrypt("mail", {c::RecipientOf(*from_b)});
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(c::AgeDecrypt(*file, id, "f").value(), "mail");

  auto wrong = c::UnwrapIdentity(*a, "battery staple", "keys/a");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kInvalidArgument);
  EXPECT_NE(wrong.status().ToString().find("wrong passphrase"), std::string::npos);
  EXPECT_NE(wrong.status().ToString().find("keys/a"), std::string::npos);
  EXPECT_EQ(wrong.status().ToString().find("battery"), std::string::npos) << "not echoed";
  EXPECT_FALSE(c::UnwrapIdentity(*a, "", "keys/a").ok());
}

TEST(KeyFile, DamagedForeignAndCraftedFilesAreRefusedWithoutRunningTheKdf) {
  c::AgeIdentity id = c::GenerateAgeIdentity();
  auto text = c::WrapIdentity(id, "pw", c::InteractiveKdfCost());
  ASSERT_TRUE(text.ok());
  auto j = nlohmann::json::parse(*text);
  auto with = [&](const char* k, nlohmann::json v) {
    auto x = j;
    if (v.is_null())
      x.erase(k);
    else
      x[k] = v;
    return x.dump();
  };
  EXPECT_EQ(c::UnwrapIdentity("not json", "pw", "k").status().code(), Code::kCorruption);
  EXPECT_EQ(c::UnwrapIdentity(with("kind", "restic-key"), "pw", "k").status().code(),
            Code::kCorruption);
  EXPECT_EQ(c::UnwrapIdentity(with("salt", nullptr), "pw", "k").status().code(), Code::kCorruption);
  EXPECT_EQ(c::UnwrapIdentity(with("box", "!!"), "pw", "k").status().code(), Code::kCorruption);
  auto v2 = c::UnwrapIdentity(with("version", 2), "pw", "k");
  EXPECT_EQ(v2.status().code(), Code::kUnsupported);
  EXPECT_NE(v2.status().ToString().find("newer mailvault"), std::string::npos);
  // A cost no writer uses (1 TiB) is refused before argon2id runs.
  auto t0 = std::chrono::steady_clock::now();
  auto huge = c::UnwrapIdentity(with("mem", uint64_t{1} << 40), "pw", "k");
  EXPECT_EQ(huge.status().code(), Code::kCorruption) << huge.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  // One flipped bit of the sealed identity: the box does not open (secretbox cannot tell this
  // from a wrong passphrase; the message names both).
  std::string box = j["box"];
  box[5] = box[5] == 'A' ? 'B' : 'A';
  auto flipped = c::UnwrapIdentity(with("box", box), "pw", "k");
  ASSERT_FALSE(flipped.ok());
  EXPECT_NE(flipped.status().ToString().find("damaged"), std::string::npos);
}

TEST(KeyFile, APassphraseFileLosesOneTrailingNewlineAndMayNotBeEmpty) {
  EXPECT_EQ(c::PassphraseFromFile("secret\n", "f").value(), "secret");
  EXPECT_EQ(c::PassphraseFromFile("secret\r\n", "f").value(), "secret");
  EXPECT_EQ(c::PassphraseFromFile("secret", "f").value(), "secret");
  EXPECT_EQ(c::PassphraseFromFile(" two words \n\n", "f").value(), " two words \n") << "only one";
  for (const char* empty : {"", "\n", "\r\n"}) {
    auto r = c::PassphraseFromFile(empty, "/run/secrets/mv_pass");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().ToString().find("/run/secrets/mv_pass"), std::string::npos);
  }
}

}  // namespace
}  // namespace mv::testing
