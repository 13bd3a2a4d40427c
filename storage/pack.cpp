// docs/FORMAT.md §5 (packs).
#include "storage/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/fs.h"
#include "storage/layout.h"

namespace mv::storage {
namespace {

constexpr uint64_t kTarBlock = 512;

class LibarchivePackWriter final : public PackWriter {
 public:
  LibarchivePackWriter(std::string tmp_path, std::unique_ptr<WritableFile> file, Env* env)
      : tmp_path_(std::move(tmp_path)), file_(std::move(file)), env_(env) {}
  ~LibarchivePackWriter() override {
    if (a_) archive_write_free(a_);
    if (entry_) archive_entry_free(entry_);
    if (!tmp_path_.empty()) {  // not finished (or not moved into place): the temp file goes
      file_.reset();
      (void)env_->RemoveFile(tmp_path_);
    }
  }

  Status Open(int level) {
    a_ = archive_write_new();
    entry_ = archive_entry_new();
    if (!a_ || !entry_) return Status::IOError("out of memory creating pack writer", tmp_path_);
    std::string lvl = std::to_string(level);
    if (archive_write_set_format_ustar(a_) != ARCHIVE_OK ||
        archive_write_add_filter_zstd(a_) != ARCHIVE_OK ||
        archive_write_set_filter_option(a_, "zstd", "compression-level", lvl.c_str()) !=
            ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a_, 64 * 1024) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a_, 1) != ARCHIVE_OK)
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
    info_.entries.push_back({id, raw_ + kTarBlock, len});
    raw_ += kTarBlock + (len + kTarBlock - 1) / kTarBlock * kTarBlock;
    return Status::Ok();
  }

  uint64_t raw_bytes() const override { return raw_; }
  size_t count() const override { return info_.entries.size(); }

  Result<PackInfo> Finish(Backend& dest) override {
    if (archive_write_close(a_) != ARCHIVE_OK) return Err("close pack");
    MV_RETURN_IF_ERROR(write_status_);
    MV_RETURN_IF_ERROR(file_->Sync());
    MV_RETURN_IF_ERROR(file_->Close());
    info_.pack_id = hash_.Final();
    info_.file_size = written_;
    file_.reset();
    // On failure the destructor removes the temp file.
    MV_RETURN_IF_ERROR(dest.PutFile(tmp_path_, layout::PackRelPath(info_.pack_id)));
    tmp_path_.clear();
    return std::move(info_);
  }

 private:
  static la_ssize_t WriteCb(struct archive*, void* self, const void* buf, size_t n) {
    auto* w = static_cast<LibarchivePackWriter*>(self);
    Status st = w->file_->Append(std::string_view(static_cast<const char*>(buf), n));
    if (!st.ok()) {
      w->write_status_ = st;
      return -1;
    }
    w->hash_.Update(buf, n);
    w->written_ += n;
    return static_cast<la_ssize_t>(n);
  }

  Status Err(const char* what) {
    if (!write_status_.ok()) return write_status_;
    const char* msg = a_ ? archive_error_string(a_) : nullptr;
    return Status::IOError(std::string(what) + ": " + (msg ? msg : "libarchive error"), tmp_path_);
  }

  std::string tmp_path_;
  std::unique_ptr<WritableFile> file_;  // null once renamed into place
  Env* env_;
  struct archive* a_ = nullptr;
  struct archive_entry* entry_ = nullptr;
  PlainHashStream hash_;
  PackInfo info_;
  uint64_t raw_ = 0, written_ = 0;
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

// A pack file on this machine's disk.
class PackFileReader final : public ObjectReader {
 public:
  PackFileReader(int fd, const std::string& path) : fd_(fd), path_(path) {}
  ~PackFileReader() override { ::close(fd_); }
  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, buf, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Status::FromErrno(errno, "read pack", path_);
      return static_cast<size_t>(got);
    }
  }

 private:
  int fd_;
  const std::string& path_;
};

}  // namespace

std::string PackRelPath(const BlobId& pack_id) { return layout::PackRelPath(pack_id); }

Result<std::unique_ptr<PackWriter>> PackWriter::Create(const std::string& tmp_dir, int level,
                                                       Env* env) {
  std::string tmp = fs::Join(tmp_dir, "pack-" + fs::RandomHex(8) + ".tmp");
  MV_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp, 0600));
  auto w = std::make_unique<LibarchivePackWriter>(tmp, std::move(file), env);
  MV_RETURN_IF_ERROR(w->Open(level));
  return std::unique_ptr<PackWriter>(std::move(w));
}

Status ReadPack(const std::string& path, const BlobId& expected, const PackReadOptions& opts,
                const PackWantFn& want, const PackBlobFn& on_blob) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open pack", path);
  PackFileReader in(fd, path);
  return ReadPack(in, path, expected, opts, want, on_blob);
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
    if (ctx.hash.Final() != expected)
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
  PackFileReader in(fd, path);
  return ListPack(in, path, expected);
}

Result<PackInfo> ListPack(ObjectReader& in, const std::string& path, const BlobId& expected) {
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
      counting, path, expected, {},
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

}  // namespace mv::storage
