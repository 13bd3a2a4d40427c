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

Result<Sealed> Unseal(std::string_view data, std::string_view magic, const std::string& path) {
  const size_t m = magic.size();
  if (data.size() < m + 4 + 8 + 16 || data.substr(0, m) != magic) {
    if (data.size() >= m && data.substr(0, m - 1) != magic.substr(0, m - 1))
      return Status::Corruption("not a mailvault file of the expected kind (bad magic)", path);
    if (data.size() >= m && data[m - 1] != magic[m - 1])
      return Status::Unsupported("written by a different format version (" +
                                 std::to_string(static_cast<int>(data[m - 1])) +
                                 "); use the mailvault release that wrote it", path);
    return Status::Corruption("file is truncated (" + std::to_string(data.size()) + " bytes)", path);
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
  s.header.assign(data.substr(pos, hlen));
  pos += hlen;
  uint64_t blen = GetLE(data.data() + pos, 8);
  pos += 8;
  if (blen != data.size() - pos - 16) return Status::Corruption("bad body length", path);
  std::string_view z = data.substr(pos, blen);
  unsigned long long raw = ZSTD_getFrameContentSize(z.data(), z.size());
  if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN || raw > (1ULL << 34))
    return Status::Corruption("body is not a zstd frame", path);
  s.body.resize(raw);
  size_t n = ZSTD_decompress(s.body.data(), s.body.size(), z.data(), z.size());
  if (ZSTD_isError(n) || n != raw) return Status::Corruption("body does not decompress", path);
  return s;
}

Result<std::string> ReadSealedHeader(const std::string& path, std::string_view magic) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  std::string head(magic.size() + 4, '\0');
  Status st = fs::ReadExact(fd, head.data(), head.size(), 0, path);
  if (st.ok() && head.substr(0, magic.size() - 1) != magic.substr(0, magic.size() - 1))
    st = Status::Corruption("not a mailvault file of the expected kind (bad magic)", path);
  else if (st.ok() && head[magic.size() - 1] != magic.back())
    st = Status::Unsupported("written by a different format version; use the mailvault release "
                             "that wrote it", path);
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

}  // namespace mv::storage
