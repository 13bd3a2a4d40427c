#include "storage/backend.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mv::storage {
namespace {

class FdReader final : public ObjectReader {
 public:
  FdReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FdReader() override { ::close(fd_); }
  Result<size_t> Read(char* buf, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, buf, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Status::FromErrno(errno, "read", path_);
      return static_cast<size_t>(got);
    }
  }

 private:
  int fd_;
  std::string path_;
};

class FilePackSink final : public PackSink {
 public:
  FilePackSink(std::unique_ptr<WritableFile> file, Env* env)
      : path_(file->path()), file_(std::move(file)), env_(env) {}
  ~FilePackSink() override {
    if (path_.empty()) return;
    file_.reset();
    (void)env_->RemoveFile(path_);
  }
  Status Append(std::string_view bytes) override {
    MV_RETURN_IF_ERROR(file_->Append(bytes));
    hash_.Update(bytes.data(), bytes.size());
    return Status::Ok();
  }
  Result<BlobId> Close() override {
    MV_RETURN_IF_ERROR(file_->Sync());
    MV_RETURN_IF_ERROR(file_->Close());
    return hash_.Final();
  }
  Status Commit(Backend& dest, const std::string& name) override {
    MV_RETURN_IF_ERROR(dest.PutFile(path_, name));
    path_.clear();
    return Status::Ok();
  }

 private:
  std::string path_;  // empty once committed
  std::unique_ptr<WritableFile> file_;
  Env* env_;
  PlainHashStream hash_;
};

}  // namespace

Result<std::unique_ptr<PackSink>> NewFilePackSink(const std::string& tmp_path, Env* env) {
  MV_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp_path, 0600));
  return std::unique_ptr<PackSink>(new FilePackSink(std::move(file), env));
}

std::unique_ptr<ObjectReader> NewFdReader(int fd, std::string path) {
  return std::make_unique<FdReader>(fd, std::move(path));
}

Result<std::string> Backend::ReadAt(const std::string& name, uint64_t offset,
                                    uint64_t length) const {
  MV_ASSIGN_OR_RETURN(auto in, OpenReader(name));
  std::string out(length, '\0');
  std::string skip(offset > 0 ? std::min<uint64_t>(offset, 1 << 20) : 0, '\0');
  uint64_t pos = 0;
  while (pos < offset + length) {
    bool skipping = pos < offset;
    size_t want = skipping ? std::min<uint64_t>(skip.size(), offset - pos)
                           : static_cast<size_t>(offset + length - pos);
    MV_ASSIGN_OR_RETURN(size_t n,
                        in->Read(skipping ? skip.data() : out.data() + (pos - offset), want));
    if (n == 0)
      return Status::Corruption("object ends at byte " + std::to_string(pos) + ", before byte " +
                                    std::to_string(offset + length) + " was read",
                                Describe(name));
    pos += n;
  }
  return out;
}

Result<std::vector<std::string>> ListNames(const Backend& backend, const std::string& dir) {
  MV_ASSIGN_OR_RETURN(auto objects, backend.List(dir));
  std::vector<std::string> names;
  for (auto& o : objects) {
    std::string_view n = std::string_view(o.name).substr(dir.size() + 1);
    if (n.find('/') == std::string_view::npos) names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace mv::storage
