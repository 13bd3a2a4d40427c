// Shared by the libFuzzer targets in this folder (built and run by `tests/run.sh --sanitize`).
// A target's contract: every input decodes to a value or an error; a crash, an escaped
// exception, undefined behaviour, a leak or an allocation out of proportion to the input
// (libFuzzer's -rss_limit_mb / -malloc_limit_mb) is a defect in the library, fixed there and
// pinned by a unit test with the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mv::fuzz {

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Input form of the targets that decode what a sealed file carries (the manifest and index
// targets): the header JSON, one NUL byte, then the uncompressed body. The target seals it
// with the real Seal(), so mutations reach the decoder behind the hash: what a buggy writer,
// or anyone who can write to the repository, produces. tests/fuzz/make_corpus.sh turns real
// sealed files into this form.
struct SealedParts {
  std::string header;
  std::string_view body;
};
inline SealedParts SplitAtNul(std::string_view in) {
  size_t nul = in.find('\0');
  if (nul == std::string_view::npos) return {std::string(in), {}};
  return {std::string(in.substr(0, nul)), in.substr(nul + 1)};
}

// A broken invariant that is not a crash by itself (two decoders disagreeing, say).
[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

}  // namespace mv::fuzz
