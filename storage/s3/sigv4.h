// AWS Signature Version 4 for S3 requests, signed by our own code (not libcurl's
// CURLOPT_AWS_SIGV4, whose behaviour differs between curl releases:
// ../shared/notes/s3-ceph-rgw.md). The algorithm:
// https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html. Pure functions of
// their inputs (no clock, no network), so they are tested offline against AWS's published examples
// (tests/sigv4_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mv::storage::s3 {

// SHA-256 of a stream of bytes, as lowercase hex (the x-amz-content-sha256 of a payload).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  std::string HexDigest();  // ends the stream

 private:
  void* ctx_;
};
std::string Sha256Hex(std::string_view data);

// The hash of an empty payload (GET, HEAD, DELETE).
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// RFC 3986 percent-encoding as SigV4 wants it: every byte except A-Z a-z 0-9 - _ . ~ becomes
// %XY (upper-case hex, UTF-8 bytes one by one); '/' is kept when `keep_slash` (an object key's
// path). S3 paths are encoded once, never twice.
std::string UriEncode(std::string_view s, bool keep_slash);

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

struct SignInput {
  std::string method;  // GET, PUT, HEAD, DELETE, POST
  std::string path;    // decoded: "/bucket/key with space" (UriEncode'd by the signer)
  // Decoded names and values; a parameter without a value ("?uploads") has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  // Every header that is sent and signed, host and x-amz-date among them (names in any case).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256;  // hex of the body, or "UNSIGNED-PAYLOAD"
  std::string region;          // us-east-1
  std::string service = "s3";
  std::string amz_date;  // YYYYMMDDTHHMMSSZ, the request's x-amz-date
};

struct SignOutput {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;        // hex
  std::string authorization;    // the Authorization header's value
  std::string canonical_query;  // the query string to send (encoded, sorted)
  std::string canonical_path;   // the path to send (encoded)
};

SignOutput SignV4(const SignInput& in, const Credentials& creds);

// "20130524T000000Z" for a time in seconds since the epoch (UTC).
std::string AmzDate(int64_t unix_seconds);

}  // namespace mv::storage::s3
