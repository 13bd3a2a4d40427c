// libFuzzer target: the demultiplexer of Docker's exec stream (hooks/exec.h). The same bytes fed
// at once and fed in pieces (cut where the input's first byte says) must give the same lines and
// the same verdict.
#include <string>
#include <vector>

#include "hooks/exec.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using Lines = std::vector<std::pair<int, std::string>>;

bool Run(std::string_view in, size_t piece, Lines* lines) {
  mv::hooks::StreamDemuxer demux([&](mv::hooks::StreamId id, std::string_view line) {
    lines->emplace_back(static_cast<int>(id), std::string(line));
  });
  bool ok = true;
  for (size_t pos = 0; pos < in.size() && ok; pos += piece)
    ok = demux.Feed(in.substr(pos, piece)).ok();
  return demux.Finish().ok() && ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 13;
  std::string_view in = mv::fuzz::AsView(data + 1, size - 1);
  Lines whole, pieces;
  bool a = Run(in, in.size() + 1, &whole);
  bool b = Run(in, piece, &pieces);
  if (a != b) mv::fuzz::Fail("the demuxer's verdict depends on how the bytes were split");
  if (a && whole != pieces)
    mv::fuzz::Fail("the demuxer's lines depend on how the bytes were split");
  return 0;
}
