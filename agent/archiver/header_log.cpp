// agent/archiver/header_log.h.
#include "agent/archiver/header_log.h"

namespace mv::agent {

bool IsMessagePath(std::string_view rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string_view::npos || slash + 1 == rel.size()) return false;
  std::string_view dir = rel.substr(0, slash);
  size_t up = dir.rfind('/');
  std::string_view last = up == std::string_view::npos ? dir : dir.substr(up + 1);
  return last == "cur" || last == "new";
}

void HeaderLog::Add(storage::MessageHeaders h) {
  std::vector<storage::MessageHeaders> full;
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_.push_back(std::move(h));
    if (pending_.size() < batch_) return;
    full.swap(pending_);
  }
  Flush(std::move(full));
}

void HeaderLog::Flush(std::vector<storage::MessageHeaders> v) {
  if (v.empty()) return;
  std::lock_guard<std::mutex> l(flush_mu_);
  Status st = flush_(std::move(v));
  if (!st.ok() && first_error_.ok()) first_error_ = st;
}

Status HeaderLog::Finish() {
  std::vector<storage::MessageHeaders> rest;
  {
    std::lock_guard<std::mutex> l(mu_);
    rest.swap(pending_);
  }
  Flush(std::move(rest));
  std::lock_guard<std::mutex> l(flush_mu_);
  return first_error_;
}

}  // namespace mv::agent
