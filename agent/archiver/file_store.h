// Reads one file's content and stores it as blobs: whole for small files, content-defined
// chunks for large ones (docs/FORMAT.md §4), and SQLite databases through the online backup
// API (§7.4): raw only when SQLite cannot open the file at all (corrupt, not a database).
// Thread-safe: each worker passes its own worker number.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "agent/archiver/backup.h"
#include "agent/archiver/header_log.h"
#include "storage/blob_sink.h"
#include "storage/snapshot.h"

namespace mv::agent {

struct FileOutcome {
  std::string problem;  // non-empty: reported; with drop, the file is not in the snapshot
  bool drop = false;
  std::string warning;  // stored, but reported: changed while read, raw copy of a "database"
  Status fatal;         // the repository cannot be written (disk full...): stop the backup
};

class FileStore {
 public:
  // `sink` and `opts` must outlive the store.
  FileStore(storage::BlobSink& sink, const BackupOptions& opts) : sink_(sink), opts_(opts) {}

  // Fills e->content, e->blobs, e->flags and refreshes its stat fields from the open file.
  FileOutcome Store(int worker, int root_fd, const std::string& host_path, const std::string& rel,
                    storage::FileEntry* e);

  // Messages read from now on have their header fields added to `log` (none when null).
  void set_header_log(HeaderLog* log) { headers_ = log; }

  uint64_t files_read() const { return files_read_; }
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t blobs_new() const { return blobs_new_; }
  uint64_t bytes_new() const { return bytes_new_; }
  uint64_t sqlite_databases() const { return sqlite_; }

 private:
  // Reads fd to EOF, or to at most `limit` bytes (a file growing faster than it is read must not
  // keep the backup reading forever), into blobs. Returns a non-ok Status only for repository
  // failures; read errors go to *read_error.
  // `head`, when given, gets the first bytes of the content (up to the header scan size).
  Status StoreStream(int worker, int fd, const std::string& path, storage::FileEntry* e,
                     std::string* read_error, uint64_t limit = UINT64_MAX,
                     const std::function<void(std::string_view)>& head = {});
  Status Put(int worker, const storage::BlobId& id, const char* data, size_t len);
  // `fd` is the open database file, read raw when the online backup API cannot open it.
  FileOutcome StoreSqlite(int worker, int fd, const std::string& host_path, storage::FileEntry* e);

  storage::BlobSink& sink_;
  const BackupOptions& opts_;
  HeaderLog* headers_ = nullptr;
  std::atomic<uint64_t> files_read_{0}, bytes_read_{0}, blobs_new_{0}, bytes_new_{0}, sqlite_{0};
};

}  // namespace mv::agent
