// The envelope of an encrypted repository's objects (storage/crypto/envelope.h): sealed objects
// open only under their own name and repository and only when written with the repository's
// authentication key; the secrets file and the agent key file round-trip and name what is wrong.
#include <gtest/gtest.h>

#include "storage/crypto/envelope.h"
#include "test_util.h"

namespace mv::testing {
namespace {

namespace c = storage::crypto;

class Envelope : public ::testing::Test {
 protected:
  c::AgeIdentity id_ = c::GenerateAgeIdentity();
  c::AgeRecipient r_ = c::RecipientOf(id_);
  c::RepoSecrets s_ = c::GenerateRepoSecrets(std::string(192, 's')).value();
  const std::string repo_ = "bdd14260c0f240b2444aed8df7dddfd3";
};

TEST_F(Envelope, AnObjectOpensOnlyUnderItsNameInItsRepositoryFromItsWriters) {
  const std::string manifest = "snapshot manifest: mail/alice@example.org/.Sent";
  auto sealed = c::SealObject(manifest, "snapshots/0123", repo_, r_, s_.auth);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->find("alice"), std::string::npos) << "no plaintext in the object";
  auto back = c::OpenObject(*sealed, "snapshots/0123", repo_, id_, s_.auth, "snapshots/0123");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, manifest);

  // Swapped under another name, or copied into another repository.
  auto swapped = c::OpenObject(*sealed, "snapshots/4567", repo_, id_, s_.auth, "snapshots/4567");
  EXPECT_EQ(swapped.status().code(), Code::kCorruption);
  EXPECT_NE(swapped.status().ToString().find("snapshots/4567"), std::string::npos);
  auto other_repo = c::OpenObject(*sealed, "snapshots/0123", "ffff", id_, s_.auth, "x");
  EXPECT_EQ(other_repo.status().code(), Code::kCorruption);
  // Forged: a valid age file to the public recipient, made without A.
  std::array<uint8_t, 32> not_a{};
  auto forged = c::SealObject("forged manifest", "snapshots/0123", repo_, r_, not_a);
  ASSERT_TRUE(forged.ok());
  auto f = c::OpenObject(*forged, "snapshots/0123", repo_, id_, s_.auth, "snapshots/0123");
  EXPECT_EQ(f.status().code(), Code::kCorruption);
  EXPECT_NE(f.status().ToString().find("without the repository's keys"), std::string::npos)
      << f.status().ToString();
  // A flipped byte.
  std::string bad = *sealed;
  bad[bad.size() - 20] ^= 1;
  EXPECT_EQ(c::OpenObject(bad, "snapshots/0123", repo_, id_, s_.auth, "s").status().code(),
            Code::kCorruption);
  // age opens it in an emergency: the plaintext then ends with the 32-byte MAC.
  TempDir dir("mvenv");
  WriteFile(dir / "id.txt", c::FormatIdentity(id_) + "\n", 0600);
  WriteFile(dir / "obj", *sealed);
  RunResult r = Shell("age -d -i '" + dir / "id.txt" + "' '" + dir / "obj" + "' | head -c " +
                      std::to_string(manifest.size()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, manifest);
}

TEST_F(Envelope, TheSecretsFileOpensWithTheIdentityOnly) {
  auto file = c::SealSecrets(s_, r_);
  ASSERT_TRUE(file.ok());
  auto back = c::OpenSecrets(*file, id_, "keys/secrets");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->content, s_.content);
  EXPECT_EQ(back->auth, s_.auth);
  auto wrong = c::OpenSecrets(*file, c::GenerateAgeIdentity(), "keys/secrets");
  EXPECT_EQ(wrong.status().code(), Code::kInvalidArgument) << wrong.status().ToString();
  auto junk = c::OpenSecrets(c::AgeEncrypt("{}", {r_}).value(), id_, "keys/secrets");
  EXPECT_EQ(junk.status().code(), Code::kCorruption);
}

TEST_F(Envelope, AnAgentKeyRoundTripsAndRefusesAnotherRepository) {
  c::AgentKey k{repo_, r_, s_};
  std::string text = c::EncodeAgentKey(k);
  EXPECT_EQ(text.find(c::FormatIdentity(id_)), std::string::npos) << "no identity in it";
  auto back = c::DecodeAgentKey(text, "agent.key", repo_);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->recipient == r_);
  EXPECT_EQ(back->secrets.auth, s_.auth);
  EXPECT_EQ(back->secrets.content, s_.content);
  auto other = c::DecodeAgentKey(text, "agent.key", "0000");
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument);
  EXPECT_NE(other.status().ToString().find(repo_), std::string::npos);
  std::string cut = text.substr(0, text.size() / 2);
  EXPECT_EQ(c::DecodeAgentKey(cut, "agent.key", repo_).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace mv::testing
