// Streams and events (see stream.h).
#include "stream.h"

#include "cuda_check.h"

namespace moe::rt::cuda {

Stream::Stream() { MOE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
Stream::~Stream() {
  if (stream_) (void)cudaStreamDestroy(stream_);  // destructors do not throw
}
void Stream::synchronize() const { MOE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

Event::Event(bool timing) {
  MOE_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (event_) (void)cudaEventDestroy(event_);
}
void Event::record(cudaStream_t stream) { MOE_CUDA_CHECK(cudaEventRecord(event_, stream)); }
void Event::synchronize() const { MOE_CUDA_CHECK(cudaEventSynchronize(event_)); }
float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0.0f;
  MOE_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

void stream_wait(cudaStream_t waiter, cudaStream_t producer) {
  Event e(false);
  e.record(producer);
  MOE_CUDA_CHECK(cudaStreamWaitEvent(waiter, e.get(), 0));
}

}  // namespace moe::rt::cuda
