#pragma once
// The communication thread behind a communicator's *_async calls: it runs submitted operations one
// at a time, in submission order (every rank submits the same sequence, so collectives match up),
// while the caller computes. A CommHandle waits for one operation and rethrows its error.
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace moe::rt::comm {

class CommHandle {
 public:
  CommHandle() = default;
  // Blocks until the operation finished; rethrows its moe::Error. Returns the microseconds this
  // call spent blocked — the part of the communication that was not hidden behind compute.
  double wait();
  bool ready() const;
  // Microseconds the operation itself took on the comm thread (valid after wait()).
  double op_us() const;

 private:
  friend class CommThread;
  struct State {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    std::exception_ptr error;
    double op_us = 0.0;
  };
  std::shared_ptr<State> state_;
};

class CommThread {
 public:
  CommThread();
  ~CommThread();  // finishes queued work, then joins
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  CommHandle submit(std::function<void()> op);
  // True while any submitted operation has not finished.
  bool busy() const;
  // Waits until every submitted operation finished (errors stay with their handles).
  void drain();

 private:
  void loop();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::pair<std::function<void()>, std::shared_ptr<CommHandle::State>>> queue_;
  int outstanding_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace moe::rt::comm
