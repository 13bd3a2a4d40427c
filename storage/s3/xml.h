// The parts of S3's XML answers the client reads (ListObjectsV2, errors, multipart upload IDs),
// parsed with expat. Every parser takes untrusted bytes from the network: a malformed, truncated
// or hostile document fails with kCorruption naming what was expected; nothing is assumed
// about sizes (tests/fuzz/s3_xml_fuzz.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace mv::storage::s3 {

struct ListedObject {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without quotes
};

// One page of ListObjectsV2 (GET /bucket?list-type=2).
struct ListPage {
  std::vector<ListedObject> objects;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken, when truncated
};

Result<ListPage> ParseListObjectsV2(std::string_view xml);

// An <Error> document. S3 sends one with 4xx/5xx answers, and CompleteMultipartUpload may send
// one with 200. Fields are empty when `xml` is not one (an empty body, a proxy's HTML page).
struct ErrorBody {
  std::string code;  // NoSuchBucket, SignatureDoesNotMatch, SlowDown, ...
  std::string message;
  std::string request_id;
};
ErrorBody ParseError(std::string_view xml);

// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> ParseUploadId(std::string_view xml);

}  // namespace mv::storage::s3
