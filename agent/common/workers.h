// A fixed pool for one parallel phase: runs fn(worker) on n threads and calls tick() about
// every 100 ms until all return, returning as soon as the last one does.
#pragma once

#include <functional>

namespace mv::agent {

void RunWorkers(int n, const std::function<void(int worker)>& fn,
                const std::function<void()>& tick);
// Threads for a phase: `requested` if > 0, else the number of cores; between 1 and 8.
int WorkerCount(int requested);

}  // namespace mv::agent
