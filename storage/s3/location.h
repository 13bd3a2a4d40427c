// Where an S3 repository lives, from restic's URL form (issue #6):
//   s3:https://s3.example.net/mail-backups/mailu     s3:<endpoint>/<bucket>[/<prefix>]
//   s3:s3.example.net/mail-backups                   no scheme: https
//   s3:http://127.0.0.1:7480/mail-backups            plain http: loopback only, unless allowed
#pragma once

#include <string>
#include <string_view>

#include "storage/status.h"

namespace mv::storage::s3 {

struct Location {
  std::string scheme;  // "https" or "http"
  std::string host;    // as sent in Host: "s3.example.net", "127.0.0.1:7480", "[::1]:7480"
  std::string bucket;
  std::string prefix;  // "" or "mailu/nightly": no leading or trailing '/'
  bool loopback = false;

  // The key of a repository file: prefix + "/" + `path` ("config", "packs/ab/…").
  std::string Key(std::string_view path) const;
  // s3:https://host/bucket/prefix, the form the operator wrote (normalized).
  std::string Url() const;
};

// True for a repository argument that names S3 ("s3:…").
bool IsS3Url(std::string_view repo);

// Parses an s3: URL. Fails (kInvalidArgument, naming the value and what is accepted) on a
// missing bucket, a bucket name S3 refuses (3-63 of a-z 0-9 . -, starting and ending with a
// letter or digit), an empty prefix segment ("a//b"), a query or fragment, or plain http to a
// host that is not loopback while `allow_insecure_http` is false (--s3-insecure-http).
Result<Location> ParseLocation(std::string_view url, bool allow_insecure_http);

}  // namespace mv::storage::s3
