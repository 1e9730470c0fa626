// Deterministic arithmetic (docs/expert-parallel.md): the fixed-order GEMM against a float64
// reference and its invariances (row subsets, threads, kernels), the exact sums' independence of
// order and grouping, the gradient sinks' segments, SwiGLU's position independence and the pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "embedding.h"
#include "exact_sum.h"
#include "gemm.h"
#include "linear.h"
#include "ordered_gemm.h"
#include "rmsnorm.h"
#include "swiglu.h"
#include "thread_pool.h"

using namespace moe::rt;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// Restores the GEMM settings a test changes.
struct GemmSettings {
  int threads = gemm_threads();
  std::string isa = ordered_gemm_isa();
  bool det = deterministic();
  ~GemmSettings() {
    set_gemm_threads(threads);
    set_ordered_gemm_isa(isa.c_str());
    set_deterministic(det);
  }
};

// C = A·B with A(i,k) = a[i·lda + k] and B(k,j) = b[j·ldb + k] (x·Wᵀ), in the three layouts the
// runtime uses, against float64: |C − C64| ≤ γ_K · Σ_k |A(i,k)·B(k,j)| with γ_K = K·u/(1 − K·u).
TEST(OrderedGemm, MatchesTheFloat64ReferenceWithinTheDotProductBound) {
  const int64_t M = 37, N = 45, K = 300;
  const auto a = randn(M * K, 1), b = randn(N * K, 2), c0 = randn(M * N, 3);
  const double u = std::ldexp(1.0, -24), gamma = K * u / (1 - K * u);
  for (int layout = 0; layout < 3; ++layout)
    for (bool accumulate : {false, true}) {
      // The same product stored three ways: A row-major or transposed, B as Wᵀ or row-major.
      std::vector<float> A(M * K), B(K * N);
      MatView va, vb;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k) (layout == 2 ? A[k * M + i] : A[i * K + k]) = a[i * K + k];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) (layout == 0 ? B[j * K + k] : B[k * N + j]) = b[j * K + k];
      va = layout == 2 ? MatView{A.data(), 1, M} : MatView{A.data(), K, 1};
      vb = layout == 0 ? MatView{B.data(), 1, K} : MatView{B.data(), N, 1};
      std::vector<float> C = c0;
      ordered_gemm(M, N, K, 0.5f, va, vb, accumulate, C.data(), N);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double exact = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            exact += double(a[i * K + k]) * b[j * K + k];
            mag += std::fabs(double(a[i * K + k]) * b[j * K + k]);
          }
          const double want = 0.5 * exact + (accumulate ? c0[i * N + j] : 0.0);
          const double bound = 0.5 * gamma * mag + 2 * u * std::fabs(want) + 1e-30;
          ASSERT_LE(std::fabs(C[i * N + j] - want), bound) << "layout " << layout << " (" << i << "," << j << ")";
        }
    }
}

// A row of C depends only on its row of A: any subset of rows, alone or at another offset, any
// thread count and any kernel give the same bits.
TEST(OrderedGemm, RowsAreInvariantToTheCallThreadsAndKernel) {
  GemmSettings keep;
  const int64_t M = 203, N = 77, K = 129;
  const auto a = randn(M * K, 4), w = randn(N * K, 5);
  std::vector<float> full(M * N);
  set_gemm_threads(1);
  ordered_gemm(M, N, K, 1.0f, {a.data(), K, 1}, {w.data(), 1, K}, false, full.data(), N);
  for (int64_t first : {0, 1, 13, 100, 202})
    for (int64_t rows : {1, 5, 12, 64}) {
      if (first + rows > M) continue;
      std::vector<float> part(rows * N);
      ordered_gemm(rows, N, K, 1.0f, {a.data() + first * K, K, 1}, {w.data(), 1, K}, false, part.data(), N);
      EXPECT_TRUE(same_bits(part.data(), full.data() + first * N, rows * N)) << rows << " rows from " << first;
    }
  std::vector<std::string> kernels{"scalar"};
  for (const char* k : {"avx2", "avx512"})
    if (set_ordered_gemm_isa(k)) kernels.push_back(k);
  for (const auto& k : kernels)
    for (int threads : {1, 2, 3}) {
      ASSERT_TRUE(set_ordered_gemm_isa(k.c_str()));
      set_gemm_threads(threads);
      std::vector<float> again(M * N);
      ordered_gemm(M, N, K, 1.0f, {a.data(), K, 1}, {w.data(), 1, K}, false, again.data(), N);
      EXPECT_TRUE(same_bits(again.data(), full.data(), M * N)) << k << " kernel, " << threads << " threads";
    }
  EXPECT_FALSE(set_ordered_gemm_isa("no-such-kernel"));
}

