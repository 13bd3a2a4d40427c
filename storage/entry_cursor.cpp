#include "storage/entry_cursor.h"

namespace mv::storage {
namespace {

class VecCursor final : public EntryCursor {
 public:
  explicit VecCursor(std::vector<FileEntry> files) : files_(std::move(files)) {}
  Result<bool> Next(FileEntry* out) override {
    if (next_ >= files_.size()) return false;
    last_ = next_;
    *out = std::move(files_[next_++]);
    last_path_ = out->path;
    last_dir_ = out->type == FileType::kDirectory;
    return true;
  }
  void SkipChildren() override {
    if (!last_dir_) return;
    std::string prefix = last_path_ + "/";
    while (next_ < files_.size() && files_[next_].path.starts_with(prefix)) next_++;
    last_dir_ = false;
  }

 private:
  std::vector<FileEntry> files_;
  size_t next_ = 0, last_ = 0;
  std::string last_path_;
  bool last_dir_ = false;
};

}  // namespace

std::unique_ptr<EntryCursor> VectorCursor(std::vector<FileEntry> files) {
  return std::make_unique<VecCursor>(std::move(files));
}

}  // namespace mv::storage
