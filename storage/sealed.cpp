// docs/FORMAT.md §2 (sealed files).
#include "storage/sealed.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "storage/fs.h"
#include "storage/hash.h"

namespace mv::storage {
namespace {

void PutLE(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

std::string Seal(std::string_view magic, const std::string& header_json, std::string_view body,
                 int zstd_level) {
  std::string out;
  out.append(magic);
  PutLE(out, header_json.size(), 4);
  out.append(header_json);
  std::string z(ZSTD_compressBound(body.size()), '\0');
  size_t zn = ZSTD_compress(z.data(), z.size(), body.data(), body.size(), zstd_level);
  z.resize(ZSTD_isError(zn) ? 0 : zn);
  PutLE(out, z.size(), 8);
  out.append(z);
  BlobId h = PlainHash(out.data(), out.size());
  out.append(reinterpret_cast<const char*>(h.bytes.data()), 16);
  return out;
}

SealWriter::SealWriter(std::string_view magic, const std::string& header_json, int zstd_level)
    : cctx_(ZSTD_createCCtx()) {
  out_.append(magic);
  PutLE(out_, header_json.size(), 4);
  out_.append(header_json);
  PutLE(out_, 0, 8);  // body length, patched in Finish()
  body_start_ = out_.size();
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_compressionLevel, zstd_level);
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_contentSizeFlag, 1);
}

SealWriter::~SealWriter() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

void SealWriter::Drain(int mode) {
  auto* cctx = static_cast<ZSTD_CCtx*>(cctx_);
  ZSTD_inBuffer in = {pending_.data(), pending_.size(), 0};
  for (;;) {
    size_t old = out_.size();
    out_.resize(old + ZSTD_CStreamOutSize());
    ZSTD_outBuffer out = {out_.data() + old, ZSTD_CStreamOutSize(), 0};
    size_t rem = ZSTD_compressStream2(cctx, &out, &in, static_cast<ZSTD_EndDirective>(mode));
    out_.resize(old + out.pos);
    if (ZSTD_isError(rem)) break;
    bool done = mode == ZSTD_e_end ? rem == 0 : in.pos == in.size;
    if (done) break;
  }
  pending_ = {};
}

void SealWriter::Append(std::string_view part) {
  pending_ = part;
  Drain(ZSTD_e_continue);
}

std::string SealWriter::Finish() {
  Drain(ZSTD_e_end);
  uint64_t blen = out_.size() - body_start_;
  for (int i = 0; i < 8; i++) out_[body_start_ - 8 + i] = static_cast<char>(blen >> (8 * i));
  BlobId h = PlainHash(out_.data(), out_.size());
  out_.append(reinterpret_cast<const char*>(h.bytes.data()), 16);
  return std::move(out_);
}

namespace {

bool VersionAccepted(char have, std::string_view magic, uint8_t oldest) {
  uint8_t v = static_cast<uint8_t>(have), newest = static_cast<uint8_t>(magic.back());
  return v <= newest && v >= (oldest ? oldest : newest);
}

}  // namespace

Result<Sealed> Unseal(std::string_view data, std::string_view magic, const std::string& path,
                      uint8_t oldest_version) {
  const size_t m = magic.size();
  if (data.size() < m + 4 + 8 + 16 || data.substr(0, m - 1) != magic.substr(0, m - 1) ||
      !VersionAccepted(data[m - 1], magic, oldest_version)) {
    if (data.size() >= m && data.substr(0, m - 1) != magic.substr(0, m - 1))
      return Status::Corruption("not a mailvault file of the expected kind (bad magic)", path);
    if (data.size() >= m && !VersionAccepted(data[m - 1], magic, oldest_version))
      return Status::Unsupported("written by a different format version (" +
                                     std::to_string(static_cast<uint8_t>(data[m - 1])) +
                                     "); use the mailvault release that wrote it",
                                 path);
    return Status::Corruption("file is truncated (" + std::to_string(data.size()) + " bytes)",
                              path);
  }
  BlobId want;
  std::memcpy(want.bytes.data(), data.data() + data.size() - 16, 16);
  if (PlainHash(data.data(), data.size() - 16) != want)
    return Status::Corruption("checksum mismatch: the file is truncated or damaged", path);
  size_t pos = m;
  uint64_t hlen = GetLE(data.data() + pos, 4);
  pos += 4;
  if (hlen > data.size() - pos - 8 - 16) return Status::Corruption("bad header length", path);
  Sealed s;
  s.version = static_cast<uint8_t>(data[m - 1]);
  s.header.assign(data.substr(pos, hlen));
  pos += hlen;
  uint64_t blen = GetLE(data.data() + pos, 8);
  pos += 8;
  if (blen != data.size() - pos - 16) return Status::Corruption("bad body length", path);
  std::string_view z = data.substr(pos, blen);
  // Streamed bodies carry no content size: decompress as a stream.
  s.body.reserve(z.size() * 3);  // manifests compress about 2.5:1; avoids growth by doubling
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_inBuffer in = {z.data(), z.size(), 0};
  size_t rem = 1;
  while (in.pos < in.size || rem != 0) {
    size_t old = s.body.size();
    s.body.resize(old + ZSTD_DStreamOutSize());
    ZSTD_outBuffer out = {s.body.data() + old, ZSTD_DStreamOutSize(), 0};
    rem = ZSTD_decompressStream(d, &out, &in);
    s.body.resize(old + out.pos);
    if (ZSTD_isError(rem) || (out.pos == 0 && in.pos == in.size && rem != 0)) {
      ZSTD_freeDCtx(d);
      return Status::Corruption("body does not decompress", path);
    }
  }
  ZSTD_freeDCtx(d);
  return s;
}

Result<std::string> ReadSealedHeader(const std::string& path, std::string_view magic,
                                     uint8_t oldest_version) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  std::string head(magic.size() + 4, '\0');
  Status st = fs::ReadExact(fd, head.data(), head.size(), 0, path);
  if (st.ok() && head.substr(0, magic.size() - 1) != magic.substr(0, magic.size() - 1))
    st = Status::Corruption("not a mailvault file of the expected kind (bad magic)", path);
  else if (st.ok() && !VersionAccepted(head[magic.size() - 1], magic, oldest_version))
    st = Status::Unsupported(
        "written by a different format version; use the mailvault release "
        "that wrote it",
        path);
  std::string header;
  if (st.ok()) {
    uint64_t hlen = GetLE(head.data() + magic.size(), 4);
    if (hlen > (64u << 20)) st = Status::Corruption("bad header length", path);
    header.resize(hlen);
    if (st.ok()) st = fs::ReadExact(fd, header.data(), hlen, head.size(), path);
  }
  ::close(fd);
  MV_RETURN_IF_ERROR(st);
  return header;
}

Result<std::string> SealedHeaderOf(std::string_view data, std::string_view magic,
                                   const std::string& path, uint8_t oldest_version) {
  size_t head = magic.size() + 4;
  if (data.size() < head) return Status::Corruption("cut short (no header)", path);
  if (data.substr(0, magic.size() - 1) != magic.substr(0, magic.size() - 1))
    return Status::Corruption("not a mailvault file of the expected kind (bad magic)", path);
  if (!VersionAccepted(data[magic.size() - 1], magic, oldest_version))
    return Status::Unsupported(
        "written by a different format version; use the mailvault release that wrote it", path);
  uint64_t hlen = GetLE(data.data() + magic.size(), 4);
  if (hlen > data.size() - head) return Status::Corruption("bad header length", path);
  return std::string(data.substr(head, hlen));
}

}  // namespace mv::storage
