// Packs (docs/FORMAT.md §5): a pack is a ustar archive (written with libarchive) compressed with
// zstd, holding many blobs, each an entry named by its 32-hex blob ID. Operators can list and
// extract one with `tar --zstd -tf/-xf`. The pack file is named by the unkeyed XXH3-128 of its
// bytes, so a pack checks itself. Since format version 6 the zstd stream is a sequence of
// independent frames with a seek table after them (§5.1), so a reader can fetch and decompress
// only the frames that hold the blobs it wants (ReadPackFrames).
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

// One zstd frame of a pack (§5.1): its compressed bytes and the tar bytes it holds.
struct PackFrame {
  uint64_t compressed = 0;
  uint64_t raw = 0;
};

// A frame ends after the entry that brings it to this many tar bytes (a larger blob makes one
// larger frame). 128 KiB frames cost 4.8% in pack size against one stream (docs/S3.md §6).
constexpr uint64_t kPackFrameTarget = 128 << 10;
// Packs smaller than this are read whole: one request, and little to save.
constexpr uint64_t kMinFramedRead = 1 << 20;

// The seek table (§5.1): a zstd skippable frame in the zstd seekable format, as bytes; and the
// frames read back from the end of a pack (`tail`, the pack's last bytes). ParseSeekTable
// returns an empty vector when `tail` does not end with a seek table (a pack written before
// version 6). *table_bytes is set to the bytes the table takes (also when `tail` holds only part
// of it, and then the result is empty), or 0 when there is none.
std::string EncodeSeekTable(const std::vector<PackFrame>& frames);
std::vector<PackFrame> ParseSeekTable(std::string_view tail, uint64_t* table_bytes);

struct PackInfo {
  BlobId pack_id;
  uint64_t file_size = 0;  // compressed size on disk
  std::vector<PackEntry> entries;
};

// Writes one pack. Not thread-safe: each backup worker owns one at a time.
class PackWriter {
 public:
  // The pack is written to a temp file under `tmp_dir` until Finish(), through `env`: into
  // `dest`'s PackSink (an encrypted backend encrypts it as it is written), or as it is when
  // `dest` is null. Finish must then be given the same `dest`.
  static Result<std::unique_ptr<PackWriter>> Create(const std::string& tmp_dir, int zstd_level,
                                                    Env* env = Env::Default(),
                                                    Backend* dest = nullptr);
  virtual ~PackWriter() = default;
  virtual Status Add(const BlobId& id, const void* data, size_t len) = 0;
  // Uncompressed tar bytes written so far (to decide when the pack is full).
  virtual uint64_t raw_bytes() const = 0;
  virtual size_t count() const = 0;
  // Closes the archive, fsyncs, and moves it to packs/<id[0:2]>/<id>.tar.zst in `dest`
  // (PackSink::Commit: a rename on disk, an upload to S3). PackInfo::file_size is the size of
  // the tar.zst (in an encrypted repository, of the age file's plaintext). The directory sync is
  // left to the caller (one per batch, before the index is written).
  virtual Result<PackInfo> Finish(Backend& dest) = 0;
};

std::string PackRelPath(const BlobId& pack_id);  // "packs/ab/ab12....tar.zst"

// Reads a pack sequentially. `want` decides per entry whether its bytes are needed (others are
// skipped); `on_blob` gets the bytes of each wanted blob and returns false to stop early.
// With verify_pack_hash, the pack's bytes are hashed while read and compared with `expected`
// (skipped when stopping early). Errors name the pack path and the entry.
struct PackReadOptions {
  bool verify_pack_hash = true;
  // The reader checks the pack against its name when it reaches the end (an encrypted pack of
  // version 9, named by the hash of its age file): with verify_pack_hash the pack is read to
  // its end and the reader's error returned, instead of comparing the XXH3 of what was read.
  bool reader_checks_name = false;
};
using PackWantFn = std::function<bool(const BlobId& id, uint64_t length)>;
using PackBlobFn = std::function<bool(const BlobId& id, std::string_view data)>;
Status ReadPack(const std::string& path, const BlobId& expected, const PackReadOptions& opts,
                const PackWantFn& want, const PackBlobFn& on_blob);
// The same over any reader (a pack on S3); `path` names it in messages.
Status ReadPack(ObjectReader& in, const std::string& path, const BlobId& expected,
                const PackReadOptions& opts, const PackWantFn& want, const PackBlobFn& on_blob);

// Reads the blobs of pack `info` (as the index describes it) whose entries `selected` marks (one
// flag per entry of info.entries), fetching only the frames that hold them with ranged reads
// through `backend` and delivering them in pack order; `path` names the pack in messages. Sets
// *read_whole and delivers nothing when that would not pay: the pack has no seek table (written
// before version 6) or is small, or the frames needed are most of it; the caller reads the
// pack whole then. Checks that each blob's tar header names it, so an index that does not
// match its pack fails (kCorruption) instead of handing out other bytes.
Status ReadPackFrames(const Backend& backend, const std::string& path, const PackInfo& info,
                      const std::vector<bool>& selected, const PackBlobFn& on_blob,
                      bool* read_whole);

// Lists a pack's entries (decompressing it), for index rebuild and orphan recovery.
Result<PackInfo> ListPack(const std::string& path, const BlobId& expected);
Result<PackInfo> ListPack(ObjectReader& in, const std::string& path, const BlobId& expected,
                          const PackReadOptions& opts = {});

}  // namespace mv::storage
