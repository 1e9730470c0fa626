// The communication thread (see comm_thread.h).
#include "comm_thread.h"

#include <chrono>

namespace moe::rt::comm {

using Clock = std::chrono::steady_clock;

double CommHandle::wait() {
  if (!state_) return 0.0;
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->done_cv.wait(lock, [&] { return state_->done; });
  const double blocked = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  if (state_->error) {
    auto error = state_->error;
    state_->error = nullptr;  // rethrow once
    std::rethrow_exception(error);
  }
  return blocked;
}

bool CommHandle::ready() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->done;
}

double CommHandle::op_us() const { return state_ ? state_->op_us : 0.0; }

CommThread::CommThread() : thread_([this] { loop(); }) {}

CommThread::~CommThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

CommHandle CommThread::submit(std::function<void()> op) {
  CommHandle handle;
  handle.state_ = std::make_shared<CommHandle::State>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(std::move(op), handle.state_);
    ++outstanding_;
  }
  cv_.notify_one();
  return handle;
}

bool CommThread::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return outstanding_ > 0;
}

void CommThread::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_cv_.wait(lock, [&] { return outstanding_ == 0; });
}

void CommThread::loop() {
  for (;;) {
    std::function<void()> op;
    std::shared_ptr<CommHandle::State> state;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      op = std::move(queue_.front().first);
      state = std::move(queue_.front().second);
      queue_.pop_front();
    }
    const auto t0 = Clock::now();
    std::exception_ptr error;
    try {
      op();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->op_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      state->error = error;
      state->done = true;
    }
    state->done_cv.notify_all();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --outstanding_;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace moe::rt::comm
