#pragma once
// The bookkeeping of the caching device allocator (device_allocator.h), with no CUDA in it so it is
// tested on machines without a GPU: sizes are rounded up to a size class, freed blocks go to that
// class's free list instead of back to the driver, and a later request of the same class reuses one.
// Classes: powers of two from 512 B to 1 MiB (few classes,
// little waste on small tensors), then multiples of 2 MiB (large buffers waste < 2 MiB each).
// The raw allocation functions are given by the owner (cudaMalloc/cudaFree on the device; malloc
// in tests). When a raw allocation fails, every cached block is released and it is tried once more.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <vector>

namespace moe::rt::cuda {

struct AllocatorStats {
  int64_t in_use_bytes = 0;       // handed out (size-class bytes)
  int64_t cached_bytes = 0;       // on free lists
  int64_t peak_in_use_bytes = 0;
  int64_t raw_allocs = 0;         // calls of the raw allocator (cudaMalloc)
  int64_t raw_frees = 0;
  int64_t cache_hits = 0;         // requests served from a free list
  int64_t requests = 0;
};

class AllocatorBook {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // returns nullptr on failure
  using RawFree = std::function<void(void*)>;

  AllocatorBook(RawAlloc raw_alloc, RawFree raw_free);
  ~AllocatorBook();  // releases everything still cached (blocks in use are the owner's bug)
  AllocatorBook(const AllocatorBook&) = delete;
  AllocatorBook& operator=(const AllocatorBook&) = delete;

  static size_t size_class(size_t bytes);  // 0 → 0

  // nullptr for 0 bytes; throws moe::Error naming the size when even a retry fails.
  void* allocate(size_t bytes);
  // Returns the block to its free list; throws moe::Error for a pointer it did not hand out.
  void release(void* ptr);
  // Gives every cached block back to the raw allocator.
  void empty_cache();

  const AllocatorStats& stats() const { return stats_; }
  size_t block_size(const void* ptr) const;  // the class size of a live block (0 if unknown)

 private:
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  std::map<size_t, std::vector<void*>> free_;     // class → cached blocks
  std::unordered_map<const void*, size_t> live_;  // handed-out block → class
  AllocatorStats stats_;
};

}  // namespace moe::rt::cuda
