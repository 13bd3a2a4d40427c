// Header records (docs/FORMAT.md §15) are read by a JSON reader of their own, not a json
// document (storage/header_index.cpp): every field a backup writes comes back byte for byte,
// whatever bytes the message had; JSON that another writer may produce (escapes, surrogate pairs,
// unknown keys, whitespace) reads the same; a damaged body is refused with the record's path.
#include <cstdint>
#include <limits>

#include "storage/header_index.h"
#include "storage/repository.h"
#include "storage/sealed.h"
#include "test_util.h"

namespace mv::testing {
namespace {

constexpr std::string_view kMagic{"MVHEADR\x01", 8};

std::string Record(const std::string& body, int messages) {
  return storage::Seal(kMagic,
                       "{\"kind\":\"headers\",\"version\":1,\"time_ns\":1,\"messages\":" +
                           std::to_string(messages) + "}",
                       body, 1);
}

storage::BlobId Id(char c) {
  storage::BlobId id;
  EXPECT_TRUE(storage::BlobId::FromHex(std::string(32, c), &id));
  return id;
}

TEST(HeaderRecord, EveryFieldABackupWritesComesBackByteForByte) {
  TempDir dir("mvhdr");
  auto init = RunMailvault({"init", "--repo", dir / "r"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  auto repo = storage::Repository::Open(dir / "r");
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();

  std::vector<storage::MessageHeaders> in(3);
  in[0].content = Id('a');
  in[0].size = std::numeric_limits<uint64_t>::max();
  in[0].date_unix = std::numeric_limits<int64_t>::min();
  in[0].subject = std::string("quote \" backslash \\ slash / tab \t newline \n nul ") + '\0' +
                  " bell \x07 del \x7f";
  in[0].from = "J\xc3\xbcrgen M\xc3\xbcller <j@example.de>";  // UTF-8
  in[0].to = "\xf0\x9f\x93\xa7 mail@example.org";             // a 4-byte character
  in[0].message_id = "<a@b>";
  in[0].date = "Tue, 14 Nov 2023 22:13:20 +0000";
  in[1].content = Id('b');
  in[1].size = 0;
  in[1].date_unix = std::numeric_limits<int64_t>::max();
  in[1].subject = std::string(70000, 'x');
  in[2].content = Id('c');  // every text field empty, no date
  in[2].size = 7;
  ASSERT_TRUE(storage::RecordHeaders(**repo, 1, in).ok());

  std::vector<storage::MessageHeaders> out;
  std::vector<std::string> damaged;
  ASSERT_TRUE(
      storage::ForEachRecordedHeaders(
          **repo, [&](storage::MessageHeaders&& m) { out.push_back(std::move(m)); }, &damaged)
          .ok());
  EXPECT_TRUE(damaged.empty());
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); i++) {
    SCOPED_TRACE(i);
    EXPECT_EQ(out[i].content, in[i].content);
    EXPECT_EQ(out[i].size, in[i].size);
    EXPECT_EQ(out[i].date_unix, in[i].date_unix);
    EXPECT_EQ(out[i].date, in[i].date);
    EXPECT_EQ(out[i].from, in[i].from);
    EXPECT_EQ(out[i].to, in[i].to);
    EXPECT_EQ(out[i].subject, in[i].subject);
    EXPECT_EQ(out[i].message_id, in[i].message_id);
  }
}

TEST(HeaderRecord, JsonAnotherWriterMayProduceReadsTheSame) {
  std::string body =
      " { \"future\" : {\"a\":[1,2.5e3,true,false,null,\"x\"]},\r\n \"messages\" : [ {"
      "\"c\":\"" +
      std::string(32, 'A') +
      "\", \"s\": 12, \"t\": -5, \"x-new\": [[]],"
      "\"j\":\"caf\\u00e9 \\ud83d\\ude00 \\/ \\\"q\\\" \\b\\f\\n\\r\\t\","
      "\"f\":\"\\u0041\", \"j\":\"the last of two wins\"} ] , \"more\": -0.0e+1 }\n";
  auto r = storage::DecodeHeaderRecord(Record(body, 1), "headers/x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].content, Id('a'));
  EXPECT_EQ((*r)[0].size, 12u);
  EXPECT_EQ((*r)[0].date_unix, -5);
  EXPECT_EQ((*r)[0].from, "A");
  EXPECT_EQ((*r)[0].subject, "the last of two wins");
  std::string escapes = "{\"messages\":[{\"c\":\"" + std::string(32, 'b') +
                        "\",\"s\":1,\"j\":\"caf\\u00e9 \\ud83d\\ude00 \\/ \\\"q\\\" "
                        "\\b\\f\\n\\r\\t\"}]}";
  auto e = storage::DecodeHeaderRecord(Record(escapes, 1), "headers/y");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)[0].subject, "caf\xc3\xa9 \xf0\x9f\x98\x80 / \"q\" \b\f\n\r\t");
  auto empty = storage::DecodeHeaderRecord(Record("{\"messages\":[]}", 0), "headers/z");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
}

TEST(HeaderRecord, ADamagedBodyIsRefusedNamingTheRecord) {
  const std::string c = "\"c\":\"" + std::string(32, 'a') + "\"";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"messages\":[{" + c + "}]}", "without \"s\""},
      {"{\"messages\":[{\"s\":1}]}", "without \"c\""},
      {"{\"messages\":[{\"c\":\"abc\",\"s\":1}]}", "32 hex"},
      {"{\"messages\":[{" + c + ",\"s\":1.5}]}", "not an integer"},
      {"{\"messages\":[{" + c + ",\"s\":-1}]}", "not an integer"},
      {"{\"messages\":[{" + c + ",\"s\":18446744073709551616}]}", "not an integer"},
      {"{\"messages\":[{" + c + ",\"s\":01}]}", "not a number"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":5}]}", "not a string"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"\\ud800\"}]}", "surrogate"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"\\udc00\"}]}", "surrogate"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"\xc3\x28\"}]}", "UTF-8"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"\xed\xa0\x80\"}]}", "UTF-8"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"a\nb\"}]}", "control character"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"\\x\"}]}", "escape"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"j\":\"open}]}", "not closed"},
      {"{\"messages\":[{" + c + ",\"s\":1}]} x", "trailing"},
      {"{\"messages\":[{" + c + ",\"s\":1},]}", "'{' expected"},
      {"{\"messages\":[{" + c + ",\"s\":1,\"z\":}]}", "value expected"},
      {"{\"other\":1}", "no \"messages\""},
      {"{\"messages\":[{" + c + ",\"s\":1,\"z\":" + std::string(300, '[') + std::string(300, ']') +
           "}]}",
       "nested deeper"},
      {"", "ends early"},
  };
  for (const auto& [body, why] : bad) {
    auto r = storage::DecodeHeaderRecord(Record(body, 1), "/repo/headers/0123");
    ASSERT_FALSE(r.ok()) << body.substr(0, 200);
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().ToString().find(why), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().ToString().find("/repo/headers/0123"), std::string::npos)
        << r.status().ToString();
  }
  auto count = storage::DecodeHeaderRecord(Record("{\"messages\":[]}", 3), "/repo/headers/1");
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.status().ToString().find("header says 3"), std::string::npos)
      << count.status().ToString();
}

}  // namespace
}  // namespace mv::testing
