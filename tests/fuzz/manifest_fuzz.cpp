// libFuzzer target: snapshot manifests (docs/FORMAT.md §7), through both decoders of the record
// format (DecodeSnapshot and EntryTable::Decode), which must agree on what is valid; and the
// header decoder alone. Input form: tests/fuzz/fuzz_input.h (header JSON, NUL, raw body).
#include "storage/entry_table.h"
#include "storage/sealed.h"
#include "storage/snapshot.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  auto parts = mv::fuzz::SplitAtNul(mv::fuzz::AsView(data, size));
  (void)DecodeSnapshotHeader(parts.header, "fuzz");
  // The flat body of versions 1-2 (a version-3 body is one ID; tree records: tree_fuzz.cpp).
  std::string file = Seal(std::string_view("MVSNAPS\x02", 8), parts.header, parts.body, 1);
  auto snap = DecodeSnapshot(file, "fuzz");
  auto table = EntryTable::Decode(file, "fuzz");
  if (snap.ok() != table.ok()) mv::fuzz::Fail("the two manifest decoders disagree on validity");
  if (snap.ok() && snap->files.size() != table->size())
    mv::fuzz::Fail("the two manifest decoders disagree on the file count");
  return 0;
}
