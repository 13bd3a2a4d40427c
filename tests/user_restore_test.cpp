// restore --user (issue "incident restore"): one account back, mail and database rows, on real
// SQLite with Mailu's schema (tests/data/mailu-schema.sql). Her rows come back where the live
// database lacks them, in one transaction; other users' live changes since the snapshot stay;
// a row the live database has with other values is left and named by column; secrets are never
// printed; a second run inserts nothing. The mapping from a user to rows is data: the shipped
// postfixadmin description restores a postfixadmin-style database the same way.
#include <filesystem>

#include "test_util.h"

#ifndef MAILVAULT_SOURCE_DIR
#error "MAILVAULT_SOURCE_DIR must point at the source tree"
#endif

namespace mv::testing {
namespace {

namespace stdfs = std::filesystem;

const std::string kAlice = "alice@example.org", kBob = "bob@example.org";

std::string Sql(const std::string& db, const std::string& sql) {
  return Shell("sqlite3 '" + db + "' \"" + sql + "\"").out;
}

class UserRestore : public RepoTest {
 protected:
  void SetUp() override {
    RepoTest::SetUp();
    // Mail: two mailboxes with a few folders (the generic volume's), plus a Mailu database.
    VolumeSpec spec;
    spec.users = 2;
    spec.messages_per_user = 24;
    auto users = MakeMailVolume(vol_.path(), spec);
    stdfs::rename(vol_ / ("mail/" + users[0]), vol_ / ("mail/" + kAlice));
    stdfs::rename(vol_ / ("mail/" + users[1]), vol_ / ("mail/" + kBob));
    db_ = vol_ / "data/main.db";
    stdfs::remove(db_);
    ASSERT_EQ(
        Shell("sqlite3 '" + db_ + "' < '" MAILVAULT_SOURCE_DIR "/tests/data/mailu-schema.sql'")
            .exit_code,
        0);
    const std::string user_cols =
        "created_at, localpart, domain_name, password, quota_bytes, quota_bytes_used, "
        "global_admin, enabled, enable_imap, enable_pop, forward_enabled, forward_keep, "
        "reply_enabled, reply_enddate, reply_startdate, displayed_name, spam_enabled, "
        "spam_mark_as_read, spam_threshold, change_pw_next_login, allow_spoofing, email";
    auto user = [&](const std::string& local, const std::string& pw) {
      return "INSERT INTO user (" + user_cols + ") VALUES ('2026-01-01', '" + local +
             "', 'example.org', '" + pw +
             "', 1000000000, 0, 0, 1, 1, 1, 0, 1, 0, '2999-12-31', '1900-01-01', '" + local +
             "', 1, 1, 80, 0, 0, '" + local + "@example.org');";
    };
    ASSERT_EQ(
        Shell("sqlite3 '" + db_ + "' \"" +
              "INSERT INTO domain VALUES ('2026-01-01', NULL, '', 'example.org', -1, -1, 0, 0);" +
              user("alice", "{BLF-CRYPT}alice-secret-hash") + user("bob", "{BLF-CRYPT}bob-hash") +
              "INSERT INTO alias VALUES ('2026-01-01', NULL, '', 'al', 'example.org', "
              "'alice@example.org', 0, 'al@example.org');"
              "INSERT INTO alias VALUES ('2026-01-01', NULL, '', 'team', 'example.org', "
              "'bob@example.org, alice@example.org', 0, 'team@example.org');"
              "INSERT INTO alias VALUES ('2026-01-01', NULL, '', 'b', 'example.org', "
              "'bob@example.org', 0, 'b@example.org');"
              "INSERT INTO alias VALUES ('2026-01-01', NULL, '', 'x', 'example.org', "
              "'malice@example.org', 0, 'x@example.org');"
              "INSERT INTO token VALUES ('2026-01-01', NULL, '', 7, 'alice@example.org', "
              "'token-secret-hash', '10.0.0.1');"
              "INSERT INTO token VALUES ('2026-01-01', NULL, '', 8, 'bob@example.org', "
              "'bob-token', NULL);"
              "INSERT INTO fetch VALUES ('2026-01-01', NULL, '', 3, 'alice@example.org', 'imap', "
              "'imap.old.example', 993, 1, 'alice', 'fetch-secret-password', 1, NULL, NULL, 0, "
              "'INBOX');"
              "INSERT INTO manager VALUES ('example.org', 'alice@example.org');\"")
            .exit_code,
        0);
    auto b = RunMailvault({"backup", "--repo", repo(), "--json", "--source",
                           "mail=" + vol_.path() + "/mail", "--source",
                           "data=" + vol_.path() + "/data"});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    snap_ = Json(b)["snapshot"];
    alice_tree_ = ListTree(vol_ / ("mail/" + kAlice));
    alice_rows_ = Dump("user") + Dump("token") + Dump("fetch") + Dump("manager");
  }
  std::string Dump(const std::string& table) {
    return Sql(db_, "SELECT * FROM " + table + " WHERE " +
                        (table == "user" ? "email" : "user_email") + " = 'alice@example.org'");
  }
  RunResult UserRestoreRun(std::vector<std::string> extra) {
    std::vector<std::string> args = {"restore", "--repo", repo(),     "--snapshot", snap_,
                                     "--user",  kAlice,   "--target", vol_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunMailvault(args);
  }
  std::string db_, snap_, alice_rows_;
  std::map<std::string, std::string> alice_tree_;
};

TEST_F(UserRestore, ADeletedUserComesBackWithHerRowsAndMailWhileOtherUsersLiveChangesStay) {
  // The account is deleted (Mailu deletes the row; tokens and fetches cascade; her own alias
  // goes too) and her mailbox is removed; meanwhile bob's quota changes, a user is added, and
  // the shared alias is edited.
  ASSERT_EQ(Shell("sqlite3 '" + db_ + "' \"PRAGMA foreign_keys=ON; " +
                  "DELETE FROM manager WHERE user_email='alice@example.org';"
                  "DELETE FROM alias WHERE email='al@example.org';"
                  "DELETE FROM user WHERE email='alice@example.org';"
                  "UPDATE user SET quota_bytes=5000 WHERE email='bob@example.org';"
                  "UPDATE alias SET destination='bob@example.org' WHERE email='team@example.org';"
                  "INSERT INTO user SELECT created_at, updated_at, comment, 'carol', domain_name, "
                  "password, quota_bytes, quota_bytes_used, global_admin, enabled, enable_imap, "
                  "enable_pop, forward_enabled, forward_destination, forward_keep, reply_enabled, "
                  "reply_subject, reply_body, reply_enddate, reply_startdate, 'carol', "
                  "spam_enabled, spam_mark_as_read, spam_threshold, change_pw_next_login, "
                  "allow_spoofing, 'carol@example.org' FROM user WHERE email='bob@example.org';\"")
                .exit_code,
            0);
  ASSERT_EQ(Dump("token"), "") << "the cascade removed her token";
  stdfs::remove_all(vol_ / ("mail/" + kAlice));
  const std::string others_before =
      Sql(db_, "SELECT * FROM user WHERE email != 'alice@example.org'") +
      Sql(db_, "SELECT * FROM alias") + Sql(db_, "SELECT * FROM token");

  // A dry run lists every row it would insert and changes nothing.
  const std::string dump_before = Sql(db_, ".dump");
  auto dry = UserRestoreRun({"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  for (const char* row :
       {"would insert user email=alice@example.org", "would insert alias email=al@example.org",
        "would insert token id=7", "would insert fetch id=3", "would insert manager"})
    EXPECT_NE(dry.out.find(row), std::string::npos) << row << "\n" << dry.out;
  EXPECT_EQ(Sql(db_, ".dump"), dump_before);
  EXPECT_FALSE(stdfs::exists(vol_ / ("mail/" + kAlice)));

  auto r = UserRestoreRun({"--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto j = Json(r);
  EXPECT_EQ(j["database"]["inserted"], 5);  // user, al@ alias, token, fetch, manager
  EXPECT_EQ(j["database"]["differs"], 1);   // team@: its live destination was edited
  bool team_reported = false;
  for (const auto& row : j["database"]["rows"])
    if (row["key"] == "email=team@example.org") {
      team_reported = true;
      EXPECT_EQ(row["outcome"], "differs");
      EXPECT_EQ(row["columns"], nlohmann::json::array({"destination"}));
    }
  EXPECT_TRUE(team_reported) << j.dump(1);
  for (const char* secret :
       {"alice-secret-hash", "token-secret-hash", "fetch-secret-password", "10.0.0.1"}) {
    EXPECT_EQ(r.out.find(secret), std::string::npos) << secret << " printed";
    EXPECT_EQ(r.err.find(secret), std::string::npos) << secret << " printed";
    EXPECT_EQ(dry.out.find(secret), std::string::npos) << secret << " printed";
  }

  // Her rows are back as they were; every other row keeps its live value.
  EXPECT_EQ(Dump("user") + Dump("token") + Dump("fetch") + Dump("manager"), alice_rows_);
  EXPECT_EQ(Sql(db_, "SELECT destination FROM alias WHERE email='al@example.org'"),
            "alice@example.org\n");
  EXPECT_EQ(Sql(db_, "SELECT destination FROM alias WHERE email='team@example.org'"),
            "bob@example.org\n");
  EXPECT_EQ(Sql(db_, "SELECT quota_bytes FROM user WHERE email='bob@example.org'"), "5000\n");
  EXPECT_EQ(Sql(db_, "SELECT count(*) FROM user WHERE email='carol@example.org'"), "1\n");
  EXPECT_EQ(Sql(db_, "SELECT count(*) FROM alias WHERE email='x@example.org'"), "1\n")
      << "malice@ is not alice@";
  EXPECT_EQ(Sql(db_, "PRAGMA integrity_check"), "ok\n");
  EXPECT_EQ(Sql(db_, "PRAGMA foreign_key_check"), "");

  // Her mailbox is back as it was (but for what Dovecot was still writing in tmp/, which a
  // backup leaves out by design).
  auto expected = alice_tree_;
  std::erase_if(expected, [](const auto& kv) { return kv.first.rfind("tmp/", 0) == 0; });
  EXPECT_EQ(DiffTrees(expected, ListTree(vol_ / ("mail/" + kAlice))), "");

  // Again: nothing to insert, nothing written.
  auto again = UserRestoreRun({"--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto j2 = Json(again);
  EXPECT_EQ(j2["database"]["inserted"], 0);
  EXPECT_EQ(j2["mail"]["files_written"], 0);
}

TEST_F(UserRestore, IntoAFolderAddsHerMissingMailToANewFolderAndHerRowsAsUsual) {
  // Her Sent folder is gone and her row changed live (a new password): the row is reported, not
  // rolled back, and the mail comes back into one new folder (several snapshot folders: each in
  // a subfolder).
  stdfs::remove_all(vol_ / ("mail/" + kAlice + "/.Sent"));
  Sql(db_, "UPDATE user SET password='new-hash' WHERE email='alice@example.org'");
  auto r = UserRestoreRun({"--into-folder", "Restored", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  auto j = Json(r);
  ASSERT_TRUE(j["into_folder"].is_object()) << j.dump(1);
  ASSERT_EQ(j["into_folder"]["folders"].size(), 1u) << "only Sent lacked messages";
  EXPECT_EQ(j["into_folder"]["folders"][0]["name"], "Restored.Sent");
  EXPECT_TRUE(stdfs::is_directory(vol_ / ("mail/" + kAlice + "/.Restored.Sent/cur")));
  EXPECT_EQ(j["database"]["inserted"], 0);
  EXPECT_EQ(Sql(db_, "SELECT password FROM user WHERE email='alice@example.org'"), "new-hash\n");
  bool reported = false;
  for (const auto& row : j["database"]["rows"])
    if (row["table"] == "user") {
      reported = true;
      EXPECT_EQ(row["outcome"], "differs");
      EXPECT_EQ(row["columns"], nlohmann::json::array({"password"}));
    }
  EXPECT_TRUE(reported);
}

TEST_F(UserRestore, UnknownUsersAndBadTableFilesAreRefusedAndNothingIsWritten) {
  const std::string dump = Sql(db_, ".dump");
  const auto tree = ListTree(vol_.path());
  auto nobody = RunMailvault(
      {"restore", "--repo", repo(), "--user", "nobody@example.org", "--target", vol_.path()});
  EXPECT_EQ(nobody.exit_code, 1);
  EXPECT_NE(nobody.err.find("matches nothing"), std::string::npos) << nobody.err;
  TempDir t("mvtables");
  WriteFile(t / "bad.tables", "user email\n");
  auto bad = UserRestoreRun({"--user-tables", t / "bad.tables"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("line 1"), std::string::npos) << bad.err;
  WriteFile(t / "bad2.tables", "user email maybe\n");
  auto bad2 = UserRestoreRun({"--user-tables", t / "bad2.tables"});
  EXPECT_EQ(bad2.exit_code, 2);
  EXPECT_NE(bad2.err.find("'maybe'"), std::string::npos) << bad2.err;
  auto nodb = UserRestoreRun({"--user-db", "data/nope.db"});
  EXPECT_EQ(nodb.exit_code, 1);
  EXPECT_NE(nodb.err.find("data/main.db"), std::string::npos)
      << "lists the databases: " << nodb.err;
  auto mixed = UserRestoreRun({"--folder", ".Sent"});
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_NE(mixed.err.find("--into-folder"), std::string::npos) << mixed.err;
  EXPECT_EQ(Sql(db_, ".dump"), dump);
  EXPECT_EQ(DiffTrees(tree, ListTree(vol_.path())), "");
}

TEST_F(UserRestore, TheShippedMailuDescriptionIsTheBuiltInOne) {
  // docs/user-tables/mailu.tables documents the built-in mapping: restoring with it gives the
  // same rows as without it.
  Sql(db_,
      "DELETE FROM token; DELETE FROM manager; DELETE FROM user WHERE email='alice@example.org'");
  auto with_file = UserRestoreRun({"--dry-run", "--json", "--user-tables",
                                   MAILVAULT_SOURCE_DIR "/docs/user-tables/mailu.tables"});
  auto built_in = UserRestoreRun({"--dry-run", "--json"});
  ASSERT_EQ(with_file.exit_code, 0) << with_file.err;
  ASSERT_EQ(built_in.exit_code, 0) << built_in.err;
  EXPECT_EQ(Json(with_file)["database"]["rows"], Json(built_in)["database"]["rows"]);
  EXPECT_EQ(Json(built_in)["database"]["inserted"], 3);  // her user row, token 7, manager
}

TEST(UserRestorePostfixadmin, TheShippedDescriptionRestoresAPostfixadminUser) {
  TempDir vol("mvpfa"), repo("mvpfarepo");
  stdfs::create_directories(vol / "data");
  const std::string db = vol / "data/postfix.db";
  ASSERT_EQ(Shell("sqlite3 '" + db + "' \"" +
                  "CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, password TEXT, "
                  "name TEXT, quota BIGINT, domain TEXT, active INT);"
                  "CREATE TABLE alias (address VARCHAR(255) PRIMARY KEY, goto TEXT, domain TEXT, "
                  "active INT);"
                  "CREATE TABLE quota2 (username VARCHAR(100) PRIMARY KEY, bytes BIGINT, "
                  "messages INT);"
                  "CREATE TABLE vacation (email VARCHAR(255) PRIMARY KEY, subject TEXT, body TEXT);"
                  "INSERT INTO mailbox VALUES ('alice@example.org', 'pw-a', 'Alice', 0, "
                  "'example.org', 1), ('bob@example.org', 'pw-b', 'Bob', 0, 'example.org', 1);"
                  "INSERT INTO alias VALUES ('alice@example.org', 'alice@example.org', "
                  "'example.org', 1), ('sales@example.org', 'bob@example.org,alice@example.org', "
                  "'example.org', 1);"
                  "INSERT INTO quota2 VALUES ('alice@example.org', 12345, 9);\"")
                .exit_code,
            0);
  ASSERT_EQ(RunMailvault({"init", "--repo", repo / "r"}).exit_code, 0);
  ASSERT_EQ(
      RunMailvault({"backup", "--repo", repo / "r", "--source", "data=" + vol / "data"}).exit_code,
      0);
  auto rows = [&] {
    return Sql(db, "SELECT * FROM mailbox ORDER BY username") +
           Sql(db, "SELECT * FROM alias ORDER BY address") +
           Sql(db, "SELECT * FROM quota2 ORDER BY username");
  };
  const std::string before = rows();
  Sql(db,
      "DELETE FROM mailbox WHERE username='alice@example.org'; DELETE FROM alias; "
      "DELETE FROM quota2");
  auto r =
      RunMailvault({"restore", "--repo", repo / "r", "--user", "alice@example.org", "--user-tables",
                    MAILVAULT_SOURCE_DIR "/docs/user-tables/postfixadmin.tables", "--user-db",
                    "data/postfix.db", "--target", vol.path(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(Json(r)["database"]["inserted"], 4);  // mailbox, two aliases, quota2
  EXPECT_EQ(Sql(db, "SELECT address FROM alias ORDER BY address"),
            "alice@example.org\nsales@example.org\n");
  EXPECT_EQ(rows(), before);
}

}  // namespace
}  // namespace mv::testing
