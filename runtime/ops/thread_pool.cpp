// The worker pool behind parallel_for (see thread_pool.h). Between jobs a worker first spins for a
// few tens of microseconds, then sleeps on a condition variable: the runtime calls many short jobs
// back to back (a GEMM of ~100 µs, a chunk of exact sums), and a futex wake-up per job costs
// about as much as such a job's tail.
#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOE_PAUSE() _mm_pause()
#else
#define MOE_PAUSE() ((void)0)
#endif

namespace moe::rt {

namespace {

constexpr auto kSpin = std::chrono::microseconds(30);

// Spins until pred() or kSpin has passed; returns pred().
template <typename Pred>
bool spin_until(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    MOE_PAUSE();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return pred();
  }
}

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      quit_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // False when another job is running (the caller then runs serially).
  bool run(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
    std::unique_lock<std::mutex> busy(job_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    grow(threads - 1);
    {
      std::lock_guard<std::mutex> lock(m_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      helpers_ = std::min<int64_t>(threads - 1, n - 1);
      active_.store(helpers_);
      error_ = nullptr;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    work();
    if (!spin_until([&] { return active_.load() == 0; })) {
      std::unique_lock<std::mutex> lock(m_);
      done_.wait(lock, [&] { return active_.load() == 0; });
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void grow(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      const int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id] { loop(id); });
    }
  }

  void work() {
    for (int64_t i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) {
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      // A job for this worker: a new generation that asks for at least id + 1 helpers.
      auto mine = [&] { return generation_.load() != seen; };
      if (!spin_until(mine)) {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return quit_ || mine(); });
        if (quit_) return;
      }
      std::unique_lock<std::mutex> lock(m_);  // the job's fields were written under the lock
      seen = generation_.load();
      if (id >= helpers_) continue;
      lock.unlock();
      work();
      lock.lock();
      if (active_.fetch_sub(1) == 1) done_.notify_one();
    }
  }

  std::mutex job_mutex_;  // one job at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, helpers_ = 0;
  std::atomic<int64_t> next_{0}, active_{0};
  std::atomic<uint64_t> generation_{0};
  bool quit_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel_for(int64_t n, int threads, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (threads > 1 && n > 1 && pool().run(n, threads, fn)) return;
  for (int64_t i = 0; i < n; ++i) fn(i);
}

}  // namespace moe::rt
