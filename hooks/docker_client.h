// A small Docker Engine API client over the daemon's unix socket (libcurl,
// CURLOPT_UNIX_SOCKET_PATH). It speaks only what mailvault needs: JSON GET/POST and one raw
// streaming POST for exec. See ../shared/notes/swarm-e2e.md for the API facts it relies on.
//
// Thread safety: every call uses its own curl handle, so one client may be shared by threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace mv::hooks {

// The newest Engine API version mailvault asks for; older engines are spoken to at their own
// version (but not below kMinApiVersion).
inline constexpr const char* kMaxApiVersion = "1.41";
inline constexpr const char* kMinApiVersion = "1.30";
inline constexpr const char* kDefaultDockerSocket = "/var/run/docker.sock";

// Resolves the socket path from `docker_host` ("unix:///path" or a bare "/path"), else
// $DOCKER_HOST, else kDefaultDockerSocket. tcp:// and ssh:// hosts are rejected (unsupported).
Result<std::string> ResolveDockerSocket(const std::string& docker_host);

// min(engine, kMaxApiVersion) as "1.NN"; InvalidArgument when the engine is older than
// kMinApiVersion or the version string is malformed.
Result<std::string> NegotiateApiVersion(const std::string& engine_api_version);

class DockerClient {
 public:
  // Connects to `docker_host` (see ResolveDockerSocket) and negotiates the API version with
  // GET /version. A missing socket or refused connection is an IOError that says to start
  // dockerd or set DOCKER_HOST.
  static Result<std::unique_ptr<DockerClient>> Connect(const std::string& docker_host = {});

  // `path` is the API path without the version prefix, e.g. "/services" or
  // "/volumes/mailu_mail". Non-2xx answers become a Status carrying the daemon's "message"
  // (404 -> NotFound, 400 -> InvalidArgument, other -> IOError).
  Result<nlohmann::json> Get(const std::string& path) const;
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body) const;

  // POSTs `body` and hands the raw response body to `on_data` as it arrives, until the daemon
  // closes the connection (the exec start stream has neither Content-Length nor chunking).
  // `on_data` returning false aborts with Cancelled. Answers true when the stream ended, false
  // when `timeout` (> 0) passed first (the connection is then closed by us).
  Result<bool> PostStream(const std::string& path, const nlohmann::json& body,
                          const std::function<bool(std::string_view)>& on_data,
                          std::chrono::milliseconds timeout) const;

  const std::string& socket_path() const { return socket_; }
  const std::string& api_version() const { return version_; }
  const nlohmann::json& engine_version() const { return engine_; }

 private:
  DockerClient(std::string socket) : socket_(std::move(socket)) {}
  std::string Url(const std::string& path) const;
  Result<nlohmann::json> Request(const char* method, const std::string& url,
                                 const nlohmann::json* body) const;

  std::string socket_;
  std::string version_;    // "1.41"; empty until negotiated
  nlohmann::json engine_;  // GET /version answer
};

// Percent-encodes `s` for use in a query string (filters=...).
std::string UrlEncode(std::string_view s);

}  // namespace mv::hooks
