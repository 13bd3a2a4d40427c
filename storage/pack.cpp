// docs/FORMAT.md §5 (packs).
#include "storage/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <zstd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "storage/fs.h"
#include "storage/layout.h"

namespace mv::storage {
namespace {

constexpr uint64_t kTarBlock = 512;

// libarchive writes the uncompressed tar (unblocked, so every byte reaches WriteCb as written);
// this writer compresses it into independent zstd frames, ending a frame after an entry once it
// holds kFrameTarget bytes of tar, and appends the seek table (§5.1) after the last one.
class LibarchivePackWriter final : public PackWriter {
 public:
  LibarchivePackWriter(std::string tmp_path, std::unique_ptr<PackSink> sink)
      : tmp_path_(std::move(tmp_path)), sink_(std::move(sink)) {}
  ~LibarchivePackWriter() override {  // the sink removes its temp file unless committed
    if (a_) archive_write_free(a_);
    if (entry_) archive_entry_free(entry_);
    if (cctx_) ZSTD_freeCCtx(cctx_);
  }

  Status Open(int level) {
    a_ = archive_write_new();
    entry_ = archive_entry_new();
    cctx_ = ZSTD_createCCtx();
    if (!a_ || !entry_ || !cctx_)
      return Status::IOError("out of memory creating pack writer", tmp_path_);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1)))
      return Status::Invalid("zstd level " + std::to_string(level) + " is not supported",
                             tmp_path_);
    out_.resize(ZSTD_CStreamOutSize());
    if (archive_write_set_format_ustar(a_) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a_, 0) != ARCHIVE_OK)
      return Err("configure pack writer");
    if (archive_write_open2(a_, this, nullptr, &WriteCb, nullptr, nullptr) != ARCHIVE_OK)
      return Err("open pack writer");
    return Status::Ok();
  }

  Status Add(const BlobId& id, const void* data, size_t len) override {
    if (!write_status_.ok()) return write_status_;
    std::string name = id.Hex();
    archive_entry_clear(entry_);
    archive_entry_set_pathname(entry_, name.c_str());
    archive_entry_set_size(entry_, static_cast<la_int64_t>(len));
    archive_entry_set_filetype(entry_, AE_IFREG);
    archive_entry_set_perm(entry_, 0600);
    archive_entry_set_mtime(entry_, 0, 0);
    if (archive_write_header(a_, entry_) != ARCHIVE_OK) return Err("write tar header");
    if (len > 0) {
      la_ssize_t n = archive_write_data(a_, data, len);
      if (n < 0 || static_cast<size_t>(n) != len) return Err("write tar data");
    }
    if (archive_write_finish_entry(a_) != ARCHIVE_OK) return Err("write tar padding");
    info_.entries.push_back({id, raw_ + kTarBlock, len});
    raw_ += kTarBlock + (len + kTarBlock - 1) / kTarBlock * kTarBlock;
    if (fed_ != raw_)
      return Status::IOError("pack writer out of step with libarchive (" + std::to_string(fed_) +
                                 " tar bytes written, " + std::to_string(raw_) + " expected)",
                             tmp_path_);
    if (fed_ - frame_start_raw_ >= kPackFrameTarget) return EndFrame();
    return Status::Ok();
  }

  uint64_t raw_bytes() const override { return raw_; }
  size_t count() const override { return info_.entries.size(); }

  Result<PackInfo> Finish(Backend& dest) override {
    if (archive_write_close(a_) != ARCHIVE_OK) return Err("close pack");
    MV_RETURN_IF_ERROR(write_status_);
    if (fed_ > frame_start_raw_) MV_RETURN_IF_ERROR(EndFrame());
    MV_RETURN_IF_ERROR(Emit(EncodeSeekTable(frames_)));
    MV_ASSIGN_OR_RETURN(info_.pack_id, sink_->Close());
    info_.file_size = written_;
    // On failure the sink removes the temp file.
    MV_RETURN_IF_ERROR(sink_->Commit(dest, layout::PackRelPath(info_.pack_id)));
    return std::move(info_);
  }

 private:
  static la_ssize_t WriteCb(struct archive*, void* self, const void* buf, size_t n) {
    auto* w = static_cast<LibarchivePackWriter*>(self);
    Status st = w->Compress(buf, n, ZSTD_e_continue);
    if (!st.ok()) {
      w->write_status_ = st;
      return -1;
    }
    w->fed_ += n;
    return static_cast<la_ssize_t>(n);
  }

  Status Compress(const void* buf, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{buf, n, 0};
    for (;;) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t left = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(left))
        return Status::IOError(std::string("zstd: ") + ZSTD_getErrorName(left), tmp_path_);
      MV_RETURN_IF_ERROR(Emit(std::string_view(out_.data(), out.pos)));
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return Status::Ok();
    }
  }

  Status EndFrame() {
    MV_RETURN_IF_ERROR(Compress(nullptr, 0, ZSTD_e_end));
    frames_.push_back({written_ - frame_start_, fed_ - frame_start_raw_});
    frame_start_ = written_;
    frame_start_raw_ = fed_;
    return Status::Ok();
  }

  Status Emit(std::string_view bytes) {
    if (bytes.empty()) return Status::Ok();
    MV_RETURN_IF_ERROR(sink_->Append(bytes));
    written_ += bytes.size();
    return Status::Ok();
  }

  Status Err(const char* what) {
    if (!write_status_.ok()) return write_status_;
    const char* msg = a_ ? archive_error_string(a_) : nullptr;
    return Status::IOError(std::string(what) + ": " + (msg ? msg : "libarchive error"), tmp_path_);
  }

  std::string tmp_path_;  // for messages
  std::unique_ptr<PackSink> sink_;
  struct archive* a_ = nullptr;
  struct archive_entry* entry_ = nullptr;
  ZSTD_CCtx* cctx_ = nullptr;
  std::string out_;
  PackInfo info_;
  std::vector<PackFrame> frames_;
  uint64_t raw_ = 0;      // tar bytes of the entries added
  uint64_t fed_ = 0;      // tar bytes libarchive wrote (raw_, and the trailer once closed)
  uint64_t written_ = 0;  // compressed bytes in the file
  uint64_t frame_start_ = 0, frame_start_raw_ = 0;  // where the open frame began
  Status write_status_;
};