// Gathered rows (the experts' weight gradients) equal the strided product on the same data.
TEST(OrderedGemm, GatheredRowsEqualTheStridedProduct) {
  const int64_t rows = 41, out = 19, in = 23;
  const auto dy = randn(rows * out, 6), x = randn(rows * in, 7);
  std::vector<float> strided(out * in), gathered(out * in);
  ordered_gemm(out, in, rows, 1.0f, {dy.data(), 1, out}, {x.data(), in, 1}, false, strided.data(), in);
  std::vector<const float*> a(rows), b(rows);
  for (int64_t r = 0; r < rows; ++r) a[r] = dy.data() + r * out, b[r] = x.data() + r * in;
  ordered_gemm_rows(out, in, rows, 1.0f, {a.data(), 0}, {b.data(), 0}, false, gathered.data(), in);
  EXPECT_TRUE(same_bits(strided.data(), gathered.data(), strided.size()));
}

// gemm() with deterministic arithmetic on goes through ordered_gemm: a 64-row call's rows equal
// the same rows inside a 256-row call (OpenBLAS makes no such promise).
TEST(OrderedGemm, DeterministicGemmRowsDoNotDependOnTheRowCount) {
  GemmSettings keep;
  set_deterministic(true);
  const int64_t d = 128, E = 8;
  const auto x = randn(256 * d, 8), w = randn(E * d, 9);
  std::vector<float> all(256 * E), quarter(64 * E);
  gemm(false, true, 256, E, d, 1.0f, x.data(), d, w.data(), d, 0.0f, all.data(), E);
  for (int64_t q = 0; q < 4; ++q) {
    gemm(false, true, 64, E, d, 1.0f, x.data() + q * 64 * d, d, w.data(), d, 0.0f, quarter.data(), E);
    EXPECT_TRUE(same_bits(quarter.data(), all.data() + q * 64 * E, 64 * E)) << "quarter " << q;
  }
  EXPECT_THROW(gemm(false, true, 4, E, d, 1.0f, x.data(), d, w.data(), d, 0.5f, all.data(), E), std::invalid_argument);
}

// The same additions in any order and grouping (as ranks, micro-batches and segments split
// them), the partial sums combined by adding their integers: identical bits, within 2^-64 per
// addition of the exact sum.
TEST(ExactSum, AnyOrderAndGroupingGivesTheSameBits) {
  const size_t n = 257, parts = 24;
  std::vector<std::vector<float>> values;
  for (size_t p = 0; p < parts; ++p) {
    auto v = randn(n, 100 + p, p % 3 == 0 ? 1e-3f : 10.0f);  // mixed magnitudes: fp32 sums of them round
    values.push_back(v);
  }
  std::vector<float> reference;
  for (int trial = 0; trial < 6; ++trial) {
    std::vector<size_t> order(parts);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(trial));
    const size_t groups = 1 + trial % 4;  // "ranks"
    std::vector<ExactSum> rank(groups, ExactSum(n));
    for (size_t i = 0; i < parts; ++i) rank[i % groups].add(values[order[i]].data(), n);
    for (size_t g = 1; g < groups; ++g)  // the all-reduce: integers added elementwise
      for (size_t i = 0; i < rank[0].limbs().size(); ++i) rank[0].limbs()[i] += rank[g].limbs()[i];
    std::vector<float> out(n);
    rank[0].round_to(out.data());
    if (trial == 0) {
      reference = out;
      for (size_t i = 0; i < n; ++i) {
        long double exact = 0;
        for (const auto& v : values) exact += v[i];
        const long double tolerance = std::ldexp(1.0L, -64) * parts + std::fabs(exact) * std::ldexp(1.0L, -24);
        ASSERT_LE(std::fabs(out[i] - exact), tolerance) << i;
      }
    } else {
      EXPECT_TRUE(same_bits(out.data(), reference.data(), n)) << "trial " << trial;
    }
  }
}

// Offsets add into part of the sum; a value that is not finite or ≥ 2^32 (in the vector body or
// the scalar tail) makes the whole sum NaN — the trainer then names the parameter — until zero().
TEST(ExactSum, OffsetsAndValuesOutOfRange) {
  std::vector<float> v(21, 0.25f);
  v[3] = 1.5f;
  ExactSum s(v.size());
  s.add(v.data(), v.size());
  s.add(v.data() + 3, 1, 20);  // element 20 gets 1.5 more
  std::vector<float> out(v.size());
  s.round_to(out.data());
  EXPECT_EQ(out[3], 1.5f);
  EXPECT_EQ(out[20], 1.75f);
  for (size_t at : {size_t{2}, size_t{19}})  // vector body, scalar tail
    for (float bad : {std::numeric_limits<float>::infinity(), std::nanf(""), 5e9f}) {
      s.zero();
      std::vector<float> w = v;
      w[at] = bad;
      s.add(w.data(), w.size());
      s.round_to(out.data());
      EXPECT_TRUE(std::isnan(out[0])) << bad << " at " << at;
      s.zero();
      s.add(v.data(), v.size());
      s.round_to(out.data());
      EXPECT_EQ(out[0], 0.25f);
    }
}

