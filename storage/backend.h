// Where a repository's files live (docs/FORMAT.md §1; issue #6): one interface with the local
// directory (storage/local_backend.h) and S3 (storage/s3/backend.h) behind it. Names are the
// layout's relative names ("config", "packs/ab/ab12….tar.zst", "index/…"), '/'-separated; the
// layout maps 1:1 onto object keys under an S3 prefix.
//
// What each call promises, whatever the backend:
//   Put        the object appears whole or not at all (a temp file and rename(2) on disk, one
//              PUT on S3), and is durable when Put returns (fsync of the file and its directory).
//   PutFile    the same for a finished local file (a pack), which the call consumes.
//   List       every object below a directory, recursively, with its size.
//   Read       a whole object, or a reader over it from the start; ReadAt a byte range of it.
// A backend is thread-safe: backup workers write packs concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/env.h"
#include "storage/hash.h"
#include "storage/lock.h"
#include "storage/status.h"

namespace mv::storage {

struct ObjectInfo {
  std::string name;  // relative to the repository root
  uint64_t size = 0;
};

// A sequential reader over one object, for packs read from start to end.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Up to `n` bytes into `buf`; 0 at the end of the object.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// A reader over the open file `fd` (closed with the reader: a file unlinked meanwhile stays
// readable); `path` names it in errors. For files on this machine's disk (the local backend,
// kept copies of downloaded packs, a pack given by path).
std::unique_ptr<ObjectReader> NewFdReader(int fd, std::string path);

// What a backend sent and received (for --verbose and --json). A local backend counts nothing.
struct BackendStats {
  uint64_t requests = 0;
  uint64_t retries = 0;  // requests sent again after a 5xx, 429/SlowDown, timeout or reset
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  uint64_t cache_hits = 0;   // objects read from the local cache instead (storage/cached_backend.h)
  uint64_t cache_bytes = 0;  // their bytes
};

// A pack on its way into the repository (storage/pack.h's writer appends its bytes in order):
// a temp file in the form the backend stores it, hashed the way FORMAT.md names packs. The
// temp file is removed when the sink goes without a successful Commit.
class PackSink {
 public:
  virtual ~PackSink() = default;
  virtual Status Append(std::string_view bytes) = 0;
  // Syncs and closes the temp file. Returns the pack's ID, its name: the XXH3-128 of the bytes
  // appended (§5), or in an encrypted repository of version 9 the SHA-256/128 of the age file
  // stored (§14.2).
  virtual Result<BlobId> Close() = 0;
  // Moves the closed file into `dest` as `name` (Backend::PutFile). `dest` is the backend that
  // made the sink (an encrypted one hands the age file to the backend below it).
  virtual Status Commit(class Backend& dest, const std::string& name) = 0;
};

// The sink of a backend that stores packs as they are: a file at `tmp_path` made through `env`.
Result<std::unique_ptr<PackSink>> NewFilePackSink(const std::string& tmp_path, Env* env);

class Backend {
 public:
  virtual ~Backend() = default;

  // What messages name for `rel` (or the repository when empty): the path on disk, or the
  // repository URL followed by the name. Never a secret.
  virtual std::string Describe(std::string_view rel = {}) const = 0;
  // The repository's directory when it is on this machine's disk; empty otherwise.
  virtual const std::string& local_root() const = 0;
  // A directory on this machine for temp files (packs being written, scratch databases).
  virtual std::string ScratchDir() const = 0;

  // Makes an empty repository's place (the directories on disk); fails with kInvalidArgument
  // when something is there already (a directory that is not empty, objects under the prefix).
  virtual Status Create() = 0;
  // Every object below `dir` ("" is the whole repository), recursively, in no set order. A
  // directory that does not exist is empty.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& dir) const = 0;
  // kNotFound when `name` does not exist.
  virtual Result<std::string> Read(const std::string& name) const = 0;
  virtual Result<std::unique_ptr<ObjectReader>> OpenReader(const std::string& name) const = 0;
  // Bytes [offset, offset + length) of `name`, which must hold them (kCorruption when it is
  // shorter). Packs are read so when only some of their frames are wanted (§5.1). The default
  // reads from the start through OpenReader; the backends read only the range.
  virtual Result<std::string> ReadAt(const std::string& name, uint64_t offset,
                                     uint64_t length) const;
  virtual Result<uint64_t> Size(const std::string& name) const = 0;

  // Creates `name` with `data`, atomically and durably. On disk an existing file is replaced;
  // on S3 an existing object is kept and the call fails with kBusy ("already exists"), so a
  // credential that may not overwrite (docs/S3.md §3) never needs to.
  virtual Status Put(const std::string& name, std::string_view data) = 0;
  // Moves the finished file `local_path` (under ScratchDir()) to `name`, which is content-
  // addressed: when `name` exists already it holds the same bytes, and that is success.
  // On success `local_path` is gone. Durable only after SyncDir of `name`'s directory.
  virtual Status PutFile(const std::string& local_path, const std::string& name) = 0;
  // Where a new pack is written (a temp file at `tmp_path`, under ScratchDir()) before Commit
  // puts it in place. The default stores the bytes as they are (NewFilePackSink); an encrypted
  // backend encrypts them as they come, so the pack is written once.
  virtual Result<std::unique_ptr<PackSink>> NewPackSink(const std::string& tmp_path, Env* env) {
    return NewFilePackSink(tmp_path, env);
  }
  // Makes the entries created or removed in `dir` so far durable (fsync of the directory on
  // disk; nothing on S3, where a PUT is durable when it returns).
  virtual Status SyncDir(const std::string& dir) = 0;
  // Replaces `name` (which exists) atomically: only `config`, when a feature raises the format
  // version (docs/FORMAT.md §1). On disk the same as Put.
  virtual Status Overwrite(const std::string& name, std::string_view data) = 0;
  // Removes `name`; a missing one is not an error.
  virtual Status Delete(const std::string& name) = 0;

  // The exclusive repository lock (docs/FORMAT.md §9), held until the returned object goes.
  virtual Result<std::unique_ptr<HeldLock>> LockExclusive(const std::string& purpose,
                                                          const LockWait& wait,
                                                          std::string* took_over_stale) = 0;

  virtual BackendStats stats() const { return {}; }

  // Drops any local copy of `name` (storage/cached_backend.h), so that the next read fetches it
  // from the repository itself: what a reader that found the copy damaged asks for (an encrypted
  // object is checked only when decrypted, above the cache). Nothing for a backend without one.
  virtual void Evict(const std::string& name) const { (void)name; }

  // A hint from a command that reads packs in several passes (a restore reads the packs of each
  // batch of files, and a pack may hold files of several batches): a remote backend may keep up
  // to `bytes` of the packs it downloads on local disk until it is destroyed, so that a pack is
  // downloaded once. A local backend ignores it.
  virtual void KeepReadPacks(uint64_t bytes) { (void)bytes; }
};

// The sorted names of the objects directly in `dir` (not those below a subdirectory of it).
Result<std::vector<std::string>> ListNames(const Backend& backend, const std::string& dir);

}  // namespace mv::storage
