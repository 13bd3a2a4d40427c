// The exec stream demultiplexer (pure, over bytes) and, when MAILVAULT_E2E_DOCKER_HOST names
// a real dockerd, the Engine API client and hook runner against it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "hooks/docker_client.h"
#include "hooks/exec.h"

namespace mv::hooks {
namespace {

std::string Frame(int stream, const std::string& payload) {
  std::string h(8, '\0');
  h[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  h[4] = static_cast<char>(n >> 24);
  h[5] = static_cast<char>(n >> 16);
  h[6] = static_cast<char>(n >> 8);
  h[7] = static_cast<char>(n);
  return h + payload;
}

using Lines = std::vector<std::pair<int, std::string>>;

// Feeds `bytes` in pieces of `step` bytes and returns the lines seen.
Lines Demux(const std::string& bytes, size_t step, Status* finish = nullptr) {
  Lines lines;
  StreamDemuxer d([&](StreamId id, std::string_view l) {
    lines.push_back({int(id), std::string(l)});
  });
  for (size_t i = 0; i < bytes.size(); i += step)
    EXPECT_TRUE(d.Feed(std::string_view(bytes).substr(i, step)).ok());
  Status st = d.Finish();
  if (finish) *finish = st;
  return lines;
}

TEST(DockerExecStream, FramesSplitAtEveryByteGiveTheSameLines) {
  std::string bytes = Frame(1, "hello\nwor") + Frame(2, "oops\n") + Frame(1, "ld\r\n") +
                      Frame(1, std::string(70000, 'x') + "\n");
  Lines expected = {{1, "hello"}, {2, "oops"}, {1, "world"}, {1, std::string(70000, 'x')}};
  for (size_t step : {1, 3, 7, 8, 9, 4096, 1 << 20})
    EXPECT_EQ(Demux(bytes, step), expected) << step;
}

TEST(DockerExecStream, ALineSpanningManyFramesIsOneLine) {
  std::string bytes = Frame(1, "a") + Frame(1, "b") + Frame(1, "") + Frame(1, "c\n");
  EXPECT_EQ(Demux(bytes, 5), (Lines{{1, "abc"}}));
}

TEST(DockerExecStream, UnterminatedLastLinesAreFlushedPerStream) {
  Status st;
  EXPECT_EQ(Demux(Frame(2, "err-tail") + Frame(1, "out-tail"), 2, &st),
            (Lines{{1, "out-tail"}, {2, "err-tail"}}));
  EXPECT_TRUE(st.ok());
}

TEST(DockerExecStream, AStreamCutInsideAFrameIsReportedAsCorrupt) {
  std::string bytes = Frame(1, "complete\n") + Frame(1, "cut here").substr(0, 12);
  Status st;
  Lines lines = Demux(bytes, 64, &st);
  EXPECT_EQ(lines.front(), (std::pair<int, std::string>{1, "complete"}));
  EXPECT_EQ(st.code(), Code::kCorruption);
}

TEST(DockerExecStream, TtyOutputIsRejectedNotMisread) {
  StreamDemuxer d([](StreamId, std::string_view) {});
  Status st = d.Feed("plain tty text, no frame headers\n");
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("TTY"), std::string::npos);
}

TEST(DockerClient, SocketResolutionHonoursFlagThenDockerHost) {
  EXPECT_EQ(ResolveDockerSocket("unix:///tmp/x.sock").value(), "/tmp/x.sock");
  EXPECT_EQ(ResolveDockerSocket("/tmp/y.sock").value(), "/tmp/y.sock");
  EXPECT_EQ(ResolveDockerSocket("tcp://10.0.0.1:2375").status().code(), Code::kInvalidArgument);
  const char* saved = std::getenv("DOCKER_HOST");
  std::string keep = saved ? saved : "";
  setenv("DOCKER_HOST", "unix:///run/other.sock", 1);
  EXPECT_EQ(ResolveDockerSocket("").value(), "/run/other.sock");
  unsetenv("DOCKER_HOST");
  EXPECT_EQ(ResolveDockerSocket("").value(), "/var/run/docker.sock");
  if (saved) setenv("DOCKER_HOST", keep.c_str(), 1);
}

TEST(DockerClient, ApiVersionIsTheLowerOfEngineAndMailvault) {
  EXPECT_EQ(NegotiateApiVersion("1.41").value(), "1.41");
  EXPECT_EQ(NegotiateApiVersion("1.47").value(), "1.41");
  EXPECT_EQ(NegotiateApiVersion("1.35").value(), "1.35");
  EXPECT_FALSE(NegotiateApiVersion("1.24").ok());
  EXPECT_FALSE(NegotiateApiVersion("garbage").ok());
}

TEST(DockerClient, MissingSocketSaysToStartDockerdOrSetDockerHost) {
  auto c = DockerClient::Connect("unix:///nonexistent/mailvault-test.sock");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("is dockerd running? set DOCKER_HOST"), std::string::npos);
}

// Needs a real dockerd: MAILVAULT_E2E_DOCKER_HOST=unix:///tmp/x.sock and a running container
// from an image with /bin/sh, named by MAILVAULT_E2E_CONTAINER (id or name).
TEST(DockerExecE2E, HookRunsInARealContainerWithExitCodeOutputAndTimeout) {
  const char* host = std::getenv("MAILVAULT_E2E_DOCKER_HOST");
  const char* ctr = std::getenv("MAILVAULT_E2E_CONTAINER");
  if (!host || !ctr)
    GTEST_SKIP() << "set MAILVAULT_E2E_DOCKER_HOST and MAILVAULT_E2E_CONTAINER to run against a "
                    "real dockerd";
  auto docker = DockerClient::Connect(host);
  ASSERT_TRUE(docker.ok()) << docker.status().ToString();
  ExecOptions o;
  o.container_id = ctr;
  o.service = "e2e_svc";
  o.command = "echo one; echo two >&2; printf 'par'; sleep 0.3; echo 'tial'; exit 7";
  Lines seen;
  auto r = RunHook(**docker, o, [&](const std::string& svc, StreamId id, const std::string& l) {
    EXPECT_EQ(svc, "e2e_svc");
    seen.push_back({int(id), l});
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 7);
  EXPECT_FALSE(r->timed_out);
  EXPECT_NE(std::find(seen.begin(), seen.end(), std::pair<int, std::string>{1, "partial"}),
            seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), std::pair<int, std::string>{2, "two"}), seen.end());
  o.command = "sleep 30";
  o.timeout = std::chrono::seconds(1);
  r = RunHook(**docker, o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(r->seconds, 10);
}

}  // namespace
}  // namespace mv::hooks
