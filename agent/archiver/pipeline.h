// The streaming half of a backup: takes the walk's entries in walk order (docs/FORMAT.md §7.1),
// decides per file whether the parent holds its content (§7.2), reads the others on worker
// threads, and writes each directory's tree record (§7.5) as soon as its files are stored.
// Memory is the open directories, the directories whose files are still being read (a bounded
// window), and one record per Maildir (for the census): not the store.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/archiver/backup.h"
#include "agent/archiver/file_store.h"
#include "agent/archiver/parent.h"
#include "agent/archiver/walk.h"
#include "storage/blob_sink.h"
#include "storage/snapshot.h"

namespace mv::agent {

struct PipelineLimits {
  size_t max_jobs_in_flight = 4096;  // files queued for reading
  size_t max_entries_held = 100000;  // entries of closed directories not yet recorded
};

class Pipeline {
 public:
  // `trees` stores tree records on its worker slot 0; `store` reads files on slots
  // [0, threads). All must outlive the pipeline.
  Pipeline(const BackupOptions& opts, FileStore& store, storage::BlobSink& trees,
           ParentIndex& parent, int threads, BackupResult& result, const ProgressFn& progress,
           PipelineLimits limits = {});
  ~Pipeline();

  // Consumes the entries of `batch` (moves them out and clears the three vectors).
  Status Add(WalkOutput& batch);
  // Closes every directory, waits for the last reads and returns the root tree's ID.
  Result<storage::BlobId> Finish();

  // Valid after Finish().
  std::vector<storage::CensusRow> Census() const;
  uint64_t files() const { return files_; }
  uint64_t bytes() const { return bytes_; }

 private:
  struct Level;
  struct LinkFirst;
  struct Kid {
    storage::FileEntry e;
    uint8_t message = 0;  // directly in cur/ or new/ of a Maildir (the walk says)
    uint8_t dropped = 0;  // not in the snapshot (vanished while read...)
    uint16_t source = 0;
    LinkFirst* first_of = nullptr;  // this file is the first path of a hard-linked inode
  };
  struct Job {
    Level* level;
    Kid* kid;
  };

  // `xattrs_not_kept` counts the attributes of files read here that a backup does not keep.
  Status AddEntry(storage::FileEntry&& e, bool message, uint16_t source, uint64_t* xattrs_not_kept);
  Status CloseTop();
  Status FinalizeReady(bool wait_all);
  Status Finalize(Level& l);
  void ResolveLink(Kid& k);
  void Worker(int t);
  void Report(const char* phase);

  const BackupOptions& opts_;
  FileStore& store_;
  storage::BlobSink& trees_;
  ParentIndex& parent_;
  BackupResult& result_;
  const ProgressFn& progress_;
  PipelineLimits limits_;
  std::vector<int> root_fds_;

  std::vector<std::unique_ptr<Level>> open_;   // the root level, then the walk's directories
  std::deque<std::unique_ptr<Level>> closed_;  // closed, recorded in this order (post-order)
  size_t held_ = 0;                            // entries in closed_
  storage::BlobId root_;

  std::mutex mu_;  // guards queue_, fatal_, result_'s lists, pending counts, links' state
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job> queue_;
  bool closing_ = false;
  Status fatal_;
  std::vector<std::thread> workers_;

  struct InodeKey {
    uint64_t dev, ino;
    bool operator==(const InodeKey&) const = default;
  };
  struct InodeKeyHash {
    size_t operator()(const InodeKey& k) const { return k.ino * 1000003u ^ k.dev; }
  };
  std::unordered_map<InodeKey, std::unique_ptr<LinkFirst>, InodeKeyHash> links_;

  struct MaildirSums {
    std::string source, rel;
    uint64_t messages = 0, bytes = 0, lo = 0, hi = 0;
  };
  std::vector<MaildirSums> maildirs_;
  uint64_t files_ = 0, bytes_ = 0;
  uint64_t files_queued_ = 0, bytes_queued_ = 0;
  std::atomic<uint64_t> files_done_{0}, bytes_done_{0};
  std::chrono::steady_clock::time_point last_report_{};
};

}  // namespace mv::agent
