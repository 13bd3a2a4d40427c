// The file-system and clock operations the repository performs when it WRITES (docs/FORMAT.md §8),
// behind one interface, so tests can make them fail or lose what was not synced (a power cut).
// Reads are not behind it: a read changes nothing a crash could lose.
//
//   PosixEnv (Env::Default()): the system calls, errno turned into a Status naming the path.
//   FaultEnv (storage/fault_env.h): a decorator for tests that fails chosen operations and
//     simulates a power loss.
//
// Every Env is thread-safe: backup workers write packs concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace mv::storage {

// A file opened for writing. Not thread-safe: one writer owns it. The destructor closes it
// (without syncing); Close() reports a close error.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at the end of what this handle wrote so far (write(2), retried on EINTR
  // and short writes).
  virtual Status Append(std::string_view data) = 0;
  // Writes all of `data` at `offset` (pwrite(2)); does not move the append position.
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // fsync(2): the data written so far is durable. Not the file's name: that needs SyncDir of
  // its directory.
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  virtual const std::string& path() const = 0;
};

enum class RenameMode {
  kReplace,    // rename(2): replaces `to` if it exists
  kNoReplace,  // renameat2 RENAME_NOREPLACE: fails with EEXIST if `to` exists
  kExchange,   // renameat2 RENAME_EXCHANGE: swaps the two names (both must exist)
};

class Env {
 public:
  virtual ~Env() = default;
  // The process-wide PosixEnv. Never deleted.
  static Env* Default();

  // Creates `path` (O_CREAT|O_EXCL: fails if it exists) with `mode`, for writing.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                unsigned mode = 0600) = 0;
  // fsync(2) of a directory: the entries created, renamed and removed in it so far are durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Rename(const std::string& from, const std::string& to,
                        RenameMode mode = RenameMode::kReplace) = 0;
  // link(2): a second name `to` for the file `from`; fails with EEXIST if `to` exists.
  virtual Status Link(const std::string& from, const std::string& to) = 0;
  // unlink(2). A missing file is not an error.
  virtual Status RemoveFile(const std::string& path) = 0;
  // mkdir(2) of one directory. An existing directory is not an error.
  virtual Status CreateDir(const std::string& path, unsigned mode = 0700) = 0;
  // Wall-clock time (CLOCK_REALTIME), nanoseconds since the epoch.
  virtual int64_t NowNanos() = 0;
};

}  // namespace mv::storage
