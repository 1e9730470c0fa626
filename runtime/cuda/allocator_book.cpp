// Size classes, free lists and statistics of the caching allocator (see allocator_book.h).
#include "allocator_book.h"

#include <algorithm>

#include "error.h"

namespace moe::rt::cuda {

namespace {
constexpr size_t kMinClass = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB
constexpr size_t kLargeStep = size_t{2} << 20;   // 2 MiB
}  // namespace

AllocatorBook::AllocatorBook(RawAlloc raw_alloc, RawFree raw_free)
    : raw_alloc_(std::move(raw_alloc)), raw_free_(std::move(raw_free)) {}

AllocatorBook::~AllocatorBook() { empty_cache(); }

size_t AllocatorBook::size_class(size_t bytes) {
  if (bytes == 0) return 0;
  if (bytes <= kSmallLimit) {
    size_t c = kMinClass;
    while (c < bytes) c <<= 1;
    return c;
  }
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

void* AllocatorBook::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t cls = size_class(bytes);
  ++stats_.requests;
  void* ptr = nullptr;
  auto it = free_.find(cls);
  if (it != free_.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= static_cast<int64_t>(cls);
    ++stats_.cache_hits;
  } else {
    ptr = raw_alloc_(cls);
    if (!ptr) {  // out of memory: give the cache back and try once more
      empty_cache();
      ptr = raw_alloc_(cls);
    }
    if (!ptr)
      throw Error("device allocator: out of memory allocating " + std::to_string(bytes) + " bytes (class " +
                  std::to_string(cls) + ", " + std::to_string(stats_.in_use_bytes) + " bytes in use)");
    ++stats_.raw_allocs;
  }
  live_[ptr] = cls;
  stats_.in_use_bytes += static_cast<int64_t>(cls);
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  return ptr;
}

void AllocatorBook::release(void* ptr) {
  if (!ptr) return;
  auto it = live_.find(ptr);
  if (it == live_.end()) throw Error("device allocator: release of a pointer it did not allocate");
  const size_t cls = it->second;
  live_.erase(it);
  free_[cls].push_back(ptr);
  stats_.in_use_bytes -= static_cast<int64_t>(cls);
  stats_.cached_bytes += static_cast<int64_t>(cls);
}

void AllocatorBook::empty_cache() {
  for (auto& [cls, list] : free_) {
    for (void* p : list) {
      raw_free_(p);
      ++stats_.raw_frees;
      stats_.cached_bytes -= static_cast<int64_t>(cls);
    }
    list.clear();
  }
}

size_t AllocatorBook::block_size(const void* ptr) const {
  auto it = live_.find(ptr);
  return it == live_.end() ? 0 : it->second;
}

}  // namespace moe::rt::cuda