// Feeds libarchive from a reader while hashing the compressed bytes.
struct ReadCtx {
  ObjectReader* in = nullptr;
  std::string path;
  PlainHashStream hash;
  uint64_t size = 0;
  std::string buf = std::string(1 << 20, '\0');
  Status status;
};

la_ssize_t ReadCb(struct archive*, void* p, const void** out) {
  auto* c = static_cast<ReadCtx*>(p);
  auto n = c->in->Read(c->buf.data(), c->buf.size());
  if (!n.ok()) {
    c->status = n.status();
    return -1;
  }
  c->hash.Update(c->buf.data(), *n);
  c->size += *n;
  *out = c->buf.data();
  return static_cast<la_ssize_t>(*n);
}

constexpr uint32_t kSkippableMagic = 0x184D2A5E;  // zstd skippable frame, nibble E
constexpr uint32_t kSeekableMagic = 0x8F92EAB1;   // zstd seekable format footer
constexpr size_t kSeekFooter = 9;                 // frame count, descriptor, magic

void PutLe32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; i++) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string PackRelPath(const BlobId& pack_id) { return layout::PackRelPath(pack_id); }

Result<std::unique_ptr<PackWriter>> PackWriter::Create(const std::string& tmp_dir, int level,
                                                       Env* env, Backend* dest) {
  std::string tmp = fs::Join(tmp_dir, "pack-" + fs::RandomHex(8) + ".tmp");
  MV_ASSIGN_OR_RETURN(auto sink, dest ? dest->NewPackSink(tmp, env) : NewFilePackSink(tmp, env));
  auto w = std::make_unique<LibarchivePackWriter>(tmp, std::move(sink));
  MV_RETURN_IF_ERROR(w->Open(level));
  return std::unique_ptr<PackWriter>(std::move(w));
}

Status ReadPack(const std::string& path, const BlobId& expected, const PackReadOptions& opts,
                const PackWantFn& want, const PackBlobFn& on_blob) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open pack", path);
  auto in = NewFdReader(fd, path);
  return ReadPack(*in, path, expected, opts, want, on_blob);
}

