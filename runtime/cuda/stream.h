#pragma once
// RAII CUDA streams and events, checked. The runtime uses one compute stream and, for overlapped
// all-to-all chunks, a second stream (comm); events order them and time regions.
#include <cuda_runtime.h>

namespace moe::rt::cuda {

class Stream {
 public:
  Stream();  // non-blocking w.r.t. the legacy default stream
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  explicit Event(bool timing = true);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream);
  void synchronize() const;
  // Milliseconds from `start` to this event (both recorded and complete).
  float elapsed_ms_since(const Event& start) const;

 private:
  cudaEvent_t event_ = nullptr;
};

// `waiter` waits for everything queued on `producer` so far (an event in between).
void stream_wait(cudaStream_t waiter, cudaStream_t producer);

}  // namespace moe::rt::cuda
