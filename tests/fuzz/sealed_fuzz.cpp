// libFuzzer target: the sealed framing (docs/FORMAT.md §2) over arbitrary bytes. Each input is
// unsealed as it is, and again with its trailing hash made correct, so the length fields and the
// zstd body behind the hash are reached too. A file that unseals must seal back to one that
// unseals to the same header and body.
#include <cstring>

#include "storage/hash.h"
#include "storage/sealed.h"
#include "storage/snapshot.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

constexpr std::string_view kIndexMagic{"MVINDEX\x01", 8};

void Check(std::string_view file, std::string_view magic, uint8_t oldest) {
  using namespace mv::storage;
  auto s = Unseal(file, magic, "fuzz", oldest);
  if (!s.ok()) return;
  std::string again = Seal(std::string(magic.substr(0, magic.size() - 1)) + char(s->version),
                           s->header, s->body, 1);
  auto t = Unseal(again, magic, "fuzz", oldest);
  if (!t.ok() || t->header != s->header || t->body != s->body)
    mv::fuzz::Fail("seal/unseal round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  std::string_view in = mv::fuzz::AsView(data, size);
  Check(in, SnapshotMagic(), SnapshotOldestVersion());
  Check(in, kIndexMagic, 0);
  if (size >= 16) {
    std::string fixed(in);
    BlobId h = PlainHash(fixed.data(), fixed.size() - 16);
    std::memcpy(fixed.data() + fixed.size() - 16, h.bytes.data(), 16);
    Check(fixed, SnapshotMagic(), SnapshotOldestVersion());
    Check(fixed, kIndexMagic, 0);
  }
  return 0;
}