Status ReadPack(ObjectReader& in, const std::string& path, const BlobId& expected,
                const PackReadOptions& opts, const PackWantFn& want, const PackBlobFn& on_blob) {
  ReadCtx ctx;
  ctx.path = path;
  ctx.in = &in;
  struct archive* a = archive_read_new();
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  Status st;
  bool stopped = false;
  if (archive_read_open(a, &ctx, nullptr, &ReadCb, nullptr) != ARCHIVE_OK) {
    st = Status::Corruption(std::string("not a readable tar.zst pack: ") +
                                (archive_error_string(a) ? archive_error_string(a) : "?"),
                            path);
  }
  std::string data;
  struct archive_entry* e;
  while (st.ok()) {
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      st = ctx.status.ok()
               ? Status::Corruption(std::string("damaged pack: ") + archive_error_string(a), path)
               : ctx.status;
      break;
    }
    const char* name = archive_entry_pathname(e);
    BlobId id;
    if (!name || !BlobId::FromHex(name, &id)) {
      st = Status::Corruption(std::string("pack entry is not a blob ID: ") + (name ? name : "?"),
                              path);
      break;
    }
    uint64_t len = static_cast<uint64_t>(archive_entry_size(e));
    if (!want(id, len)) continue;  // libarchive skips the data on the next header read
    data.resize(len);
    uint64_t got = 0;
    while (got < len) {
      la_ssize_t n = archive_read_data(a, data.data() + got, len - got);
      if (n <= 0) break;
      got += static_cast<uint64_t>(n);
    }
    if (got != len) {
      st = ctx.status.ok() ? Status::Corruption("damaged pack: blob " + id.Hex() +
                                                    " is cut short (" + std::to_string(got) +
                                                    " of " + std::to_string(len) + " bytes)",
                                                path)
                           : ctx.status;
      break;
    }
    if (!on_blob(id, data)) {
      stopped = true;
      break;
    }
  }
  if (st.ok() && !stopped && opts.verify_pack_hash) {
    // Drain what libarchive did not need (end-of-archive padding) so the hash covers the file.
    const void* p;
    while (ReadCb(a, &ctx, &p) > 0) {
    }
    if (!ctx.status.ok())
      st = ctx.status;
    else if (!opts.reader_checks_name && ctx.hash.Final() != expected)
      st = Status::Corruption(
          "pack content does not match its name (bit rot or tampering); "
          "run `mailvault check` to see what it affects",
          path);
  }
  archive_read_free(a);
  return st;
}

Result<PackInfo> ListPack(const std::string& path, const BlobId& expected) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open pack", path);
  auto in = NewFdReader(fd, path);
  return ListPack(*in, path, expected);
}

Result<PackInfo> ListPack(ObjectReader& in, const std::string& path, const BlobId& expected,
                          const PackReadOptions& opts) {
  PackInfo info;
  info.pack_id = expected;
  uint64_t offset = 0;
  struct Counting final : ObjectReader {
    ObjectReader* in;
    uint64_t size = 0;
    explicit Counting(ObjectReader* r) : in(r) {}
    Result<size_t> Read(char* buf, size_t n) override {
      auto got = in->Read(buf, n);
      if (got.ok()) size += *got;
      return got;
    }
  } counting(&in);
  Status st = ReadPack(
      counting, path, expected, opts,
      [&](const BlobId& id, uint64_t len) {
        info.entries.push_back({id, offset + kTarBlock, len});
        offset += kTarBlock + (len + kTarBlock - 1) / kTarBlock * kTarBlock;
        return false;
      },
      [](const BlobId&, std::string_view) { return true; });
  MV_RETURN_IF_ERROR(st);
  info.file_size = counting.size;  // the hash check read the whole pack
  return info;
}

std::string EncodeSeekTable(const std::vector<PackFrame>& frames) {
  std::string out;
  PutLe32(&out, kSkippableMagic);
  PutLe32(&out, static_cast<uint32_t>(frames.size() * 8 + kSeekFooter));
  for (const auto& f : frames) {
    PutLe32(&out, static_cast<uint32_t>(f.compressed));
    PutLe32(&out, static_cast<uint32_t>(f.raw));
  }
  PutLe32(&out, static_cast<uint32_t>(frames.size()));
  out.push_back('\0');  // descriptor: no checksums in the table (the frames carry their own)
  PutLe32(&out, kSeekableMagic);
  return out;
}

