#include "storage/local_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "storage/fs.h"
#include "storage/layout.h"

namespace mv::storage {
namespace {

// Appends the regular files below `dir` (named `rel` relative to the root) to *out.
Status ListInto(const std::string& dir, const std::string& rel, std::vector<ObjectInfo>* out) {
  auto names = fs::ListDir(dir);
  if (!names.ok()) {
    if (names.status().code() == Code::kNotFound) return Status::Ok();
    return names.status();
  }
  for (const auto& n : *names) {
    std::string p = fs::Join(dir, n);
    std::string r = rel.empty() ? n : rel + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile (a prune, a temp file renamed)
      return Status::FromErrno(errno, "stat", p);
    }
    if (S_ISDIR(st.st_mode))
      MV_RETURN_IF_ERROR(ListInto(p, r, out));
    else if (S_ISREG(st.st_mode))
      out->push_back({r, static_cast<uint64_t>(st.st_size)});
  }
  return Status::Ok();
}

}  // namespace

LocalBackend::LocalBackend(std::string root, Env* env) : root_(std::move(root)), env_(env) {}

std::string LocalBackend::Describe(std::string_view rel) const {
  return rel.empty() ? root_ : layout::In(root_, rel);
}

std::string LocalBackend::ScratchDir() const { return layout::TmpDir(root_); }

Status LocalBackend::Create() {
  if (fs::Exists(layout::ConfigFile(root_)))
    return Status::Invalid("a repository already exists here; use it as it is", root_);
  if (fs::Exists(root_)) {
    MV_ASSIGN_OR_RETURN(auto names, fs::ListDir(root_));
    if (!names.empty())
      return Status::Invalid("directory is not empty; give a new or empty directory", root_);
  }
  MV_RETURN_IF_ERROR(fs::MakeDirs(root_, 0700, env_));
  for (const char* d : layout::kTopDirs)
    MV_RETURN_IF_ERROR(fs::MakeDirs(fs::Join(root_, d), 0700, env_));
  return Status::Ok();
}

Result<std::vector<ObjectInfo>> LocalBackend::List(const std::string& dir) const {
  std::vector<ObjectInfo> out;
  MV_RETURN_IF_ERROR(ListInto(dir.empty() ? root_ : Describe(dir), dir, &out));
  return out;
}

Result<std::string> LocalBackend::Read(const std::string& name) const {
  return fs::ReadFile(Describe(name));
}

Result<std::unique_ptr<ObjectReader>> LocalBackend::OpenReader(const std::string& name) const {
  std::string p = Describe(name);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", p);
  return NewFdReader(fd, p);
}

Result<std::string> LocalBackend::ReadAt(const std::string& name, uint64_t offset,
                                         uint64_t length) const {
  std::string p = Describe(name);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", p);
  std::string out(length, '\0');
  Status st = fs::ReadExact(fd, out.data(), length, offset, p);
  ::close(fd);
  MV_RETURN_IF_ERROR(st);
  return out;
}

Result<uint64_t> LocalBackend::Size(const std::string& name) const {
  std::string p = Describe(name);
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return Status::FromErrno(errno, "stat", p);
  return static_cast<uint64_t>(st.st_size);
}

Status LocalBackend::Put(const std::string& name, std::string_view data) {
  std::string dst = Describe(name);
  // Directories made later than `init` (verifications/, held/) are made by their first file.
  if (!fs::Exists(fs::Dirname(dst))) MV_RETURN_IF_ERROR(fs::MakeDirs(fs::Dirname(dst), 0700, env_));
  return fs::WriteFileAtomic(dst, data, env_);
}

Status LocalBackend::PutFile(const std::string& local_path, const std::string& name) {
  std::string dst = Describe(name);
  MV_RETURN_IF_ERROR(fs::MakeDirs(fs::Dirname(dst), 0700, env_));
  return env_->Rename(local_path, dst);
}

Status LocalBackend::SyncDir(const std::string& dir) {
  return fs::FsyncDir(dir.empty() ? root_ : Describe(dir), env_);
}

Status LocalBackend::Delete(const std::string& name) {
  return fs::RemoveFile(Describe(name), env_);
}

Result<std::unique_ptr<HeldLock>> LocalBackend::LockExclusive(const std::string& purpose,
                                                              const LockWait& wait,
                                                              std::string* took_over_stale) {
  MV_ASSIGN_OR_RETURN(auto lock,
                      RepoLock::AcquireExclusive(root_, purpose, wait, took_over_stale, env_));
  return std::unique_ptr<HeldLock>(std::move(lock));
}

}  // namespace mv::storage
