// FaultEnv: an Env for tests that forwards to a real Env (the files are real files) and can
// fail chosen operations or simulate a power cut. Modelled on LevelDB's and RocksDB's
// FaultInjectionTestEnv. Thread-safe (one mutex around everything).
//
// What a power cut loses: the model is the worst case POSIX allows and ext4 (data=ordered, no
// auto_da_alloc luck) can produce:
//   - a file's data is durable up to the length it had at its last WritableFile::Sync(); bytes
//     written after it are lost (the file is cut back to that length, to 0 if never synced);
//   - a directory entry created, renamed or removed (NewWritableFile, CreateDir, Link, Rename,
//     RemoveFile) is durable only once its directory was synced (SyncDir) after the operation.
//     A rename counts for the destination's directory (rename is atomic: the source entry goes
//     with it). Syncing a file never makes its name durable.
//   - on SimulatePowerLoss() every operation not yet durable is undone, newest first: created
//     names are removed (a created directory with everything below it), renames are renamed
//     back (a replaced file gets its old bytes back), removed files come back with the bytes
//     they had. Then every tracked file is cut back to its synced length.
// Not modelled: torn writes inside a synced range, reordering of data within a file, metadata
// (mode, mtime), and operations that did not go through this Env (they are treated as durable,
// as is everything that existed before the FaultEnv saw it). Undo assumes, as the repository's
// write paths do, that no durable operation depends on an undone one at the same name.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/env.h"

namespace mv::storage {

class FaultEnv final : public Env {
 public:
  // `base` (not owned) performs the operations; it must outlive this.
  explicit FaultEnv(Env* base = Env::Default());
  ~FaultEnv() override;

  enum class Op { kWrite, kSync, kRename };  // kSync: file and directory syncs alike
  // The `n`th operation of kind `op` from now (1-based) fails with `err` and changes nothing;
  // the ones after it succeed.
  void FailNth(Op op, uint64_t n, int err);
  // Writes succeed until `bytes` more bytes were written; the write that crosses the limit
  // writes what fits and fails with ENOSPC, as does every later write.
  void DiskFullAfter(uint64_t bytes);
  // The `n`th sync from now (1-based) is where the power goes: it is not done, and it and every
  // later operation that would change the disk fail with EIO and change nothing. Call
  // SimulatePowerLoss() afterwards to drop what was not durable.
  void CutPowerAtSync(uint64_t n);
  bool power_is_cut() const;

  // Operations seen since construction (or the last SimulatePowerLoss), failed ones included.
  uint64_t syncs() const;
  uint64_t writes() const;
  uint64_t renames() const;
  // The path of every sync seen, in order (file or directory), for tests that assert the order.
  std::vector<std::string> sync_log() const;

  // Makes the disk what a machine would find after a power loss now (see the model above),
  // then forgets all tracking and faults: what is on disk now counts as durable. Errors name the
  // path that could not be put back. Files must not be open for writing.
  Status SimulatePowerLoss();

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        unsigned mode) override;
  Status SyncDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to, RenameMode mode) override;
  Status Link(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status CreateDir(const std::string& path, unsigned mode) override;
  int64_t NowNanos() override { return base_->NowNanos(); }

 private:
  friend class FaultFile;
  struct FileState {
    uint64_t size = 0;    // end of the furthest write through this Env
    uint64_t synced = 0;  // size at the last Sync()
  };
  struct DirOp {
    enum Kind { kCreate, kMkdir, kRename, kExchange, kRemove } kind;
    std::string dir;                   // the directory whose SyncDir makes it durable
    std::string path;                  // the name created / removed, or the rename's destination
    std::string from;                  // the rename's source
    std::optional<std::string> saved;  // bytes of the file replaced or removed
    std::shared_ptr<FileState> saved_state;  // its tracking (null: it was durable)
  };

  // Each returns the Status the operation must fail with, or Ok to go ahead. Hold mu_.
  Status Check(Op op, const std::string& path);
  Status CheckAlive(const std::string& path);
  Status UndoOne(const DirOp& op);
  void MovePath(const std::string& from, const std::string& to);
  void DropBelow(const std::string& dir);

  Env* base_;
  mutable std::mutex mu_;
  uint64_t counts_[3] = {0, 0, 0};
  std::vector<std::string> sync_log_;
  struct Fault {
    uint64_t at = 0;  // counts_[op] value that fails; 0: none
    int err = 0;
  } faults_[3];
  uint64_t cut_at_sync_ = 0;  // counts_[kSync] value where the power goes; 0: never
  bool dead_ = false;
  std::optional<uint64_t> space_left_;
  std::map<std::string, std::shared_ptr<FileState>> files_;  // by current path
  std::vector<DirOp> pending_;                               // not yet durable, oldest first
};

}  // namespace mv::storage
