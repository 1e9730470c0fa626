#pragma once
// Helpers of the GPU tests: skip without a GPU, fresh random host data, device upload/download in
// fp32 or bf16, poisoned outputs (NaN) and the relative error ‖got − ref‖ / ‖ref‖.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cuda_check.h"
#include "device_allocator.h"
#include "kernels.h"

namespace moe::rt::cuda::test {

#define MOE_REQUIRE_GPU()                                                                          \
  do {                                                                                             \
    if (!::moe::rt::cuda::gpu_available())                                                         \
      GTEST_SKIP() << "no GPU: cudaGetDeviceCount failed or found none (this test runs on a GPU machine)"; \
  } while (0)

inline std::mt19937_64& rng() {
  static std::mt19937_64 r(std::random_device{}());  // fresh inputs every run
  return r;
}
inline std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}
inline std::vector<int32_t> randint(size_t n, int32_t hi) {
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(rng()() % static_cast<uint64_t>(hi));
  return v;
}

// A device copy of host fp32 data in T (bf16 rounds; `host` is updated to the rounded values so
// the CPU twin sees exactly what the GPU sees).
template <typename T>
DeviceBuffer<T> upload(std::vector<float>& host) {
  DeviceBuffer<float> f(host.size());
  MOE_CUDA_CHECK(cudaMemcpy(f.data(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  DeviceBuffer<T> out(host.size());
  convert(out.data(), f.data(), static_cast<int64_t>(host.size()), nullptr);
  if constexpr (!std::is_same_v<T, float>) convert(f.data(), out.data(), static_cast<int64_t>(host.size()), nullptr);
  MOE_CUDA_CHECK(cudaMemcpy(host.data(), f.data(), host.size() * 4, cudaMemcpyDeviceToHost));
  return out;
}
template <typename V>
DeviceBuffer<V> upload_raw(const std::vector<V>& host) {
  DeviceBuffer<V> out(host.size());
  MOE_CUDA_CHECK(cudaMemcpy(out.data(), host.data(), host.size() * sizeof(V), cudaMemcpyHostToDevice));
  return out;
}
template <typename T>
std::vector<float> download(const T* d, size_t n) {
  std::vector<float> host(n);
  if constexpr (std::is_same_v<T, float>) {
    MOE_CUDA_CHECK(cudaMemcpy(host.data(), d, n * 4, cudaMemcpyDeviceToHost));
  } else {
    DeviceBuffer<float> f(n);
    convert(f.data(), d, static_cast<int64_t>(n), nullptr);
    MOE_CUDA_CHECK(cudaMemcpy(host.data(), f.data(), n * 4, cudaMemcpyDeviceToHost));
  }
  MOE_CUDA_CHECK(cudaDeviceSynchronize());
  return host;
}
template <typename V>
std::vector<V> download_raw(const V* d, size_t n) {
  std::vector<V> host(n);
  MOE_CUDA_CHECK(cudaMemcpy(host.data(), d, n * sizeof(V), cudaMemcpyDeviceToHost));
  return host;
}
template <typename T>
DeviceBuffer<T> poisoned(size_t n) {
  DeviceBuffer<T> b(n);
  fill(b.data(), NAN, static_cast<int64_t>(n), nullptr);
  return b;
}

// ‖got − ref‖ / ‖ref‖; any non-finite value in got (an unwritten, poisoned element) gives +inf.
inline double rel_err(const std::vector<float>& got, const std::vector<float>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

template <typename T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}

}  // namespace moe::rt::cuda::test