std::vector<PackFrame> ParseSeekTable(std::string_view tail, uint64_t* table_bytes) {
  *table_bytes = 0;
  if (tail.size() < kSeekFooter + 8) return {};
  const char* end = tail.data() + tail.size();
  if (GetLe32(end - 4) != kSeekableMagic) return {};
  uint8_t desc = static_cast<uint8_t>(end[-5]);
  if (desc & 0x7f) return {};  // reserved bits set: not a table this reader knows
  uint64_t n = GetLe32(end - 9);
  uint64_t entry = (desc & 0x80) ? 12 : 8;
  uint64_t total = 8 + n * entry + kSeekFooter;
  *table_bytes = total;
  if (total > tail.size()) return {};
  const char* p = end - total;
  if (GetLe32(p) != kSkippableMagic || GetLe32(p + 4) != total - 8) return {};
  std::vector<PackFrame> frames(n);
  for (uint64_t i = 0; i < n; i++) {
    frames[i].compressed = GetLe32(p + 8 + i * entry);
    frames[i].raw = GetLe32(p + 12 + i * entry);
  }
  return frames;
}

namespace {

constexpr uint64_t kSeekTail = 16 << 10;   // bytes fetched first from a pack's end
constexpr uint64_t kFrameGap = 64 << 10;   // unneeded bytes fetched rather than a request more
constexpr uint64_t kFrameFetch = 4 << 20;  // at most this many compressed bytes per request

struct FrameRun {
  size_t first = 0, last = 0;  // frames [first, last]
};

}  // namespace

