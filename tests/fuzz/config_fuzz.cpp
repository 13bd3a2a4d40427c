// libFuzzer target: the repository's `config` and `keys/default` JSON (docs/FORMAT.md §1, §3).
// A config that parses must give chunker parameters the chunker can run with: at the end of a
// file it cuts at least one byte and at most what it was given (else a backup loops for ever).
#include "storage/chunker.h"
#include "storage/repository.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage;
  std::string_view in = mv::fuzz::AsView(data, size);
  (void)ParseRepoKey(in, "fuzz/keys/default");
  auto config = ParseRepoConfig(in, "fuzz/config");
  if (config.ok()) {
    Chunker chunker(std::string(32, 'k'), config->chunker);
    std::string buf(64 * 1024, 'x');
    for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<char>(i * 131 + (i >> 7));
    size_t cut = chunker.NextCut(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), true);
    if (cut == 0 || cut > buf.size())
      mv::fuzz::Fail("the chunker cut nothing, or past the end, of a whole file");
  }
  return 0;
}
