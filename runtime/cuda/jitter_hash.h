#pragma once
// The router jitter's noise u ~ U(1−ε, 1+ε), drawn from a counter-based hash of (seed, element) so
// the GPU needs no RNG state and the host can recompute any element (the kernel's CPU twin).
// Plain C++ usable from CUDA (MOE_HD marks host+device functions).
#include <cstdint>

#if defined(__CUDACC__)
#define MOE_HD __host__ __device__
#else
#define MOE_HD
#endif

namespace moe::rt::cuda {

MOE_HD inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// u for element i: 24 random bits → [0, 1) → [1−ε, 1+ε).
MOE_HD inline float jitter_noise(uint64_t seed, uint64_t i, float eps) {
  const uint64_t h = splitmix64(splitmix64(seed) ^ i);
  const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
  return (1.0f - eps) + 2.0f * eps * u;
}

}  // namespace moe::rt::cuda
