#pragma once
// The caching device allocator: AllocatorBook's size classes and free lists over cudaMalloc /
// cudaFree (never managed memory). Freed blocks are reused by the next request of the same class
// without a cudaMalloc (which synchronises the device). One per process and device; not
// thread-safe (the runtime allocates from the training thread only).
// Blocks are reused in stream order: a block freed after work queued on the compute stream may be
// handed out to later work on the same stream. Work on another stream must synchronise first.
#include <cstddef>
#include <memory>

#include "allocator_book.h"

namespace moe::rt::cuda {

class DeviceAllocator {
 public:
  DeviceAllocator();
  ~DeviceAllocator();
  void* allocate(size_t bytes);
  void release(void* ptr);
  void empty_cache();
  const AllocatorStats& stats() const;
  static DeviceAllocator& instance();  // the process-wide allocator (current device)

 private:
  std::unique_ptr<AllocatorBook> book_;
};

// An owning typed device buffer from the caching allocator.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) { resize(count); }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) { o.ptr_ = nullptr, o.count_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = o.ptr_, count_ = o.count_;
      o.ptr_ = nullptr, o.count_ = 0;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Reallocates only when the element count changes (contents are not kept).
  void resize(size_t count) {
    if (count == count_) return;
    reset();
    ptr_ = static_cast<T*>(DeviceAllocator::instance().allocate(count * sizeof(T)));
    count_ = count;
  }
  void reset() {
    if (ptr_) DeviceAllocator::instance().release(ptr_);
    ptr_ = nullptr, count_ = 0;
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace moe::rt::cuda
