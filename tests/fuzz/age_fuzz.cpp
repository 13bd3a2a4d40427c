// libFuzzer target: age v1 files (storage/crypto/age.h), the container of encrypted packs. Input:
// an age file, decrypted with a fixed identity (32 bytes of 0x42, recipient
// age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj). The seeds (corpus/age/) are
// files Debian's age wrote to that recipient (`age -r … -o`), so mutations reach the stanza parser,
// the header MAC and the payload chunks. Every input decrypts or fails with a status; ranged reads
// of what the header names agree with the whole read.
#include "storage/crypto/age.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mv::storage::crypto;
  AgeIdentity id;
  id.secret.fill(0x42);
  std::string_view in = mv::fuzz::AsView(data, size);
  auto whole = AgeDecrypt(in, id, "fuzz");
  uint64_t need = 0;
  auto h = AgeReadHeader(in, id, "fuzz", &need);
  if (whole.ok() && !h.ok()) mv::fuzz::Fail("whole read ok, header read failed");
  if (whole.ok() && h.ok() && in.size() > AgeChunkOffset(*h, 1)) {
    auto rest = AgeDecryptChunks(*h, in.size(), 1, in.substr(AgeChunkOffset(*h, 1)), "fuzz");
    if (!rest.ok() || *rest != whole->substr(kAgeChunk)) mv::fuzz::Fail("ranged read differs");
  }
  return 0;
}
