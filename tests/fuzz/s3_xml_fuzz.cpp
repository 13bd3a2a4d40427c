// libFuzzer target: S3's XML answers (storage/s3/xml.h), bytes a server or anything between it
// and us may send. Every parser must return (never crash, never read out of bounds), and a
// listing it accepts must be consistent.
#include <string_view>

#include "storage/s3/xml.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage::s3;
  std::string_view in = mv::fuzz::AsView(data, size);
  auto page = ParseListObjectsV2(in);
  if (page.ok()) {
    for (const auto& o : page->objects)
      if (o.key.empty()) mv::fuzz::Fail("listed object without a key");
    if (page->truncated && page->next_token.empty()) mv::fuzz::Fail("truncated without a token");
  }
  ParseError(in);
  auto id = ParseUploadId(in);
  if (id.ok() && id->empty()) mv::fuzz::Fail("empty upload id accepted");
  return 0;
}
