// The machine's fp32 FMA peak, measured: 16 independent AVX-512 FMA chains per thread (enough to
// cover the FMA latency on two ports), on 1 and on every core. It is the ceiling any fp32 GEMM —
// OpenBLAS's, ours, PyTorch's — can approach, quoted beside the MoE layer benchmarks.
//   fma_peak [--seconds S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <thread>
#include <vector>

namespace {

// Runs `iters` rounds of 16 FMAs on 16 lanes; returns a sum so the work is not optimised away.
__attribute__((target("avx512f"))) float fma_chains(long iters) {
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const __m512 x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
  for (long it = 0; it < iters; ++it)
#pragma GCC unroll 16
    for (auto& a : acc) a = _mm512_fmadd_ps(a, x, y);
  alignas(64) float lanes[16];
  float sum = 0;
  for (const auto& a : acc) {  // (not _mm512_reduce_add_ps: GCC 12 warns falsely inside it)
    _mm512_store_ps(lanes, a);
    for (float v : lanes) sum += v;
  }
  return sum;
}

double gflops(int threads, long iters) {
  std::vector<float> sink(static_cast<size_t>(threads));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink[static_cast<size_t>(t)] = fma_chains(iters); });
  for (auto& t : pool) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink[0] == 12345.0f) std::puts("");  // keeps the sums live
  return threads * static_cast<double>(iters) * 16 * 16 * 2 / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = std::atof(argv[++i]);
    else return std::fprintf(stderr, "usage: fma_peak [--seconds S]\n"), 2;
  }
  if (!__builtin_cpu_supports("avx512f")) return std::fprintf(stderr, "fma_peak: this CPU has no AVX-512\n"), 1;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  // Calibrate to about `seconds` per measurement on one thread.
  long iters = 1000000;
  volatile float sink = 0;  // the calls must not be optimised away
  while (iters < (1L << 40)) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + fma_chains(iters);
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > 0.1) break;
    iters *= 2;
  }
  iters = static_cast<long>(static_cast<double>(iters) * seconds / 0.1);
  std::printf("%-24s %12s\n", "fp32 FMA peak", "GFLOP/s");
  std::printf("%-24s %12.1f\n", "1 thread", gflops(1, iters));
  std::printf("%-24s %12.1f\n", (std::to_string(cores) + " threads").c_str(), gflops(cores, iters));
  return 0;
}
