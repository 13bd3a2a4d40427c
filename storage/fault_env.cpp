// storage/fault_env.h: faults and the power-cut model.
#include "storage/fault_env.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "storage/fs.h"

namespace mv::storage {
namespace {

// One spelling per path, so that "a/b/../c", "a//c" and "a/c/" track the same entry.
std::string Norm(const std::string& p) {
  std::string n = std::filesystem::path(p).lexically_normal().string();
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

std::string Parent(const std::string& normalized) { return fs::Dirname(normalized); }

bool IsFile(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool IsDir(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Puts `data` back as the file `path` (mode 0600: modes are not modelled).
Status WriteRaw(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "FaultEnv: put back", path);
  Status st = fs::WriteAll(fd, data.data(), data.size(), path);
  ::close(fd);
  return st;
}

const char* OpName(FaultEnv::Op op) {
  switch (op) {
    case FaultEnv::Op::kWrite:
      return "write";
    case FaultEnv::Op::kSync:
      return "fsync";
    case FaultEnv::Op::kRename:
      return "rename";
  }
  return "?";
}

}  // namespace

// Forwards to the base file; FaultEnv decides first whether the operation happens.
class FaultFile final : public WritableFile {
 public:
  FaultFile(FaultEnv* env, std::unique_ptr<WritableFile> base,
            std::shared_ptr<FaultEnv::FileState> st)
      : env_(env), base_(std::move(base)), state_(std::move(st)) {}

  Status Append(std::string_view data) override {
    MV_ASSIGN_OR_RETURN(uint64_t n, Admit(data.size()));
    MV_RETURN_IF_ERROR(base_->Append(data.substr(0, n)));
    Wrote(pos_, n);
    pos_ += n;
    return n == data.size() ? Status::Ok() : Status::FromErrno(ENOSPC, "write", path());
  }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    MV_ASSIGN_OR_RETURN(uint64_t n, Admit(data.size()));
    MV_RETURN_IF_ERROR(base_->WriteAt(offset, data.substr(0, n)));
    Wrote(offset, n);
    return n == data.size() ? Status::Ok() : Status::FromErrno(ENOSPC, "write", path());
  }

  Status Sync() override {
    std::lock_guard<std::mutex> l(env_->mu_);
    MV_RETURN_IF_ERROR(env_->Check(FaultEnv::Op::kSync, path()));
    MV_RETURN_IF_ERROR(base_->Sync());
    state_->synced = state_->size;
    return Status::Ok();
  }

  Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }

 private:
  // How many of `len` bytes may be written (the rest: disk full), or the injected failure.
  Result<uint64_t> Admit(size_t len) {
    std::lock_guard<std::mutex> l(env_->mu_);
    MV_RETURN_IF_ERROR(env_->Check(FaultEnv::Op::kWrite, path()));
    uint64_t n = len;
    if (env_->space_left_) {
      if (*env_->space_left_ == 0 && len > 0) return Status::FromErrno(ENOSPC, "write", path());
      n = std::min<uint64_t>(n, *env_->space_left_);
      *env_->space_left_ -= n;
    }
    return n;
  }
  void Wrote(uint64_t offset, uint64_t n) {
    std::lock_guard<std::mutex> l(env_->mu_);
    state_->size = std::max(state_->size, offset + n);
  }

