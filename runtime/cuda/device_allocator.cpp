// cudaMalloc/cudaFree behind AllocatorBook (see device_allocator.h).
#include "device_allocator.h"

#include <cuda_runtime.h>

#include "cuda_check.h"

namespace moe::rt::cuda {

DeviceAllocator::DeviceAllocator()
    : book_(std::make_unique<AllocatorBook>(
          [](size_t bytes) -> void* {
            void* p = nullptr;
            if (cudaMalloc(&p, bytes) != cudaSuccess) {
              (void)cudaGetLastError();  // out of memory: the book empties its cache and retries
              return nullptr;
            }
            return p;
          },
          [](void* p) { MOE_CUDA_CHECK(cudaFree(p)); })) {}

DeviceAllocator::~DeviceAllocator() = default;

void* DeviceAllocator::allocate(size_t bytes) { return book_->allocate(bytes); }
void DeviceAllocator::release(void* ptr) { book_->release(ptr); }
void DeviceAllocator::empty_cache() { book_->empty_cache(); }
const AllocatorStats& DeviceAllocator::stats() const { return book_->stats(); }

DeviceAllocator& DeviceAllocator::instance() {
  // Leaked on purpose: freeing device memory during static destruction races the CUDA runtime's own teardown.
  static DeviceAllocator* a = new DeviceAllocator();
  return *a;
}

}  // namespace moe::rt::cuda
