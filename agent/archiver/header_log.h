// The header fields of the messages a backup reads (storage/header_index.h), gathered from the
// workers and written as header records in batches, so `mailvault find` knows them without
// reading the messages again. A record that cannot be written fails the backup (before its
// manifest), as any repository write does.
#pragma once

#include <functional>
#include <mutex>
#include <string_view>
#include <vector>

#include "storage/header_index.h"

namespace mv::agent {

// Whether `rel` (a path below a source) names a Maildir message: a file directly in a cur/ or
// new/ directory.
bool IsMessagePath(std::string_view rel);

class HeaderLog {
 public:
  using FlushFn = std::function<Status(std::vector<storage::MessageHeaders>)>;
  explicit HeaderLog(FlushFn flush, size_t batch = storage::kMessagesPerHeaderRecord)
      : flush_(std::move(flush)), batch_(batch) {}
  // Thread-safe. Writes a record once `batch` messages are gathered.
  void Add(storage::MessageHeaders h);
  // Writes what is left; returns the first failure of any write.
  Status Finish();

 private:
  void Flush(std::vector<storage::MessageHeaders> v);
  FlushFn flush_;
  size_t batch_;
  std::mutex mu_, flush_mu_;
  std::vector<storage::MessageHeaders> pending_;
  Status first_error_;
};

}  // namespace mv::agent
