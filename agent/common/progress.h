// What the archiver and the restorer report besides their result: progress through a callback
// (the CLI decides whether to draw it) and one problem per file that could not be handled.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace mv::agent {

struct FileProblem {
  std::string path;     // host path
  std::string message;  // what happened and what to do
};

// Progress is reported through a callback; the CLI decides whether to draw it.
struct Progress {
  uint64_t files_done = 0, files_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;
  std::string phase;  // "scan", "read", "commit"
};
using ProgressFn = std::function<void(const Progress&)>;

}  // namespace mv::agent
