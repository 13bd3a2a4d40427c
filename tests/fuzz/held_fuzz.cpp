// libFuzzer target: held mail records (docs/FORMAT.md §12). Input form: tests/fuzz/fuzz_input.h
// (header JSON, NUL, body JSON), sealed with the real Seal().
#include "storage/held_mail.h"
#include "storage/sealed.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  constexpr std::string_view kHeldMagic{"MVHELDM\x01", 8};
  auto parts = mv::fuzz::SplitAtNul(mv::fuzz::AsView(data, size));
  auto r = DecodeHeldRecord(Seal(kHeldMagic, parts.header, parts.body, 1), "fuzz");
  if (r.ok())
    for (const auto& m : r->messages)
      if (m.entry.path.empty() || m.entry.path[0] == '/') mv::fuzz::Fail("absolute held path");
  return 0;
}
