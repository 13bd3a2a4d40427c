// libFuzzer target: version-3 tree records (docs/FORMAT.md §7.5), the blobs a snapshot's entries
// live in. Every input decodes to entries or an error; what decodes re-encodes to a record that
// decodes to the same entries (the encoder and decoder agree on the format).
#include "storage/snapshot.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  std::vector<FileEntry> entries;
  if (!DecodeTree(mv::fuzz::AsView(data, size), "mail/dir", "fuzz", &entries).ok()) return 0;
  std::string again = EncodeTree(entries);
  std::vector<FileEntry> back;
  if (!DecodeTree(again, "mail/dir", "fuzz", &back).ok())
    mv::fuzz::Fail("a re-encoded tree record does not decode");
  if (back.size() != entries.size() || EncodeTree(back) != again)
    mv::fuzz::Fail("a tree record does not survive encode and decode");
  return 0;
}
