// dovecot's own reader, pointed read-only at the Maildirs `verify` restored, counts the
// same messages per folder as mailvault's census. doveadm runs without a daemon as the mail user
// (uid 8), with its index and control files outside the restored tree; it exits 0 even when it
// prints errors, so anything on its stderr fails the test.
#include <unistd.h>

#include <map>
#include <sstream>

#include "verify_fixture.h"

namespace mv::testing {
namespace {

class Doveadm : public VerifyFixture {};

TEST_F(Doveadm, CountsTheSameMessagesPerFolderAsTheCensusInRestoredMaildirs) {
  ASSERT_EQ(Shell("command -v doveadm").exit_code, 0) << "doveadm missing: install dovecot-core";
  auto v = ParseJson(Verify({"--keep"}));
  ASSERT_EQ(v["ok"], true) << v.dump(1);
  std::string kept = v["scratch"];
  // The restored tree is private (0700, files 0600 as backed up); let the mail user read it.
  ASSERT_EQ(Shell("chmod 755 '" + scratch_.path() + "' && chmod -R a+rX '" + kept + "'").exit_code,
            0);
  auto snaps = ParseJson(RunMailvault({"snapshots", "--repo", repo(), "--json"}));
  ASSERT_EQ(snaps.size(), 1u);
  for (const auto& user : users_) {
    std::map<std::string, uint64_t> census;
    for (const auto& c : snaps[0]["census"]) {
      if (c["mailbox"] != user) continue;
      std::string f = c["folder"];
      census[f == "INBOX" ? f : f.substr(1)] = c["messages"];
    }
    std::string err;
    auto seen = DoveadmCounts(kept + "/mail/" + user, &err);
    EXPECT_EQ(err, "") << "doveadm complained reading " << user;
    EXPECT_EQ(seen, census) << user;
    EXPECT_EQ(census.size(), 4u);
  }
}

}  // namespace
}  // namespace mv::testing
