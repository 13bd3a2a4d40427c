// One signed S3 request (storage/s3/http.h).
#include "storage/s3/http.h"

#include <curl/curl.h>

#include <chrono>
#include <cstring>
#include <mutex>

#include "storage/s3/xml.h"

namespace mv::storage::s3 {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

size_t OnHeader(char* p, size_t size, size_t n, void* out) {
  std::string_view line(p, size * n);
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
      v.remove_suffix(1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = std::string(v);
  }
  return size * n;
}

struct Upload {
  std::string_view data;
  size_t off = 0;
};

size_t OnRead(char* p, size_t size, size_t n, void* in) {
  auto* u = static_cast<Upload*>(in);
  size_t k = std::min(size * n, u->data.size() - u->off);
  std::memcpy(p, u->data.data() + u->off, k);
  u->off += k;
  return k;
}

}  // namespace

Client::Client(Location loc, Credentials creds, std::string region, std::function<int64_t()> now)
    : loc_(std::move(loc)),
      creds_(std::move(creds)),
      region_(std::move(region)),
      now_(std::move(now)) {
  GlobalInit();
  curl_ = curl_easy_init();
  if (!now_)
    now_ = [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };
}

Client::~Client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<Response> Client::Send(const Request& r) {
  auto* curl = static_cast<CURL*>(curl_);
  if (!curl) return Status::IOError("cannot create an HTTP handle (out of memory)");
  SignInput in;
  in.method = r.method;
  in.path = "/" + loc_.bucket + (r.key.empty() ? "" : "/" + r.key);
  in.query = r.query;
  in.region = region_;
  in.amz_date = AmzDate(now_());
  in.payload_sha256 = Sha256Hex(r.body);
  in.headers = r.headers;
  in.headers.push_back({"host", loc_.host});
  in.headers.push_back({"x-amz-date", in.amz_date});
  in.headers.push_back({"x-amz-content-sha256", in.payload_sha256});
  SignOutput sig = SignV4(in, creds_);

  std::string url = loc_.scheme + "://" + loc_.host + sig.canonical_path +
                    (sig.canonical_query.empty() ? "" : "?" + sig.canonical_query);
  curl_slist* list = nullptr;
  for (const auto& [k, v] : in.headers)
    if (k != "host") list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, ("Authorization: " + sig.authorization).c_str());
  list = curl_slist_append(list, "Expect:");  // not sent, and not signed (it is not in in.headers)
  Response resp;
  Upload up{r.body};
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp.headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a stalled transfer fails after 60 s
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (r.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else if (r.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (r.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else if (r.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(list);
  if (rc != CURLE_OK)
    return Status::IOError(
        std::string(r.method) + " " + loc_.Url() + (r.key.empty() ? "" : " key '" + r.key + "'") +
        " failed: " + curl_easy_strerror(rc) + "; check that the endpoint is reachable");
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

std::string DescribeError(const Response& r) {
  ErrorBody e = ParseError(r.body);
  std::string s = e.code.empty() ? "HTTP " + std::to_string(r.status)
                                 : e.code + (e.message.empty() ? "" : ": " + e.message) +
                                       " (HTTP " + std::to_string(r.status) + ")";
  return s;
}

}  // namespace mv::storage::s3
