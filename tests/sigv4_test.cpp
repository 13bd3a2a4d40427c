// The SigV4 signer (storage/s3/sigv4.h) against AWS's published examples: the four requests of
// "Signature Calculations for the Authorization Header" in the S3 API reference
// (examplebucket, AKIAIOSFODNN7EXAMPLE, 20130524T000000Z), whose canonical requests, string-to-sign
// hashes and signatures AWS prints, and two cases of the Signature Version 4 test suite
// (AKIDEXAMPLE, 20150830T123600Z, service "service"). A real server checks the same signer in
// the S3 tests; these pin it to AWS's own numbers offline.
#include "storage/s3/sigv4.h"

#include <gtest/gtest.h>

namespace mv::storage::s3 {
namespace {

const Credentials kS3Example{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
constexpr char kScope[] = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

SignInput S3Example(std::string method, std::string path) {
  SignInput in;
  in.method = std::move(method);
  in.path = std::move(path);
  in.region = "us-east-1";
  in.amz_date = "20130524T000000Z";
  in.payload_sha256 = std::string(kEmptyPayloadSha256);
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-date", "20130524T000000Z"},
                {"x-amz-content-sha256", in.payload_sha256}};
  return in;
}

// The last line of the string to sign: the hash of the canonical request.
std::string HashLine(const SignOutput& out) {
  return out.string_to_sign.substr(out.string_to_sign.rfind('\n') + 1);
}

TEST(SigV4, GetObjectWithARangeMatchesAwsExample) {
  SignInput in = S3Example("GET", "/test.txt");
  in.headers.push_back({"Range", "bytes=0-9"});
  SignOutput out = SignV4(in, kS3Example);
  EXPECT_EQ(
      out.canonical_request,
      "GET\n/test.txt\n\n"
      "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\n"
      "host;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(out.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(out.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(out.authorization,
            std::string("AWS4-HMAC-SHA256 Credential=") + kScope +
                ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, PutObjectWithADollarInTheKeyMatchesAwsExample) {
  SignInput in = S3Example("PUT", "/test$file.text");
  in.payload_sha256 = Sha256Hex("Welcome to Amazon S3.");
  ASSERT_EQ(in.payload_sha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                {"x-amz-date", "20130524T000000Z"},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                {"x-amz-content-sha256", in.payload_sha256}};
  SignOutput out = SignV4(in, kS3Example);
  EXPECT_EQ(out.canonical_path, "/test%24file.text");
  EXPECT_EQ(HashLine(out), "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(out.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  EXPECT_NE(out.authorization.find(
                "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"),
            std::string::npos)
      << out.authorization;
}

TEST(SigV4, AQueryParameterWithoutAValueIsSignedAsNameEqualsMatchesAwsExample) {
  SignInput in = S3Example("GET", "/");
  in.query = {{"lifecycle", ""}};
  SignOutput out = SignV4(in, kS3Example);
  EXPECT_EQ(out.canonical_query, "lifecycle=");
  EXPECT_EQ(HashLine(out), "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(out.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, QueryParametersAreSortedMatchesAwsListObjectsExample) {
  SignInput in = S3Example("GET", "/");
  in.query = {{"prefix", "J"}, {"max-keys", "2"}};  // given out of order
  SignOutput out = SignV4(in, kS3Example);
  EXPECT_EQ(out.canonical_query, "max-keys=2&prefix=J");
  EXPECT_EQ(HashLine(out), "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(out.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

SignInput SuiteCase() {
  SignInput in;
  in.method = "GET";
  in.path = "/";
  in.region = "us-east-1";
  in.service = "service";
  in.amz_date = "20150830T123600Z";
  in.payload_sha256 = std::string(kEmptyPayloadSha256);
  in.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  return in;
}

TEST(SigV4, ARepeatedHeaderIsJoinedInOrderMatchesTheTestSuite) {
  SignInput in = SuiteCase();  // get-header-key-duplicate
  in.headers.push_back({"My-Header1", "value2"});
  in.headers.push_back({"My-Header1", "value2"});
  in.headers.push_back({"My-Header1", "value1"});
  SignOutput out = SignV4(in, kSuite);
  EXPECT_NE(out.canonical_request.find("\nmy-header1:value2,value2,value1\n"), std::string::npos)
      << out.canonical_request;
  EXPECT_EQ(out.signature, "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

TEST(SigV4, HeaderValuesAreTrimmedAndRunsOfSpacesCollapsedMatchesTheTestSuite) {
  SignInput in = SuiteCase();  // get-header-value-multiline, its value as the suite unfolds it
  in.headers.push_back({"My-Header1", "  value1,value2,value3  "});
  EXPECT_EQ(SignV4(in, kSuite).signature,
            "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790");
  in.headers.back().second = "a   b \t c";
  EXPECT_NE(SignV4(in, kSuite).canonical_request.find("\nmy-header1:a b c\n"), std::string::npos);
}

TEST(SigV4, KeysWithSpacesPlusEqualsAndUtf8AreEncodedOnceAndSlashesKept) {
  EXPECT_EQ(UriEncode("/mail backups/a+b=c/ü.pack", true), "/mail%20backups/a%2Bb%3Dc/%C3%BC.pack");
  EXPECT_EQ(UriEncode("packs/", false), "packs%2F");
  EXPECT_EQ(UriEncode("A-Z_a.z~09", false), "A-Z_a.z~09");
  EXPECT_EQ(UriEncode("%41", true), "%2541");  // an already-encoded key is not taken as such
  SignInput in = S3Example("GET", "/bucket/a b");
  in.query = {{"prefix", "snapshots/ä b+"}, {"list-type", "2"}};
  SignOutput out = SignV4(in, kS3Example);
  EXPECT_EQ(out.canonical_path, "/bucket/a%20b");
  EXPECT_EQ(out.canonical_query, "list-type=2&prefix=snapshots%2F%C3%A4%20b%2B");
}

TEST(SigV4, TheDateAndThePayloadHashAreWhatS3Expects) {
  EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(AmzDate(1440938160), "20150830T123600Z");
  EXPECT_EQ(Sha256Hex(""), kEmptyPayloadSha256);
  Sha256 h;  // a payload hashed in pieces as a pack is read
  h.Update("Welcome to ", 11);
  h.Update("Amazon S3.", 10);
  EXPECT_EQ(h.HexDigest(), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

}  // namespace
}  // namespace mv::storage::s3
