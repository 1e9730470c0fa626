// CUDA MoE benchmark at Mixtral-like dims (defaults: d_model 4096, d_expert 14336, 8 experts,
// top-2, 8192 tokens, bf16). Prints, from one run:
//   expert GEMMs   forward+backward of the expert bank (dropless grouped GEMM, balanced random
//                  routing) in TFLOP/s, against one plain cuBLAS GEMM of the same FLOPs (target ≥ 80%)
//   permute        gather_rows of T·k rows, GB/s against cudaMemcpy D2D of the same bytes (≥ 70%)
//   unpermute      combine_token_major, the same
//   MoE layer      CudaMoeLayer forward+backward (dropless top-k), vs torch_moe_layer_cuda.py (≥ 1.5× faster)
// Usage: bench_cuda_moe [tokens] [d_model] [d_expert] [experts] [top_k]. Random data (never zeros),
// CUDA-event timing, median of 10 after 3 warm-ups.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda_check.h"
#include "cuda_moe_layer.h"
#include "device_allocator.h"
#include "expert_ffn.h"
#include "kernels.h"
#include "stream.h"

using namespace moe::rt::cuda;

namespace {

template <typename F>
double median_ms(cudaStream_t s, F&& body, int warm = 3, int reps = 10) {
  for (int i = 0; i < warm; ++i) body();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    Event a, b;
    a.record(s);
    body();
    b.record(s);
    b.synchronize();
    t.push_back(b.elapsed_ms_since(a));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <typename T>
DeviceBuffer<T> random_device(size_t n, float scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> h(n);
  for (auto& x : h) x = d(rng);
  DeviceBuffer<float> f(n);
  MOE_CUDA_CHECK(cudaMemcpy(f.data(), h.data(), n * 4, cudaMemcpyHostToDevice));
  DeviceBuffer<T> out(n);
  convert(out.data(), f.data(), static_cast<int64_t>(n), nullptr);
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 8192, d = argc > 2 ? std::atoll(argv[2]) : 4096,
                f = argc > 3 ? std::atoll(argv[3]) : 14336, E = argc > 4 ? std::atoll(argv[4]) : 8,
                k = argc > 5 ? std::atoll(argv[5]) : 2;
  if (!gpu_available()) {
    std::printf("bench_cuda_moe: no GPU (cudaGetDeviceCount failed or found none): nothing measured\n");
    return 0;
  }
  cudaDeviceProp prop{};
  MOE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  Stream stream;
  Blas blas;
  blas.set_stream(stream.get());
  const int64_t R = T * k;
  // Balanced-random routing: multinomial counts over E experts, each expert ≥ 1 row.
  std::mt19937_64 rng(123);
  std::vector<int64_t> offsets(E + 1, 0);
  {
    std::vector<int64_t> counts(E, 1);
    for (int64_t r = E; r < R; ++r) ++counts[rng() % E];
    for (int64_t e = 0; e < E; ++e) offsets[e + 1] = offsets[e] + counts[e];
  }
  auto w1 = random_device<bf16>(E * f * d, 0.02f, 1), w2 = random_device<bf16>(E * d * f, 0.02f, 2),
       w3 = random_device<bf16>(E * f * d, 0.02f, 3);
  auto x = random_device<bf16>(R * d, 1.0f, 4), dy = random_device<bf16>(R * d, 1.0f, 5);
  DeviceBuffer<bf16> h1(R * f), h3(R * f), act(R * f), dact(R * f), y(R * d), dx(R * d);
  DeviceBuffer<float> g1(E * f * d), g2(E * d * f), g3(E * f * d);
  fill(g1.data(), 0.0f, g1.size(), stream.get());
  fill(g2.data(), 0.0f, g2.size(), stream.get());
  fill(g3.data(), 0.0f, g3.size(), stream.get());
  ExpertBank<bf16> bank{w1.data(), w2.data(), w3.data(), d, f};
  ExpertActivations<bf16> a{h1.data(), h3.data(), act.data()};
  ExpertFfnPaths paths;
  const double expert_ms = median_ms(stream.get(), [&] {
    paths = expert_ffn_forward(blas, bank, x.data(), offsets, a, y.data());
    expert_ffn_backward(blas, bank, {g1.data(), g2.data(), g3.data()}, x.data(), offsets, a, dy.data(), dact.data(),
                        dx.data());
  });
  const double expert_flops = 3.0 * 6.0 * static_cast<double>(R) * d * f;  // fwd 6·R·d·f, bwd twice that
  // The reference rate: one plain cuBLAS GEMM of the forward h1 shape (M = R, N = f, K = d), same run.
  const int64_t M = R, N = f, K = d;
  auto A = random_device<bf16>(M * K, 1.0f, 6), B = random_device<bf16>(N * K, 0.02f, 7);
  DeviceBuffer<bf16> C(M * N);
  const double plain_ms = median_ms(stream.get(), [&] {
    gemm<bf16, bf16>(blas, {false, true, M, N, K, K, K, N}, 1.0f, A.data(), B.data(), 0.0f, C.data());
  });
  const double plain_flops = 2.0 * M * N * K;
  const double expert_tflops = expert_flops / expert_ms * 1e-9, plain_tflops = plain_flops / plain_ms * 1e-9;

  // Permute / unpermute vs a device copy of the same bytes (read + write).
  std::vector<int32_t> row_token(R), asg_row(R);
  for (int64_t r = 0; r < R; ++r) row_token[r] = static_cast<int32_t>(rng() % T);
  {
    std::vector<int32_t> perm(R);
    for (int64_t i = 0; i < R; ++i) perm[i] = static_cast<int32_t>(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    asg_row = perm;
  }
  DeviceBuffer<int32_t> d_rt(R), d_ar(R);
  MOE_CUDA_CHECK(cudaMemcpy(d_rt.data(), row_token.data(), R * 4, cudaMemcpyHostToDevice));
  MOE_CUDA_CHECK(cudaMemcpy(d_ar.data(), asg_row.data(), R * 4, cudaMemcpyHostToDevice));
  auto tokens_x = random_device<bf16>(T * d, 1.0f, 8);
  DeviceBuffer<float> gate(R);
  fill(gate.data(), 0.5f, R, stream.get());
  DeviceBuffer<bf16> out_tokens(T * d);
  const double permute_ms = median_ms(stream.get(), [&] {
    gather_rows(y.data(), tokens_x.data(), d_rt.data(), R, d, stream.get());
  });
  const double unpermute_ms = median_ms(stream.get(), [&] {
    combine_token_major(out_tokens.data(), y.data(), d_ar.data(), gate.data(), T, k, d, stream.get());
  });
  const double permute_bytes = 2.0 * R * d * sizeof(bf16);                        // read R rows, write R rows
  const double unpermute_bytes = (R * d + 2.0 * T * d) * sizeof(bf16);             // read R rows + y, write y
  const double copy_ms = median_ms(stream.get(), [&] {
    MOE_CUDA_CHECK(cudaMemcpyAsync(y.data(), dx.data(), R * d * sizeof(bf16), cudaMemcpyDeviceToDevice, stream.get()));
  });
  const double copy_gbs = permute_bytes / copy_ms * 1e-6;
  const double perm_gbs = permute_bytes / permute_ms * 1e-6, unperm_gbs = unpermute_bytes / unpermute_ms * 1e-6;

  // The whole MoE layer (router → top-k → permute → experts → combine, forward + backward), the
  // figure to hold against torch_moe_layer_cuda.py's eager layer on the same dims (target ≥ 1.5×).
  moe::rt::MoeConfig lc;
  lc.d_model = d, lc.num_experts = E, lc.top_k = k, lc.d_expert = f, lc.aux_loss_coef = 0.01, lc.z_loss_coef = 0.001;
  auto gate_w = random_device<bf16>(E * d, 0.02f, 9), layer_dy = random_device<bf16>(T * d, 1.0f, 10);
  DeviceBuffer<float> gate_g(E * d);
  fill(gate_g.data(), 0.0f, E * d, stream.get());
  DeviceBuffer<bf16> layer_y(T * d), layer_dx(T * d);
  CudaMoeLayer<bf16> layer(lc, blas);
  const CudaMoeWeights<bf16> lw{gate_w.data(), bank, {}};
  const CudaMoeGrads lg{gate_g.data(), {g1.data(), g2.data(), g3.data()}, {}};
  CudaMoeOptions lo;
  lo.training = false;
  const double layer_ms = median_ms(stream.get(), [&] {
    layer.forward(lw, tokens_x.data(), layer_y.data(), T, lo);
    layer.backward(lw, lg, layer_dy.data(), layer_dx.data());
  });
  const double layer_flops = 3.0 * 6.0 * static_cast<double>(T * k) * d * f;

  std::printf("device: %s (%d SMs)   T %lld  d %lld  f %lld  E %lld  k %lld  bf16\n", prop.name,
              prop.multiProcessorCount, (long long)T, (long long)d, (long long)f, (long long)E, (long long)k);
  std::printf("| metric | ms | rate | reference | ratio | target |\n|---|---|---|---|---|---|\n");
  std::printf("| expert GEMMs fwd+bwd (%s) | %.3f | %.1f TFLOP/s | plain cuBLAS %.1f TFLOP/s | %.2f | >= 0.80 |\n",
              paths.forward == GroupedPath::grouped_batched ? "grouped" : "strided/loop", expert_ms, expert_tflops,
              plain_tflops, expert_tflops / plain_tflops);
  std::printf("| permute (gather_rows) | %.3f | %.0f GB/s | D2D copy %.0f GB/s | %.2f | >= 0.70 |\n", permute_ms,
              perm_gbs, copy_gbs, perm_gbs / copy_gbs);
  std::printf("| unpermute (combine) | %.3f | %.0f GB/s | D2D copy %.0f GB/s | %.2f | >= 0.70 |\n", unpermute_ms,
              unperm_gbs, copy_gbs, unperm_gbs / copy_gbs);
  std::printf("| MoE layer fwd+bwd (CudaMoeLayer, dropless top-%lld) | %.3f | %.1f TFLOP/s | torch eager: its own row | see summary | >= 1.5x faster |\n",
              (long long)k, layer_ms, layer_flops / layer_ms * 1e-9);
  std::printf("layer_ms=%.4f\n", layer_ms);
  const auto& st = DeviceAllocator::instance().stats();
  std::printf("allocator: peak %.2f GiB in use, %lld cudaMalloc calls, %lld cache hits\n",
              st.peak_in_use_bytes / double(1ull << 30), (long long)st.raw_allocs, (long long)st.cache_hits);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_cuda_moe: %s\n", e.what());
  return 1;
}
