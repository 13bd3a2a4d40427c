// Sealed files (docs/FORMAT.md §2): the framing shared by index files and snapshot manifests.
//   magic[8] | u32le header_len | header (JSON) | u64le body_len | body (zstd frame) | hash[16]
// hash = unkeyed XXH3-128 of every byte before it, so truncation and bit flips are detected.
// The header stays uncompressed so listings read only the first bytes of a file; its "body"
// object names the body's transforms ({"compression":"zstd","encryption":"none"}), which is
// where at-rest encryption slots in without a format break.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace mv::storage {

struct Sealed {
  std::string header;   // JSON text
  std::string body;     // decompressed
  uint8_t version = 0;  // the magic's version byte
};

std::string Seal(std::string_view magic, const std::string& header_json, std::string_view body,
                 int zstd_level = 3);
// Builds a sealed file while its body is produced piece by piece, so a large body never exists
// uncompressed in memory at once.
class SealWriter {
 public:
  SealWriter(std::string_view magic, const std::string& header_json, int zstd_level = 3);
  ~SealWriter();
  SealWriter(const SealWriter&) = delete;
  SealWriter& operator=(const SealWriter&) = delete;
  void Append(std::string_view body_part);
  std::string Finish();  // the complete sealed file

 private:
  void Drain(int mode);
  std::string out_;
  size_t body_start_ = 0;
  void* cctx_;
  std::string_view pending_;
};

// Verifies magic and hash, decompresses the body. `path` is only for error messages. The
// magic's last byte is the newest version accepted; `oldest_version` (0: the same) the oldest.
// Sealed::version is the version byte the file has.
Result<Sealed> Unseal(std::string_view data, std::string_view magic, const std::string& path,
                      uint8_t oldest_version = 0);
// Reads only the header of a sealed file (no integrity check of the rest).
Result<std::string> ReadSealedHeader(const std::string& path, std::string_view magic,
                                     uint8_t oldest_version = 0);
// The same from the file's bytes (read from a backend); `path` names it in messages.
Result<std::string> SealedHeaderOf(std::string_view data, std::string_view magic,
                                   const std::string& path, uint8_t oldest_version = 0);

}  // namespace mv::storage
