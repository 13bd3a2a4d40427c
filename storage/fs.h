// The OS layer under the repository: every errno becomes a Status here (with the path and the
// operation), and the one durable-write primitive lives here (docs/FORMAT.md §8). The helpers
// that write take the Env to write through (storage/env.h); the default is the real one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"

namespace mv::storage::fs {

// Writes `data` to `path` durably and atomically: temp file in the same directory, write,
// fsync, rename over `path`, fsync the directory. Readers see the old file or the new one.
// The temp file is removed on failure.
Status WriteFileAtomic(const std::string& path, std::string_view data, Env* env = Env::Default());
// Renames `from` to `to` and fsyncs the directory of `to` (the commit step of WriteFileAtomic).
Status RenameDurable(const std::string& from, const std::string& to, Env* env = Env::Default());
Result<std::string> ReadFile(const std::string& path);
// mkdir -p. The new directories' entries are not fsynced: a caller that needs them durable
// fsyncs their parents (as BlobWriter::Finish does for packs/XX).
Status MakeDirs(const std::string& path, unsigned mode = 0700, Env* env = Env::Default());
Status FsyncDir(const std::string& dir, Env* env = Env::Default());
Status WriteAll(int fd, const void* data, size_t len, const std::string& path);
Status ReadExact(int fd, void* data, size_t len, uint64_t offset, const std::string& path);
// Names in `dir` except "." and "..", unsorted.
Result<std::vector<std::string>> ListDir(const std::string& dir);
bool Exists(const std::string& path);
// A missing file is not an error.
Status RemoveFile(const std::string& path, Env* env = Env::Default());
// Removes `path` and everything below it (rm -rf), by directory file descriptors (openat,
// unlinkat), so trees deeper than PATH_MAX go too; symlinks are removed, never followed.
// A missing `path` is not an error. On failure it goes on and returns the first error.
Status RemoveTree(const std::string& path);
// Empties the open directory `dfd` the same way; `where` names it in errors.
Status RemoveBelow(int dfd, const std::string& where);
// Fills `n` bytes from the kernel's CSPRNG.
std::string RandomBytes(size_t n);
std::string RandomHex(size_t nbytes);
// Opens `rel` ('/'-separated, relative) beneath `dirfd` without following a symlink in ANY
// component, the last one included (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS; a component
// walk with O_NOFOLLOW for paths longer than PATH_MAX). Returns an fd, or -1 with errno set.
// This is what keeps restore inside --target whatever a manifest says.
int OpenBeneath(int dirfd, const std::string& rel, int flags, unsigned mode = 0);
// Opens the directory holding `rel` beneath `dirfd` (O_PATH) and sets *name to the last
// component; -1 with errno set on failure.
int OpenParentBeneath(int dirfd, const std::string& rel, std::string* name);

std::string Join(const std::string& a, const std::string& b);
std::string Dirname(const std::string& path);

}  // namespace mv::storage::fs
