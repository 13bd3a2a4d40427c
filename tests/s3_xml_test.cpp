// S3's XML answers (storage/s3/xml.h): documents as Ceph RGW and AWS send them, and what the
// client says when one is broken. The real server's answers go through the same parsers in the
// S3 tests.
#include "storage/s3/xml.h"

#include <gtest/gtest.h>

namespace mv::storage::s3 {
namespace {

// A ListObjectsV2 page as AWS documents it (with the namespace, quoted ETags, a key with an
// entity and UTF-8).
constexpr char kListPage[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>mail-backups</Name><Prefix>mailu/packs/</Prefix><KeyCount>2</KeyCount>
  <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>mailu/packs/ab/ab12.pack</Key><LastModified>2026-11-30T03:00:01.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>33554432</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>mailu/snapshots/a b+&amp;ü</Key><ETag>"x"</ETag><Size>0</Size></Contents>
</ListBucketResult>)";

TEST(S3Xml, AListingPageGivesKeysSizesEtagsAndTheNextToken) {
  auto page = ParseListObjectsV2(kListPage);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "mailu/packs/ab/ab12.pack");
  EXPECT_EQ(page->objects[0].size, 33554432u);
  EXPECT_EQ(page->objects[0].etag, "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(page->objects[1].key, "mailu/snapshots/a b+&\xC3\xBC");
  EXPECT_EQ(page->objects[1].size, 0u);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, AnEmptyLastPageHasNoObjectsAndIsNotTruncated) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->truncated);
}

TEST(S3Xml, ABrokenListingFailsSayingWhatIsWrong) {
  struct Case {
    std::string xml, says;
  } cases[] = {
      {std::string(kListPage).substr(0, 300), "malformed"},  // cut off mid-answer
      {"<html><body>502 Bad Gateway</body></html>", "not a ListBucketResult"},
      {"", "malformed"},
      {"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
       "object size '-1' that is not a number"},
      {"<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size></Contents>"
       "</ListBucketResult>",
       "not a number"},
      {"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
       "object without a key"},
      {"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
       "no NextContinuationToken"},
      {"<ListBucketResult><Contents><Key>" + std::string(70000, 'k') +
           "</Key></Contents></ListBucketResult>",
       "more than 64 KiB"},
  };
  for (const auto& c : cases) {
    auto page = ParseListObjectsV2(c.xml);
    ASSERT_FALSE(page.ok()) << c.xml.substr(0, 80);
    EXPECT_EQ(page.status().code(), Code::kCorruption);
    EXPECT_NE(page.status().message().find(c.says), std::string::npos) << page.status().message();
  }
}

TEST(S3Xml, EntityExpansionIsNotABomb) {
  // The "billion laughs": expat refuses the amplification instead of expanding it.
  std::string xml = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">";
  std::string prev = "a";
  for (int i = 0; i < 9; i++) {
    std::string name = "e" + std::to_string(i);
    xml += "<!ENTITY " + name + " \"";
    for (int j = 0; j < 10; j++) xml += "&" + prev + ";";
    xml += "\">";
    prev = name;
  }
  xml += "]><ListBucketResult><Contents><Key>&" + prev + ";</Key></Contents></ListBucketResult>";
  auto page = ParseListObjectsV2(xml);
  ASSERT_FALSE(page.ok());
  EXPECT_NE(page.status().message().find("amplification"), std::string::npos)
      << page.status().message();
}

TEST(S3Xml, AnErrorDocumentGivesCodeMessageAndRequestId) {
  ErrorBody e = ParseError(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code>"
      "<Message>The specified bucket does not exist</Message><BucketName>mv</BucketName>"
      "<RequestId>tx0000-rgw</RequestId><HostId>h</HostId></Error>");
  EXPECT_EQ(e.code, "NoSuchBucket");
  EXPECT_EQ(e.message, "The specified bucket does not exist");
  EXPECT_EQ(e.request_id, "tx0000-rgw");
  // Not an S3 error (a proxy's page, nothing, garbage): empty, so the caller reports the status.
  EXPECT_EQ(ParseError("<html><body>503</body></html>").code, "");
  EXPECT_EQ(ParseError("").code, "");
  EXPECT_EQ(ParseError("<Error><Code>SlowDown").code, "");
}

TEST(S3Xml, AMultipartUploadIdIsReadAndItsAbsenceIsAnError) {
  auto id = ParseUploadId(
      "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Bucket>b</Bucket><Key>packs/ab/x</Key><UploadId>2~iCw_lDY8VoYvdPRxLyQhh</UploadId>"
      "</InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, "2~iCw_lDY8VoYvdPRxLyQhh");
  auto none = ParseUploadId("<InitiateMultipartUploadResult></InitiateMultipartUploadResult>");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no UploadId"), std::string::npos);
}

}  // namespace
}  // namespace mv::storage::s3