// The sinks' exact paths: segments of one call summed together equal the same segments spread
// over two "ranks" whose sums are then added — for linear, RMSNorm and embedding gradients.
TEST(GradSink, SegmentsGiveTheSameGradientHoweverTheRowsAreSplit) {
  GemmSettings keep;
  set_deterministic(true);
  const int64_t seq = 8, rows = 4 * seq, in = 12, out = 10, vocab = 7;
  const auto x = randn(rows * in, 10), dy = randn(rows * out, 11), w = randn(out * in, 12);
  const auto g = randn(rows * in, 13), wn = randn(in, 14);
  std::vector<float> rstd(rows, 0.7f), dx(rows * in, 0.0f);
  std::vector<int32_t> tokens(rows);
  for (int64_t t = 0; t < rows; ++t) tokens[t] = static_cast<int32_t>((t * 5) % vocab);
  auto run = [&](int64_t first, int64_t n, ExactSum& lin, ExactSum& norm, ExactSum& emb) {
    linear_backward<float>(nullptr, GradSink<float>(nullptr, &lin, seq), dy.data() + first * out, x.data() + first * in,
                           w.data(), n, in, out);
    rmsnorm_backward<float>(dx.data() + first * in, GradSink<float>(nullptr, &norm, seq), g.data() + first * in,
                            x.data() + first * in, wn.data(), rstd.data() + first, n, in);
    embedding_backward<float>(GradSink<float>(nullptr, &emb, seq), g.data() + first * in, tokens.data() + first, n, in);
  };
  ExactSum lin1(out * in), norm1(in), emb1(vocab * in), lin2(out * in), norm2(in), emb2(vocab * in);
  run(0, rows, lin1, norm1, emb1);  // one process
  ExactSum lin_a(out * in), norm_a(in), emb_a(vocab * in);
  run(0, seq, lin2, norm2, emb2);  // rank 0: sequence 0
  run(seq, 3 * seq, lin_a, norm_a, emb_a);  // rank 1: sequences 1-3
  for (auto [mine, other] : {std::pair{&lin2, &lin_a}, {&norm2, &norm_a}, {&emb2, &emb_a}})
    for (size_t i = 0; i < mine->limbs().size(); ++i) mine->limbs()[i] += other->limbs()[i];
  for (auto [one, two] : {std::pair{&lin1, &lin2}, {&norm1, &norm2}, {&emb1, &emb2}}) {
    std::vector<float> r1(one->size()), r2(two->size());
    one->round_to(r1.data());
    two->round_to(r2.data());
    EXPECT_TRUE(same_bits(r1.data(), r2.data(), r1.size()));
  }
  // And the exact linear gradient is the float64 one within a float's rounding.
  std::vector<float> dw(out * in);
  lin1.round_to(dw.data());
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double exact = 0, mag = 0;
      for (int64_t r = 0; r < rows; ++r) exact += double(dy[r * out + o]) * x[r * in + i], mag += std::fabs(double(dy[r * out + o]) * x[r * in + i]);
      EXPECT_NEAR(dw[o * in + i], exact, 1e-6 * mag + 1e-30);
    }
}

// SwiGLU in float: an element's result does not depend on where it sits in a call (vector body
// or scalar remainder) and stays within float rounding of the float64 SwiGLU.
TEST(Swiglu, FloatResultsDoNotDependOnThePositionInTheCall) {
  const int64_t n = 1003;
  const auto a = randn(n, 15, 4.0f), b = randn(n, 16);
  std::vector<float> whole(n), part(n);
  swiglu_forward(whole.data(), a.data(), b.data(), n);
  for (int64_t first : {1, 3, 7, 500})
    for (int64_t len : {1, 2, 5, 17, 100}) {
      swiglu_forward(part.data(), a.data() + first, b.data() + first, len);
      EXPECT_TRUE(same_bits(part.data(), whole.data() + first, len)) << len << " from " << first;
    }
  for (int64_t i = 0; i < n; ++i) {
    const double s = 1.0 / (1.0 + std::exp(-double(a[i])));
    EXPECT_NEAR(whole[i], double(a[i]) * s * b[i], 2e-6 * std::fabs(double(a[i]) * s * b[i]) + 1e-30) << i;
  }
}

TEST(ThreadPool, EveryIndexRunsOnceNestedCallsRunInlineAndErrorsPropagate) {
  std::vector<std::atomic<int>> hits(1000);
  parallel_for(1000, 3, [&](int64_t i) {
    hits[i]++;
    if (i == 7) parallel_for(4, 3, [&](int64_t j) { hits[900 + j]++; });  // from inside a job: inline
  });
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(hits[i].load(), (i >= 900 && i < 904) ? 2 : 1) << i;
  EXPECT_THROW(parallel_for(50, 2, [](int64_t i) {
                 if (i == 33) throw std::runtime_error("job 33");
               }),
               std::runtime_error);
  std::atomic<int> after{0};
  parallel_for(10, 2, [&](int64_t) { after++; });  // the pool still works
  EXPECT_EQ(after.load(), 10);
}

}  // namespace
