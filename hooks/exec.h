// Running a backupbot hook inside a container through the Engine API exec endpoints, and the
// demultiplexer for the raw stdout/stderr stream that `POST /exec/{id}/start` answers with.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/docker_client.h"
#include "storage/status.h"

namespace mv::hooks {

enum class StreamId : int { kStdin = 0, kStdout = 1, kStderr = 2 };

// Splits Docker's multiplexed stream (8-byte headers: [stream][0][0][0][uint32 big-endian
// size], then the payload) into lines per stream. Bytes may arrive in any split: a header or
// payload cut across Feed() calls, a line spanning several frames. Lines are reported without
// their '\n' (and without a trailing '\r'); Finish() reports unterminated last lines.
class StreamDemuxer {
 public:
  using LineFn = std::function<void(StreamId stream, std::string_view line)>;
  explicit StreamDemuxer(LineFn on_line) : on_line_(std::move(on_line)) {}

  // Corruption when a header names an unknown stream (e.g. the container was started with a
  // TTY, which is not multiplexed); the demuxer then refuses further input.
  Status Feed(std::string_view bytes);
  // Flushes partial lines; Corruption when the stream ended inside a frame.
  Status Finish();

 private:
  void Emit(StreamId id, std::string_view payload);

  LineFn on_line_;
  std::string header_;      // bytes of an incomplete header
  uint32_t remaining_ = 0;  // payload bytes still due for the current frame
  StreamId current_ = StreamId::kStdout;
  std::string partial_[3];  // unterminated line per stream
  bool broken_ = false;
};

struct ExecOptions {
  std::string container_id;
  std::string command;                // run as sh -c '<command>' (bash -o pipefail when present)
  std::string service;                // tags output lines ("mailu_admin")
  std::chrono::seconds timeout{600};  // default 10 minutes
  size_t tail_lines = 40;             // how many last output lines ExecResult keeps
};

struct ExecResult {
  int exit_code = -1;       // -1 when unknown (timed out, or the daemon did not say)
  bool timed_out = false;   // the command may still be running in the container
  std::string output_tail;  // last `tail_lines` lines, stdout and stderr interleaved
  double seconds = 0;
  bool ok() const { return !timed_out && exit_code == 0; }
};

// Called for each output line as it arrives.
using HookLineFn =
    std::function<void(const std::string& service, StreamId stream, const std::string& line)>;

// The exec Cmd for `command`: prefers bash with pipefail, falls back to sh, in one exec.
std::vector<std::string> HookCommandLine(const std::string& command);

// Creates and starts an exec in the container and waits for it. A command that exits non-zero
// or times out is a successful call whose ExecResult says so; errors are for exec that could
// not be created/started (container gone, daemon unreachable).
Result<ExecResult> RunHook(const DockerClient& docker, const ExecOptions& opts,
                           const HookLineFn& on_line = {});

}  // namespace mv::hooks