Status ReadPackFrames(const Backend& backend, const std::string& path, const PackInfo& info,
                      const std::vector<bool>& selected, const PackBlobFn& on_blob,
                      bool* read_whole) {
  *read_whole = true;
  if (info.file_size < kMinFramedRead || selected.size() != info.entries.size())
    return Status::Ok();
  // Most of the pack wanted (a tree load, a full restore): one stream, without asking for the
  // table first.
  uint64_t want_raw = 0;
  for (size_t k = 0; k < info.entries.size(); k++)
    if (selected[k]) want_raw += kTarBlock + info.entries[k].length;
  const PackEntry* last = info.entries.empty() ? nullptr : &info.entries.back();
  if (!last || want_raw * 10 > (last->offset + last->length) * 7) return Status::Ok();
  const std::string rel = layout::PackRelPath(info.pack_id);
  uint64_t tail_len = std::min(info.file_size, kSeekTail);
  MV_ASSIGN_OR_RETURN(std::string tail, backend.ReadAt(rel, info.file_size - tail_len, tail_len));
  uint64_t table = 0;
  std::vector<PackFrame> frames = ParseSeekTable(tail, &table);
  if (frames.empty() && table > tail.size() && table <= info.file_size) {
    MV_ASSIGN_OR_RETURN(tail, backend.ReadAt(rel, info.file_size - table, table));
    frames = ParseSeekTable(tail, &table);
  }
  if (frames.empty()) return Status::Ok();
  // Where each frame starts, compressed and in the tar; a table that does not add up to the
  // file is not trusted (the whole read then checks what the pack holds).
  std::vector<uint64_t> cstart(frames.size() + 1), rstart(frames.size() + 1);
  for (size_t i = 0; i < frames.size(); i++) {
    cstart[i + 1] = cstart[i] + frames[i].compressed;
    rstart[i + 1] = rstart[i] + frames[i].raw;
  }
  if (cstart.back() + table != info.file_size) return Status::Ok();
  // The frames each selected entry (its tar header and data) lies in.
  std::vector<bool> needed(frames.size());
  bool any = false;
  for (size_t k = 0; k < info.entries.size(); k++) {
    if (!selected[k]) continue;
    const PackEntry& e = info.entries[k];
    if (e.offset < kTarBlock || e.offset + e.length > rstart.back()) return Status::Ok();
    size_t a =
        std::upper_bound(rstart.begin(), rstart.end(), e.offset - kTarBlock) - rstart.begin() - 1;
    uint64_t last_byte = (e.length > 0 ? e.offset + e.length : e.offset) - 1;
    size_t b = std::upper_bound(rstart.begin(), rstart.end(), last_byte) - rstart.begin() - 1;
    for (size_t f = a; f <= b; f++) needed[f] = true;
    any = true;
  }
  if (!any) {
    *read_whole = false;
    return Status::Ok();
  }
  std::vector<FrameRun> runs;
  uint64_t fetch = 0;
  for (size_t f = 0; f < frames.size(); f++) {
    if (!needed[f]) continue;
    if (!runs.empty() && cstart[f] - cstart[runs.back().last + 1] <= kFrameGap)
      runs.back().last = f;
    else
      runs.push_back({f, f});
  }
  for (const auto& r : runs) fetch += cstart[r.last + 1] - cstart[r.first];
  if (fetch * 10 > info.file_size * 7) return Status::Ok();  // most of it: one stream is cheaper
  *read_whole = false;

  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (!dctx) return Status::IOError("out of memory reading pack", path);
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> free_dctx(dctx, ZSTD_freeDCtx);
  // Frames are decompressed one at a time into a window that holds the tar bytes from the next
  // wanted entry's header on, so memory is one frame and the largest wanted blob, not the run.
  // A run is fetched in pieces of at most kFrameFetch compressed bytes (one request each).
  std::string comp, window;
  uint64_t wstart = 0;  // tar offset of window[0]
  size_t k = 0;
  for (const auto& r : runs) {
    window.clear();
    wstart = rstart[r.first];
    for (size_t f = r.first; f <= r.last;) {
      size_t g = f;
      while (g < r.last && cstart[g + 2] - cstart[f] <= kFrameFetch) g++;
      MV_ASSIGN_OR_RETURN(comp, backend.ReadAt(rel, cstart[f], cstart[g + 1] - cstart[f]));
      if (comp.size() != cstart[g + 1] - cstart[f])
        return Status::Corruption(
            "pack is shorter than its seek table says; run "
            "`mailvault check --read-data` to see what it affects",
            path);
      for (size_t h = f; h <= g; h++) {
        size_t at = window.size();
        window.resize(at + frames[h].raw);
        size_t got =
            ZSTD_decompressDCtx(dctx, window.data() + at, frames[h].raw,
                                comp.data() + (cstart[h] - cstart[f]), frames[h].compressed);
        if (ZSTD_isError(got) || got != frames[h].raw)
          return Status::Corruption(
              "damaged pack: bytes " + std::to_string(cstart[h]) + "-" +
                  std::to_string(cstart[h + 1] - 1) + " do not decompress to the " +
                  std::to_string(frames[h].raw) + " tar bytes its seek table names (" +
                  (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short") +
                  "); run `mailvault check --read-data` to see what it affects",
              path);
        const uint64_t wend = rstart[h + 1];
        for (; k < info.entries.size(); k++) {
          const PackEntry& e = info.entries[k];
          if (!selected[k]) continue;
          if (e.offset + e.length > wend) break;  // not all in the window yet
          if (e.offset - kTarBlock < wstart)      // entries out of tar order: a damaged index
            return Status::Corruption("the index lists blob " + e.id.Hex() +
                                          " out of tar order; run `mailvault repair index`",
                                      path);
          std::string hex = e.id.Hex();
          const char* hdr = window.data() + (e.offset - kTarBlock - wstart);
          if (std::memcmp(hdr, hex.data(), hex.size()) != 0 || hdr[hex.size()] != '\0')
            return Status::Corruption("the index places blob " + hex + " at tar offset " +
                                          std::to_string(e.offset) +
                                          " of this pack, but another entry is there; run "
                                          "`mailvault repair index`",
                                      path);
          if (!on_blob(e.id, std::string_view(window.data() + (e.offset - wstart), e.length)))
            return Status::Ok();
        }
        // Keep only what the next wanted entry needs (its header on), if it starts here.
        uint64_t keep = wend;
        if (k < info.entries.size()) keep = std::min(keep, info.entries[k].offset - kTarBlock);
        if (keep > wstart) {
          window.erase(0, keep - wstart);
          wstart = keep;
        }
      }
      f = g + 1;
    }
  }
  return Status::Ok();
}

}  // namespace mv::storage
