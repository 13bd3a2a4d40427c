// libFuzzer target: index files (docs/FORMAT.md §6). Input form: tests/fuzz/fuzz_input.h.
#include "storage/index.h"
#include "storage/sealed.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  constexpr std::string_view kIndexMagic{"MVINDEX\x01", 8};
  auto parts = mv::fuzz::SplitAtNul(mv::fuzz::AsView(data, size));
  (void)DecodeIndexFile(Seal(kIndexMagic, parts.header, parts.body, 1), "fuzz");
  return 0;
}
