// Dense-op benchmark: the BLAS kernels in use, cblas_sgemm's rate, linear (forward, backward)
// against the raw GEMM at the MoE bench's expert shape (no overhead expected: linear is one GEMM
// per product), and causal attention and SwiGLU at the tiny-cpu preset's shapes. Best of N.
//   ops_bench [threads]        run once with OPENBLAS_CORETYPE unset and once set to compare kernels
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "attention.h"
#include "gemm.h"
#include "linear.h"
#include "swiglu.h"

using namespace moe::rt;

namespace {

double best_seconds(int reps, const std::function<void()>& fn) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

std::vector<float> randn(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  set_gemm_threads(threads);
  std::mt19937 rng(1);
  std::printf("backend: %s, %d threads\n\n| op | shape | ms | GFLOP/s |\n| --- | --- | ---: | ---: |\n",
              gemm_backend().c_str(), gemm_threads());
  auto row = [](const char* op, const char* shape, double s, double flops) {
    std::printf("| %s | %s | %.2f | %.1f |\n", op, shape, s * 1e3, flops > 0 ? flops / s / 1e9 : 0.0);
  };
  {
    const int64_t n = 2048;
    auto a = randn(n * n, rng), b = randn(n * n, rng), c = randn(n * n, rng);
    const double s = best_seconds(3, [&] { gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
    row("cblas_sgemm NN", "2048³", s, 2.0 * n * n * n);
  }
  {
    // One expert's block at the bench shape: 4096 tokens · top-2 / 8 experts = 1024 rows, d 1024 → f 2048.
    const int64_t T = 1024, d = 1024, f = 2048;
    auto x = randn(T * d, rng), w = randn(f * d, rng), y = randn(T * f, rng), dx = randn(T * d, rng), dw = randn(f * d, rng);
    const double flops = 2.0 * T * d * f;
    row("raw gemm (x·Wᵀ)", "1024×1024→2048", best_seconds(5, [&] {
          gemm(false, true, T, f, d, 1.0f, x.data(), d, w.data(), d, 0.0f, y.data(), f);
        }), flops);
    row("linear_forward", "1024×1024→2048", best_seconds(5, [&] { linear_forward(y.data(), x.data(), w.data(), T, d, f); }),
        flops);
    row("linear_backward (dx, dW)", "1024×1024→2048", best_seconds(5, [&] {
          linear_backward(dx.data(), dw.data(), y.data(), x.data(), w.data(), T, d, f);
        }), 2 * flops);
  }
  {
    const AttentionShape s{8, 128, 4, 4, 32};  // tiny-cpu
    const int64_t n = s.batch * s.seq * s.heads * s.head_dim;
    auto q = randn(n, rng), k = randn(n, rng), v = randn(n, rng), o = randn(n, rng), dq = q, dk = k, dv = v;
    std::vector<float> p(s.batch * s.heads * s.seq * s.seq);
    const double flops = 4.0 * s.batch * s.heads * s.seq * s.seq * s.head_dim;  // full (unmasked) GEMMs
    row("attention_forward", "8×128, 4 heads of 32", best_seconds(10, [&] {
          attention_forward(o.data(), p.data(), q.data(), k.data(), v.data(), s);
        }), flops);
    row("attention_backward", "8×128, 4 heads of 32", best_seconds(10, [&] {
          attention_backward(dq.data(), dk.data(), dv.data(), o.data(), p.data(), q.data(), k.data(), v.data(), s);
        }), 2 * flops);
  }
  {
    const int64_t n = 8192LL * 2048;  // bench shape: 4096 tokens · top-2 rows of d_expert 2048
    auto a = randn(n, rng), b = randn(n, rng), o = randn(n, rng), da = a, db = b;
    row("swiglu_forward", "8192×2048", best_seconds(3, [&] { swiglu_forward(o.data(), a.data(), b.data(), n); }), 0);
    row("swiglu_backward", "8192×2048", best_seconds(3, [&] {
          swiglu_backward(da.data(), db.data(), o.data(), a.data(), b.data(), n);
        }), 0);
  }
  return 0;
}
