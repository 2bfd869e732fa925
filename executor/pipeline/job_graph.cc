#include "executor/pipeline/job_graph.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace kiln::executor {

Status RunJobGraph(const JobDeps& after, int jobs, const std::function<Status(size_t)>& run,
                   std::atomic<bool>* cancel) {
  const size_t n = after.size();
  if (jobs <= 1) {
    for (size_t i = 0; i < n; ++i) {
      Status s = run(i);
      if (!s.ok()) {
        if (cancel) *cancel = true;
        return s;
      }
    }
    return OkStatus();
  }
  enum State { kWaiting, kRunning, kDone };
  std::vector<State> state(n, kWaiting);
  std::mutex mu;
  std::condition_variable cv;
  size_t finished = 0;
  int running = 0;
  Status first = OkStatus();
  auto ready = [&](size_t i) {
    return std::all_of(after[i].begin(), after[i].end(), [&](size_t d) { return state[d] == kDone; });
  };
  auto worker = [&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      if (!first.ok() || finished == n) return;
      size_t pick = n;
      for (size_t i = 0; i < n && pick == n; ++i) {
        if (state[i] == kWaiting && ready(i)) pick = i;
      }
      if (pick == n) {
        if (running == 0) {  // nothing runs and nothing can start: a dependency that never finishes
          first = InternalError("the stage graph has a cycle or a dependency out of range");
          cv.notify_all();
          return;
        }
        cv.wait(lock);
        continue;
      }
      state[pick] = kRunning;
      ++running;
      lock.unlock();
      Status s = run(pick);
      lock.lock();
      --running;
      if (s.ok()) {
        state[pick] = kDone;
        ++finished;
      } else if (first.ok()) {
        first = s;
        if (cancel) *cancel = true;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> workers;
  size_t count = std::min(static_cast<size_t>(jobs), n);
  for (size_t i = 0; i < count; ++i) workers.emplace_back(worker);
  for (std::thread& t : workers) t.join();
  return first;
}

bool HasIndependentJobs(const JobDeps& after) {
  const size_t n = after.size();
  // needs[i][j]: job i needs job j, directly or through others (deps point to lower indexes).
  std::vector<std::vector<bool>> needs(n, std::vector<bool>(n, false));
  for (size_t i = 0; i < n; ++i) {
    for (size_t d : after[i]) {
      if (d >= i) continue;
      needs[i][d] = true;
      for (size_t k = 0; k < d; ++k) {
        if (needs[d][k]) needs[i][k] = true;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!needs[i][j]) return true;
    }
  }
  return false;
}

}  // namespace kiln::executor
