// libFuzzer target: the header index (docs/FORMAT.md §15). The same input is (1) the first bytes
// of a message, parsed as a backup parses every message it reads: whatever the bytes, the fields
// must be valid UTF-8 within their size bound; and (2) a header record in the form of
// tests/fuzz/fuzz_input.h (header JSON, NUL, body JSON), sealed with the real Seal().
#include "storage/header_index.h"
#include "storage/mailfiles/headers.h"
#include "storage/sealed.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; k++)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv;
  auto f = mailfiles::ParseHeaders(fuzz::AsView(data, size));
  for (const std::string* s : {&f.date, &f.from, &f.to, &f.subject, &f.message_id}) {
    if (!ValidUtf8(*s)) fuzz::Fail("a header field is not valid UTF-8");
    if (s->size() > mailfiles::kHeaderFieldMax) fuzz::Fail("a header field is over its bound");
  }
  constexpr std::string_view kMagic{"MVHEADR\x01", 8};
  auto parts = fuzz::SplitAtNul(fuzz::AsView(data, size));
  auto r = storage::DecodeHeaderRecord(storage::Seal(kMagic, parts.header, parts.body, 1), "fuzz");
  (void)r;
  return 0;
}