  FaultEnv* env_;
  std::unique_ptr<WritableFile> base_;
  std::shared_ptr<FaultEnv::FileState> state_;
  uint64_t pos_ = 0;
};

FaultEnv::FaultEnv(Env* base) : base_(base) {}
FaultEnv::~FaultEnv() = default;

void FaultEnv::FailNth(Op op, uint64_t n, int err) {
  std::lock_guard<std::mutex> l(mu_);
  auto i = static_cast<size_t>(op);
  faults_[i] = {counts_[i] + n, err};
}

void FaultEnv::DiskFullAfter(uint64_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  space_left_ = bytes;
}

void FaultEnv::CutPowerAtSync(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  cut_at_sync_ = counts_[static_cast<size_t>(Op::kSync)] + n;
}

bool FaultEnv::power_is_cut() const {
  std::lock_guard<std::mutex> l(mu_);
  return dead_;
}

uint64_t FaultEnv::syncs() const {
  std::lock_guard<std::mutex> l(mu_);
  return counts_[static_cast<size_t>(Op::kSync)];
}
uint64_t FaultEnv::writes() const {
  std::lock_guard<std::mutex> l(mu_);
  return counts_[static_cast<size_t>(Op::kWrite)];
}
uint64_t FaultEnv::renames() const {
  std::lock_guard<std::mutex> l(mu_);
  return counts_[static_cast<size_t>(Op::kRename)];
}

std::vector<std::string> FaultEnv::sync_log() const {
  std::lock_guard<std::mutex> l(mu_);
  return sync_log_;
}

Status FaultEnv::CheckAlive(const std::string& path) {
  if (dead_) return Status::FromErrno(EIO, "FaultEnv: the power is cut", path);
  return Status::Ok();
}

Status FaultEnv::Check(Op op, const std::string& path) {
  auto i = static_cast<size_t>(op);
  uint64_t n = ++counts_[i];
  if (op == Op::kSync) sync_log_.push_back(path);
  MV_RETURN_IF_ERROR(CheckAlive(path));
  if (op == Op::kSync && n == cut_at_sync_) {
    dead_ = true;
    return Status::FromErrno(EIO, "fsync (FaultEnv: the power went here)", path);
  }
  if (faults_[i].at == n) {
    faults_[i].at = 0;
    return Status::FromErrno(faults_[i].err, std::string(OpName(op)) + " (injected by FaultEnv)",
                             path);
  }
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFile(const std::string& path,
                                                                unsigned mode) {
  std::lock_guard<std::mutex> l(mu_);
  MV_RETURN_IF_ERROR(CheckAlive(path));
  MV_ASSIGN_OR_RETURN(auto base, base_->NewWritableFile(path, mode));
  std::string p = Norm(path);
  auto state = std::make_shared<FileState>();
  files_[p] = state;
  pending_.push_back({DirOp::kCreate, Parent(p), p, {}, {}, {}});
  return std::unique_ptr<WritableFile>(new FaultFile(this, std::move(base), std::move(state)));
}

Status FaultEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  MV_RETURN_IF_ERROR(Check(Op::kSync, dir));
  MV_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::string d = Norm(dir);
  std::erase_if(pending_, [&](const DirOp& op) { return op.dir == d; });
  return Status::Ok();
}

Status FaultEnv::Rename(const std::string& from, const std::string& to, RenameMode mode) {
  std::lock_guard<std::mutex> l(mu_);
  MV_RETURN_IF_ERROR(Check(Op::kRename, to));
  std::string f = Norm(from), t = Norm(to);
  DirOp op{
      mode == RenameMode::kExchange ? DirOp::kExchange : DirOp::kRename, Parent(t), t, f, {}, {}};
  if (mode == RenameMode::kReplace && IsFile(t)) {
    MV_ASSIGN_OR_RETURN(std::string old, fs::ReadFile(t));
    op.saved = std::move(old);
    if (auto it = files_.find(t); it != files_.end()) op.saved_state = it->second;
  }
  MV_RETURN_IF_ERROR(base_->Rename(from, to, mode));
  if (mode == RenameMode::kExchange) {
    auto a = files_.extract(f), b = files_.extract(t);
    if (a) files_[t] = a.mapped();
    if (b) files_[f] = b.mapped();
  } else {
    MovePath(f, t);
  }
  pending_.push_back(std::move(op));
  return Status::Ok();
}

Status FaultEnv::Link(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  MV_RETURN_IF_ERROR(CheckAlive(to));
  MV_RETURN_IF_ERROR(base_->Link(from, to));
  std::string f = Norm(from), t = Norm(to);
  if (auto it = files_.find(f); it != files_.end()) files_[t] = it->second;  // one inode, two names
  pending_.push_back({DirOp::kCreate, Parent(t), t, {}, {}, {}});
  return Status::Ok();
}

Status FaultEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  MV_RETURN_IF_ERROR(CheckAlive(path));
  std::string p = Norm(path);
  if (!IsFile(p)) return base_->RemoveFile(path);
  DirOp op{DirOp::kRemove, Parent(p), p, {}, {}, {}};
  MV_ASSIGN_OR_RETURN(std::string old, fs::ReadFile(p));
  op.saved = std::move(old);
  if (auto it = files_.find(p); it != files_.end()) op.saved_state = it->second;
  MV_RETURN_IF_ERROR(base_->RemoveFile(path));
  files_.erase(p);
  pending_.push_back(std::move(op));
  return Status::Ok();
}

