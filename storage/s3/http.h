// One signed S3 request over HTTP(S) with libcurl (issue #6): path-style addressing
// (https://host/bucket/key), SigV4 with the payload hash signed. No retries here: the caller
// decides what is worth another try (docs/S3.md §4).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/s3/location.h"
#include "storage/s3/sigv4.h"
#include "storage/status.h"

namespace mv::storage::s3 {

struct Request {
  std::string method = "GET";  // GET, PUT, HEAD, DELETE, POST
  std::string key;             // the object key (decoded); empty for the bucket itself
  std::vector<std::pair<std::string, std::string>> query;    // decoded
  std::vector<std::pair<std::string, std::string>> headers;  // sent and signed
  std::string_view body;                                     // PUT and POST
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class Client {
 public:
  // `now` gives the time in seconds since the epoch for x-amz-date (tests pass a skewed clock).
  Client(Location loc, Credentials creds, std::string region,
         std::function<int64_t()> now = nullptr);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `r` once. A transport failure (no connection, timeout, reset) is kIOError naming the
  // endpoint; any HTTP answer, including 4xx and 5xx, is a Response.
  Result<Response> Send(const Request& r);

  const Location& location() const { return loc_; }

 private:
  Location loc_;
  Credentials creds_;
  std::string region_;
  std::function<int64_t()> now_;
  void* curl_;  // one easy handle: connections are reused between requests
};

// "NoSuchBucket: The specified bucket does not exist (HTTP 404)" from an answer, for messages.
std::string DescribeError(const Response& r);

}  // namespace mv::storage::s3
