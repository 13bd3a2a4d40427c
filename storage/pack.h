// Packs (docs/FORMAT.md §5): a pack is a ustar archive compressed with zstd, written with
// libarchive, holding many blobs, each an entry named by its 32-hex blob ID. Operators can list
// and extract one with `tar --zstd -tf/-xf`. The pack file is named by the unkeyed XXH3-128 of
// its bytes, so a pack checks itself.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/backend.h"
#include "storage/env.h"
#include "storage/hash.h"
#include "storage/status.h"

namespace mv::storage {

struct PackEntry {
  BlobId id;
  uint64_t offset = 0;  // of the blob's bytes in the uncompressed tar stream
  uint64_t length = 0;
};

struct PackInfo {
  BlobId pack_id;
  uint64_t file_size = 0;  // compressed size on disk
  std::vector<PackEntry> entries;
};

// Writes one pack. Not thread-safe: each backup worker owns one at a time.
class PackWriter {
 public:
  // The pack is written to a temp file under `tmp_dir` until Finish(), through `env`.
  static Result<std::unique_ptr<PackWriter>> Create(const std::string& tmp_dir, int zstd_level,
                                                    Env* env = Env::Default());
  virtual ~PackWriter() = default;
  virtual Status Add(const BlobId& id, const void* data, size_t len) = 0;
  // Uncompressed tar bytes written so far (to decide when the pack is full).
  virtual uint64_t raw_bytes() const = 0;
  virtual size_t count() const = 0;
  // Closes the archive, fsyncs, and moves it to packs/<id[0:2]>/<id>.tar.zst in `dest`
  // (Backend::PutFile: a rename on disk, an upload to S3). The directory sync is left to the
  // caller (one per batch, before the index is written).
  virtual Result<PackInfo> Finish(Backend& dest) = 0;
};

std::string PackRelPath(const BlobId& pack_id);  // "packs/ab/ab12....tar.zst"

// Reads a pack sequentially. `want` decides per entry whether its bytes are needed (others are
// skipped); `on_blob` gets the bytes of each wanted blob and returns false to stop early.
// With verify_pack_hash, the pack's bytes are hashed while read and compared with `expected`
// (skipped when stopping early). Errors name the pack path and the entry.
struct PackReadOptions {
  bool verify_pack_hash = true;
};
using PackWantFn = std::function<bool(const BlobId& id, uint64_t length)>;
using PackBlobFn = std::function<bool(const BlobId& id, std::string_view data)>;
Status ReadPack(const std::string& path, const BlobId& expected, const PackReadOptions& opts,
                const PackWantFn& want, const PackBlobFn& on_blob);
// The same over any reader (a pack on S3); `path` names it in messages.
Status ReadPack(ObjectReader& in, const std::string& path, const BlobId& expected,
                const PackReadOptions& opts, const PackWantFn& want, const PackBlobFn& on_blob);

// Lists a pack's entries (decompressing it), for index rebuild and orphan recovery.
Result<PackInfo> ListPack(const std::string& path, const BlobId& expected);
Result<PackInfo> ListPack(ObjectReader& in, const std::string& path, const BlobId& expected);

}  // namespace mv::storage
