#include "hooks/exec.h"

#include <deque>

namespace mv::hooks {

void StreamDemuxer::Emit(StreamId id, std::string_view payload) {
  std::string& partial = partial_[static_cast<int>(id)];
  size_t start = 0;
  for (size_t nl; (nl = payload.find('\n', start)) != std::string_view::npos; start = nl + 1) {
    partial.append(payload.substr(start, nl - start));
    if (!partial.empty() && partial.back() == '\r') partial.pop_back();
    if (on_line_) on_line_(id, partial);
    partial.clear();
  }
  partial.append(payload.substr(start));
}

Status StreamDemuxer::Feed(std::string_view bytes) {
  if (broken_) return Status::Corruption("exec output stream: input after a framing error");
  while (!bytes.empty()) {
    if (remaining_ > 0) {
      size_t n = std::min<size_t>(remaining_, bytes.size());
      Emit(current_, bytes.substr(0, n));
      remaining_ -= static_cast<uint32_t>(n);
      bytes.remove_prefix(n);
      continue;
    }
    size_t need = 8 - header_.size();
    size_t n = std::min(need, bytes.size());
    header_.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
    if (header_.size() < 8) break;
    auto b = [&](int i) { return static_cast<uint8_t>(header_[i]); };
    if (b(0) > 2) {
      broken_ = true;
      return Status::Corruption("exec output stream: unknown stream id " + std::to_string(b(0)) +
                                " in a frame header (was the exec started with a TTY?)");
    }
    current_ = static_cast<StreamId>(b(0));
    remaining_ = (uint32_t{b(4)} << 24) | (uint32_t{b(5)} << 16) | (uint32_t{b(6)} << 8) | b(7);
    header_.clear();
  }
  return Status::Ok();
}

Status StreamDemuxer::Finish() {
  for (int i = 0; i < 3; ++i) {
    if (!partial_[i].empty() && on_line_) on_line_(static_cast<StreamId>(i), partial_[i]);
    partial_[i].clear();
  }
  if (remaining_ > 0 || !header_.empty())
    return Status::Corruption("exec output stream ended inside a frame (" +
                              std::to_string(remaining_) + " payload bytes missing)");
  return Status::Ok();
}

std::vector<std::string> HookCommandLine(const std::string& command) {
  // "$1" is the hook command, passed as one argument so no quoting is needed.
  return {"/bin/sh", "-c",
          "if command -v bash >/dev/null 2>&1; then exec bash -o pipefail -c \"$1\"; fi; "
          "exec /bin/sh -c \"$1\"",
          "mailvault-hook", command};
}

Result<ExecResult> RunHook(const DockerClient& docker, const ExecOptions& opts,
                           const HookLineFn& on_line) {
  auto started = std::chrono::steady_clock::now();
  nlohmann::json create = {{"AttachStdout", true},
                           {"AttachStderr", true},
                           {"AttachStdin", false},
                           {"Tty", false},
                           {"Cmd", HookCommandLine(opts.command)}};
  auto created = docker.Post("/containers/" + opts.container_id + "/exec", create);
  if (!created.ok())
    return Status(created.status().code(), "cannot run hook of " + opts.service + " in container " +
                                               opts.container_id.substr(0, 12) + ": " +
                                               created.status().message());
  std::string exec_id = created->value("Id", "");
  if (exec_id.empty()) return Status::Corruption("exec create answered without an Id");

  ExecResult result;
  std::deque<std::string> tail;
  StreamDemuxer demux([&](StreamId id, std::string_view line) {
    std::string l(line);
    if (on_line) on_line(opts.service, id, l);
    tail.push_back(std::move(l));
    if (tail.size() > opts.tail_lines) tail.pop_front();
  });
  Status frame_error;
  auto on_data = [&](std::string_view bytes) {
    Status st = demux.Feed(bytes);
    if (!st.ok() && frame_error.ok()) frame_error = st;
    return true;
  };
  auto finished =
      docker.PostStream("/exec/" + exec_id + "/start", {{"Detach", false}, {"Tty", false}}, on_data,
                        std::chrono::duration_cast<std::chrono::milliseconds>(opts.timeout));
  if (!finished.ok()) return finished.status();
  Status st = demux.Finish();
  if (frame_error.ok()) frame_error = st;
  result.timed_out = !*finished;
  if (!result.timed_out) {
    auto inspect = docker.Get("/exec/" + exec_id + "/json");
    if (!inspect.ok()) return inspect.status();
    if ((*inspect)["ExitCode"].is_number_integer()) result.exit_code = (*inspect)["ExitCode"];
  }
  if (!frame_error.ok() && !result.timed_out) return frame_error;
  for (const auto& l : tail) result.output_tail += l + "\n";
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace mv::hooks
