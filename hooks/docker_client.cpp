#include "hooks/docker_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace mv::hooks {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

CurlPtr NewHandle(const std::string& socket, const std::string& url) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CurlPtr h(curl_easy_init());
  if (!h) return h;
  curl_easy_setopt(h.get(), CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h.get(), CURLOPT_CONNECTTIMEOUT, 10L);
  return h;
}

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string HostHint(const std::string& socket) {
  return "cannot talk to the Docker daemon at unix://" + socket +
         ": is dockerd running? set DOCKER_HOST=unix:///path/to/docker.sock or pass --docker-host";
}

Status CurlFailure(CURLcode rc, const std::string& socket, const std::string& what) {
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
    return Status::IOError(HostHint(socket) + " (" + curl_easy_strerror(rc) + ")");
  return Status::IOError(what + ": " + curl_easy_strerror(rc), socket);
}

// Turns a non-2xx answer into a Status carrying the daemon's own message.
Status HttpFailure(long code, const std::string& body, const std::string& what) {
  std::string msg = body;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    msg = j["message"].get<std::string>();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  std::string text = what + ": HTTP " + std::to_string(code) + ": " + msg;
  if (code == 404) return Status::NotFound(text);
  if (code == 400 || code == 409) return Status::Invalid(text);
  return Status::IOError(text);
}

SlistPtr JsonHeaders() {
  curl_slist* l = curl_slist_append(nullptr, "Content-Type: application/json");
  l = curl_slist_append(l, "Expect:");
  return SlistPtr(l);
}

}  // namespace

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::string> ResolveDockerSocket(const std::string& docker_host) {
  std::string host = docker_host;
  if (host.empty()) {
    if (const char* env = std::getenv("DOCKER_HOST"); env && *env) host = env;
  }
  if (host.empty()) return std::string(kDefaultDockerSocket);
  if (host.rfind("unix://", 0) == 0 && host.size() > 7 && host[7] == '/') return host.substr(7);
  if (host[0] != '/')
    return Status::Invalid("unsupported Docker host '" + host +
                           "': mailvault speaks to the Docker daemon only over its unix socket; "
                           "set DOCKER_HOST or --docker-host to unix:///path/to/docker.sock");
  return host;  // a bare absolute path
}

Result<std::string> NegotiateApiVersion(const std::string& engine) {
  int major = 0, minor = 0;
  if (std::sscanf(engine.c_str(), "%d.%d", &major, &minor) != 2)
    return Status::Invalid("Docker engine reported an unreadable API version '" + engine + "'");
  int max_minor = 0, min_minor = 0;
  std::sscanf(kMaxApiVersion, "1.%d", &max_minor);
  std::sscanf(kMinApiVersion, "1.%d", &min_minor);
  if (major != 1 || minor < min_minor)
    return Status::Invalid("Docker engine API " + engine +
                           " is too old: mailvault needs at least " + kMinApiVersion +
                           " (Docker 17.06)");
  return "1." + std::to_string(std::min(minor, max_minor));
}

Result<std::unique_ptr<DockerClient>> DockerClient::Connect(const std::string& docker_host) {
  MV_ASSIGN_OR_RETURN(std::string socket, ResolveDockerSocket(docker_host));
  struct stat st {};
  if (::stat(socket.c_str(), &st) != 0)
    return Status::IOError(HostHint(socket) + " (" + std::strerror(errno) + ")");
  std::unique_ptr<DockerClient> c(new DockerClient(socket));
  MV_ASSIGN_OR_RETURN(c->engine_, c->Request("GET", "http://localhost/version", nullptr));
  std::string api = c->engine_.value("ApiVersion", "");
  MV_ASSIGN_OR_RETURN(c->version_, NegotiateApiVersion(api));
  return c;
}

std::string DockerClient::Url(const std::string& path) const {
  return "http://localhost/v" + version_ + path;
}

Result<nlohmann::json> DockerClient::Get(const std::string& path) const {
  return Request("GET", Url(path), nullptr);
}

Result<nlohmann::json> DockerClient::Post(const std::string& path,
                                          const nlohmann::json& body) const {
  return Request("POST", Url(path), &body);
}

Result<nlohmann::json> DockerClient::Request(const char* method, const std::string& url,
                                             const nlohmann::json* body) const {
  std::string what = std::string(method) + " " + url.substr(url.find('/', 7));
  CurlPtr h = NewHandle(socket_, url);
  if (!h) return Status::IOError("curl_easy_init failed");
  std::string response, payload;
  SlistPtr headers;
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &response);
  if (body) {
    payload = body->dump();
    headers = JsonHeaders();
    curl_easy_setopt(h.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  CURLcode rc = curl_easy_perform(h.get());
  if (rc != CURLE_OK) return CurlFailure(rc, socket_, what);
  long code = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code > 299) return HttpFailure(code, response, what);
  if (response.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(response, nullptr, false);
  if (j.is_discarded())
    return Status::Corruption(what + ": the daemon answered with invalid JSON", socket_);
  return j;
}

namespace {
struct StreamState {
  CURL* handle = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  long code = 0;
  std::string error_body;  // body of a non-2xx answer
  bool cancelled = false;
};

size_t StreamWrite(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<StreamState*>(p);
  if (s->code == 0) curl_easy_getinfo(s->handle, CURLINFO_RESPONSE_CODE, &s->code);
  std::string_view chunk(data, size * n);
  if (s->code < 200 || s->code > 299) {
    s->error_body.append(chunk);
    return size * n;
  }
  if (!(*s->on_data)(chunk)) {
    s->cancelled = true;
    return 0;
  }
  return size * n;
}
}  // namespace

Result<bool> DockerClient::PostStream(const std::string& path, const nlohmann::json& body,
                                      const std::function<bool(std::string_view)>& on_data,
                                      std::chrono::milliseconds timeout) const {
  std::string what = "POST " + path;
  CurlPtr h = NewHandle(socket_, Url(path));
  if (!h) return Status::IOError("curl_easy_init failed");
  std::string payload = body.dump();
  SlistPtr headers = JsonHeaders();
  StreamState state;
  state.handle = h.get();
  state.on_data = &on_data;
  curl_easy_setopt(h.get(), CURLOPT_POST, 1L);
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &StreamWrite);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &state);
  if (timeout.count() > 0)
    curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  CURLcode rc = curl_easy_perform(h.get());
  if (state.cancelled) return Status::Cancelled(what + ": cancelled");
  if (rc == CURLE_OPERATION_TIMEDOUT) return false;
  if (rc != CURLE_OK) return CurlFailure(rc, socket_, what);
  long code = 0;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code > 299) return HttpFailure(code, state.error_body, what);
  return true;
}

}  // namespace mv::hooks
