// The one place a repository argument becomes a backend (storage/backend.h): a directory gives
// the local backend, "s3:…" the S3 one (issue #6). Lives beside the S3 code because it is the
// layer that may see both.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "storage/backend.h"
#include "storage/env.h"
#include "storage/status.h"

namespace mv::storage::s3 {

struct S3Options {
  std::string region;            // --s3-region; empty: $AWS_DEFAULT_REGION, else us-east-1
  std::string credentials_file;  // --s3-credentials-file; empty: the environment
  std::string profile;           // --s3-profile; empty: "default"
  bool insecure_http = false;    // --s3-insecure-http: plain http to a host that is not loopback
  std::string cache_dir;         // --cache-dir; empty: $XDG_CACHE_HOME/mailvault,
                                 // ~/.cache/mailvault, or /var/cache/mailvault for root
  bool no_cache = false;         // read everything from S3 (check --read-data proves the remote)
};

// The cache directory `opts` names: --cache-dir, else the default above.
std::string CacheDir(const S3Options& opts);

// Opens the backend `repo` names. For S3 it parses the URL and loads the credentials (named
// errors for each, never quoting a secret) and makes its scratch directory under the cache
// directory; it sends no request. Index files, manifests and tree packs are cached under the
// cache directory (storage/cached_backend.h) unless `no_cache`. `getenv` reads the environment
// (tests pass their own).
Result<std::unique_ptr<Backend>> OpenBackend(
    const std::string& repo, const S3Options& opts, Env* env = Env::Default(),
    const std::function<const char*(const char*)>& getenv = nullptr);

}  // namespace mv::storage::s3