Status FaultEnv::CreateDir(const std::string& path, unsigned mode) {
  std::lock_guard<std::mutex> l(mu_);
  MV_RETURN_IF_ERROR(CheckAlive(path));
  std::string p = Norm(path);
  bool existed = IsDir(p);
  MV_RETURN_IF_ERROR(base_->CreateDir(path, mode));
  if (!existed) pending_.push_back({DirOp::kMkdir, Parent(p), p, {}, {}, {}});
  return Status::Ok();
}

void FaultEnv::MovePath(const std::string& from, const std::string& to) {
  files_.erase(to);
  DropBelow(to);
  std::vector<std::pair<std::string, std::shared_ptr<FileState>>> moved;
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& k = it->first;
    if (k == from ||
        (k.size() > from.size() && k.compare(0, from.size(), from) == 0 && k[from.size()] == '/')) {
      moved.emplace_back(to + k.substr(from.size()), it->second);
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [k, v] : moved) files_[k] = v;
}

void FaultEnv::DropBelow(const std::string& dir) {
  std::string prefix = dir + "/";
  for (auto it = files_.lower_bound(prefix);
       it != files_.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
    it = files_.erase(it);
}

Status FaultEnv::UndoOne(const DirOp& op) {
  switch (op.kind) {
    case DirOp::kCreate:
      if (::unlink(op.path.c_str()) != 0 && errno != ENOENT)
        return Status::FromErrno(errno, "FaultEnv: remove an unsynced name", op.path);
      files_.erase(op.path);
      return Status::Ok();
    case DirOp::kMkdir:
      DropBelow(op.path);
      files_.erase(op.path);
      return fs::RemoveTree(op.path);
    case DirOp::kRename:
      if (::rename(op.path.c_str(), op.from.c_str()) != 0 && errno != ENOENT)
        return Status::FromErrno(errno, "FaultEnv: rename back to " + op.from, op.path);
      MovePath(op.path, op.from);
      break;
    case DirOp::kExchange: {
      if (::renameat2(AT_FDCWD, op.path.c_str(), AT_FDCWD, op.from.c_str(), RENAME_EXCHANGE) != 0)
        return Status::FromErrno(errno, "FaultEnv: exchange back with " + op.from, op.path);
      auto a = files_.extract(op.from), b = files_.extract(op.path);
      if (a) files_[op.path] = a.mapped();
      if (b) files_[op.from] = b.mapped();
      return Status::Ok();
    }
    case DirOp::kRemove:
      break;
  }
  if (!op.saved) return Status::Ok();  // a rename that replaced nothing
  MV_RETURN_IF_ERROR(WriteRaw(op.path, *op.saved));
  if (op.saved_state) files_[op.path] = op.saved_state;
  return Status::Ok();
}

Status FaultEnv::SimulatePowerLoss() {
  std::lock_guard<std::mutex> l(mu_);
  Status first;
  auto keep = [&first](Status st) {
    if (first.ok() && !st.ok()) first = std::move(st);
  };
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) keep(UndoOne(*it));
  for (const auto& [path, st] : files_) {
    struct stat sb;
    if (::lstat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    if (static_cast<uint64_t>(sb.st_size) > st->synced &&
        ::truncate(path.c_str(), static_cast<off_t>(st->synced)) != 0)
      keep(Status::FromErrno(errno, "FaultEnv: drop unsynced data", path));
  }
  pending_.clear();
  files_.clear();
  dead_ = false;
  cut_at_sync_ = 0;
  space_left_.reset();
  for (auto& f : faults_) f = {};
  for (auto& c : counts_) c = 0;
  sync_log_.clear();
  return first;
}

}  // namespace mv::storage
