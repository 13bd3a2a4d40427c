#include "agent/common/workers.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mv::agent {

void RunWorkers(int n, const std::function<void(int)>& fn, const std::function<void()>& tick) {
  std::mutex mu;
  std::condition_variable cv;
  int running = n;
  std::vector<std::thread> pool;
  for (int t = 0; t < n; t++)
    pool.emplace_back([&, t] {
      fn(t);
      std::lock_guard<std::mutex> l(mu);
      if (--running == 0) cv.notify_all();
    });
  {
    std::unique_lock<std::mutex> l(mu);
    while (!cv.wait_for(l, std::chrono::milliseconds(100), [&] { return running == 0; }))
      if (tick) {
        l.unlock();
        tick();
        l.lock();
      }
  }
  for (auto& th : pool) th.join();
}

int WorkerCount(int requested) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(n, 1, 8);
}

}  // namespace mv::agent
