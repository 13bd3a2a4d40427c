#include "storage/s3/open.h"

#include <unistd.h>

#include <cstdlib>

#include "storage/cached_backend.h"
#include "storage/fs.h"
#include "storage/hash.h"
#include "storage/local_backend.h"
#include "storage/s3/backend.h"
#include "storage/s3/credentials.h"
#include "storage/s3/location.h"

namespace mv::storage::s3 {
namespace {

std::string DefaultCacheDir(const std::function<const char*(const char*)>& getenv) {
  if (const char* x = getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/mailvault";
  if (::geteuid() == 0) return "/var/cache/mailvault";
  if (const char* h = getenv("HOME"); h && *h) return std::string(h) + "/.cache/mailvault";
  return "/tmp/mailvault-cache-" + std::to_string(::geteuid());
}

}  // namespace

std::string CacheDir(const S3Options& opts) {
  if (!opts.cache_dir.empty()) return opts.cache_dir;
  return DefaultCacheDir([](const char* v) { return std::getenv(v); });
}

Result<std::unique_ptr<Backend>> OpenBackend(
    const std::string& repo, const S3Options& opts, Env* env,
    const std::function<const char*(const char*)>& getenv_in) {
  if (!IsS3Url(repo)) return std::unique_ptr<Backend>(std::make_unique<LocalBackend>(repo, env));
  std::function<const char*(const char*)> getenv =
      getenv_in ? getenv_in : [](const char* n) { return std::getenv(n); };
  MV_ASSIGN_OR_RETURN(Location loc, ParseLocation(repo, opts.insecure_http));
  MV_ASSIGN_OR_RETURN(Credentials creds,
                      LoadCredentials(opts.credentials_file,
                                      opts.profile.empty() ? "default" : opts.profile, getenv));
  std::string region = opts.region;
  if (region.empty()) {
    const char* r = getenv("AWS_DEFAULT_REGION");
    region = r && *r ? r : "us-east-1";
  }
  // One scratch directory per repository URL (packs are written there before their upload).
  std::string url = loc.Url();
  std::string cache = opts.cache_dir.empty() ? DefaultCacheDir(getenv) : opts.cache_dir;
  std::string mine = cache + "/" + PlainHash(url.data(), url.size()).Hex().substr(0, 16);
  std::string scratch = mine + "/tmp";
  MV_RETURN_IF_ERROR(fs::MakeDirs(scratch, 0700, env));
  auto s3 =
      std::make_unique<S3Backend>(std::move(loc), std::move(creds), std::move(region), scratch);
  if (opts.no_cache) return std::unique_ptr<Backend>(std::move(s3));
  return std::unique_ptr<Backend>(
      std::make_unique<CachedBackend>(std::move(s3), mine + "/objects", env));
}

}  // namespace mv::storage::s3
