// libFuzzer target: the seek table at the end of a pack (docs/FORMAT.md §5.1). Input: a pack's
// last bytes. ParseSeekTable returns frames only when the table is whole and well-formed, and
// then its size in bytes is what it says; re-encoding the frames gives the same table.
#include "storage/pack.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  std::string_view in = mv::fuzz::AsView(data, size);
  uint64_t table = 0;
  std::vector<PackFrame> frames = ParseSeekTable(in, &table);
  if (frames.empty()) return 0;
  if (table > in.size()) mv::fuzz::Fail("frames from a table longer than the input");
  if (in[in.size() - 5] == 0 && EncodeSeekTable(frames) != in.substr(in.size() - table))
    mv::fuzz::Fail("re-encoded table differs");
  return 0;
}
