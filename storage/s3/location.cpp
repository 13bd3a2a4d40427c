// S3 repository URLs (storage/s3/location.h).
#include "storage/s3/location.h"

namespace mv::storage::s3 {
namespace {

constexpr std::string_view kForm = "s3:[https://]<endpoint>/<bucket>[/<prefix>]";

// `url` as an error may show it: credentials someone put before an '@' are masked.
std::string Shown(std::string_view url) {
  std::string s(url);
  size_t start = s.find("://");
  start = start == std::string::npos ? 3 : start + 3;
  size_t at = s.find('@', start), slash = s.find('/', start);
  if (at != std::string::npos && (slash == std::string::npos || at < slash))
    s.replace(start, at - start, "***");
  return s;
}

Status Bad(std::string_view url, const std::string& why) {
  return Status::Invalid("repository URL '" + Shown(url) + "': " + why + " (the form is " +
                         std::string(kForm) +
                         ", e.g. s3:https://s3.example.net/mail-backups/mailu)");
}

bool IsLoopbackHost(std::string_view hostport) {
  std::string_view h = hostport;
  if (!h.empty() && h.front() == '[') {  // [::1]:port
    size_t end = h.find(']');
    return end != std::string_view::npos && h.substr(1, end - 1) == "::1";
  }
  h = h.substr(0, h.find(':'));
  if (h == "localhost") return true;
  if (h.substr(0, 4) != "127.") return false;
  int dots = 0;
  for (char c : h) {
    if (c == '.')
      dots++;
    else if (c < '0' || c > '9')
      return false;
  }
  return dots == 3;
}

bool ValidBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  for (char c : b)
    if (!alnum(c) && c != '.' && c != '-') return false;
  return true;
}

}  // namespace

bool IsS3Url(std::string_view repo) { return repo.substr(0, 3) == "s3:"; }

std::string Location::Key(std::string_view path) const {
  return prefix.empty() ? std::string(path) : prefix + "/" + std::string(path);
}

std::string Location::Url() const {
  return "s3:" + scheme + "://" + host + "/" + bucket + (prefix.empty() ? "" : "/" + prefix);
}

Result<Location> ParseLocation(std::string_view url, bool allow_insecure_http) {
  if (!IsS3Url(url)) return Bad(url, "it does not start with s3:");
  std::string_view rest = url.substr(3);
  Location loc;
  loc.scheme = "https";
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    loc.scheme = "http";
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return Bad(url, "only https:// and http:// endpoints are supported");
  }
  if (rest.find_first_of("?#") != std::string_view::npos)
    return Bad(url, "a query or fragment is not part of a repository URL");
  size_t slash = rest.find('/');
  loc.host = std::string(rest.substr(0, slash));
  if (loc.host.empty()) return Bad(url, "the endpoint (host) is missing");
  if (loc.host.find('@') != std::string::npos)
    return Bad(url,
               "credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and "
               "AWS_SECRET_ACCESS_KEY or use --s3-credentials-file");
  loc.loopback = IsLoopbackHost(loc.host);
  if (slash == std::string_view::npos || slash + 1 >= rest.size())
    return Bad(url, "the bucket is missing");
  rest.remove_prefix(slash + 1);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  slash = rest.find('/');
  loc.bucket = std::string(rest.substr(0, slash));
  if (!ValidBucket(loc.bucket))
    return Bad(url, "bucket '" + loc.bucket +
                        "' is not a valid S3 bucket name: 3 to 63 of a-z, 0-9, '.' and '-', "
                        "starting and ending with a letter or digit");
  if (slash != std::string_view::npos) {
    loc.prefix = std::string(rest.substr(slash + 1));
    if (loc.prefix.find("//") != std::string::npos || loc.prefix.empty())
      return Bad(url, "the prefix '" + loc.prefix + "' has an empty path segment");
  }
  if (loc.scheme == "http" && !loc.loopback && !allow_insecure_http)
    return Bad(url, "plain http to '" + loc.host +
                        "' would send the backup unencrypted over the network; use https:// "
                        "(or --s3-insecure-http if the network is trusted)");
  return loc;
}

}  // namespace mv::storage::s3
