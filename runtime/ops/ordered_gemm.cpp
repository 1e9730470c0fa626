// The fixed-order GEMM (see ordered_gemm.h). Goto-style: B is packed once into column panels of NR
// (zero-padded), then tasks of MC rows × NC columns each pack their rows of A into panels of MR and
// run the micro-kernel over every (row panel, column panel) pair. The micro-kernel runs the whole K
// loop in registers, so every element is a single fma chain in k order; padding rows and columns
// are computed and dropped. The tile store (alpha, accumulate) is shared plain C++ (this file is
// built with -ffp-contract=off, so no kernel fuses it differently).
#include "ordered_gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MOE_X86 1
#endif

#include "gemm.h"
#include "thread_pool.h"

namespace moe::rt {

namespace {

constexpr int64_t kMC = 96, kNC = 256, kKC = 256;  // rows, columns per task; K block

// One micro-kernel: acc[MR×NR] (row-major, NR wide) continues its fma chains over K more steps:
// acc[i][j] = fma(ap[k·MR + i], bp[k·NR + j], acc[i][j]) for k = 0 … K−1 (acc starts at zero when
// `fresh`). Stopping after a block of K and continuing later leaves every chain unchanged.
using Kernel = void (*)(int64_t K, const float* ap, const float* bp, float* acc, bool fresh);

struct Isa {
  const char* name;
  int64_t mr, nr;
  Kernel kernel;
};

void kernel_scalar(int64_t K, const float* ap, const float* bp, float* acc, bool fresh) {
  constexpr int64_t MR = 4, NR = 8;
  float c[MR][NR] = {};
  if (!fresh) std::memcpy(c, acc, sizeof c);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < MR; ++i)
      for (int64_t j = 0; j < NR; ++j) c[i][j] = std::fma(ap[k * MR + i], bp[k * NR + j], c[i][j]);
  std::memcpy(acc, c, sizeof c);
}

#ifdef MOE_X86
__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t K, const float* ap, const float* bp, float* acc,
                                                    bool fresh) {
  constexpr int64_t MR = 6;
  __m256 c[MR][2];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) {
    c[i][0] = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + i * 16);
    c[i][1] = fresh ? _mm256_setzero_ps() : _mm256_loadu_ps(acc + i * 16 + 8);
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(bp + k * 16), b1 = _mm256_loadu_ps(bp + k * 16 + 8);
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + k * MR + i);
      c[i][0] = _mm256_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(a, b1, c[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) {
    _mm256_storeu_ps(acc + i * 16, c[i][0]);
    _mm256_storeu_ps(acc + i * 16 + 8, c[i][1]);
  }
}

__attribute__((target("avx512f"))) void kernel_avx512(int64_t K, const float* ap, const float* bp, float* acc,
                                                     bool fresh) {
  constexpr int64_t MR = 12;
  __m512 c[MR][2];
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) {
    c[i][0] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + i * 32);
    c[i][1] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + i * 32 + 16);
  }
  for (int64_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_loadu_ps(bp + k * 32), b1 = _mm512_loadu_ps(bp + k * 32 + 16);
#pragma GCC unroll 16
    for (int64_t i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(ap[k * MR + i]);
      c[i][0] = _mm512_fmadd_ps(a, b0, c[i][0]);
      c[i][1] = _mm512_fmadd_ps(a, b1, c[i][1]);
    }
  }
#pragma GCC unroll 16
  for (int64_t i = 0; i < MR; ++i) {
    _mm512_storeu_ps(acc + i * 32, c[i][0]);
    _mm512_storeu_ps(acc + i * 32 + 16, c[i][1]);
  }
}
#endif

const Isa kScalar{"scalar", 4, 8, kernel_scalar};
#ifdef MOE_X86
const Isa kAvx2{"avx2", 6, 16, kernel_avx2};
const Isa kAvx512{"avx512", 12, 32, kernel_avx512};
#endif

// The named kernel if this CPU runs it (empty name: the best one), else nullptr.
const Isa* find_isa(const std::string& want) {
  if (want == "scalar") return &kScalar;
#ifdef MOE_X86
  const bool has512 = __builtin_cpu_supports("avx512f");
  const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if ((want.empty() || want == "avx512") && has512) return &kAvx512;
  if ((want.empty() || want == "avx2") && has2) return &kAvx2;
#endif
  return want.empty() ? &kScalar : nullptr;
}

std::atomic<const Isa*>& current() {
  static std::atomic<const Isa*> chosen{[] {
    const char* forced = std::getenv("MOE_ORDERED_GEMM_ISA");
    const Isa* isa = find_isa(forced ? forced : "");
    return isa ? isa : find_isa("");
  }()};
  return chosen;
}

const Isa& isa() { return *current().load(std::memory_order_relaxed); }

// Element accessors of the two kinds of operand.
struct Strided {
  MatView v;
  float operator()(int64_t i, int64_t k) const { return v.data[i * v.row_stride + k * v.col_stride]; }
};
struct Gathered {  // (i, k) = rows[k][offset + i]
  RowsView v;
  float operator()(int64_t i, int64_t k) const { return v.rows[k][v.offset + i]; }
};

// Rows [i0, i0+rows) and columns [k0, k0+K) of an operand → panel p[k·width + i], zero rows
// beyond `rows` up to `width`. Walks the source along its contiguous direction.
template <typename Get>
void pack(const Get& get, int64_t i0, int64_t rows, int64_t k0, int64_t K, int64_t width, float* p) {
  if constexpr (std::is_same_v<Get, Strided>) {
    if (get.v.col_stride == 1) {  // each row contiguous along k: a transpose, 4 × 4 at a time
      const float* src = get.v.data + i0 * get.v.row_stride + k0;
      const int64_t rs = get.v.row_stride;
      int64_t i = 0;
#ifdef MOE_X86
      for (; i + 4 <= rows; i += 4) {
        int64_t k = 0;
        for (; k + 4 <= K; k += 4) {
          __m128 r0 = _mm_loadu_ps(src + i * rs + k), r1 = _mm_loadu_ps(src + (i + 1) * rs + k);
          __m128 r2 = _mm_loadu_ps(src + (i + 2) * rs + k), r3 = _mm_loadu_ps(src + (i + 3) * rs + k);
          _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
          _mm_storeu_ps(p + k * width + i, r0);
          _mm_storeu_ps(p + (k + 1) * width + i, r1);
          _mm_storeu_ps(p + (k + 2) * width + i, r2);
          _mm_storeu_ps(p + (k + 3) * width + i, r3);
        }
        for (; k < K; ++k)
          for (int64_t ii = i; ii < i + 4; ++ii) p[k * width + ii] = src[ii * rs + k];
      }
#endif
      for (; i < rows; ++i)
        for (int64_t k = 0; k < K; ++k) p[k * width + i] = src[i * rs + k];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t ii = rows; ii < width; ++ii) p[k * width + ii] = 0.0f;
      return;
    }
  }
  for (int64_t k = 0; k < K; ++k) {
    float* dst = p + k * width;
    // Contiguous along i (a transposed operand, gathered rows): a plain copy per k.
    const float* run = nullptr;
    if constexpr (std::is_same_v<Get, Strided>) {
      if (get.v.row_stride == 1) run = get.v.data + i0 + (k0 + k) * get.v.col_stride;
    } else {
      run = get.v.rows[k0 + k] + get.v.offset + i0;
    }
    if (run)
      for (int64_t i = 0; i < rows; ++i) dst[i] = run[i];
    else
      for (int64_t i = 0; i < rows; ++i) dst[i] = get(i0 + i, k0 + k);
    for (int64_t i = rows; i < width; ++i) dst[i] = 0.0f;
  }
}

void store_tile(const float* acc, int64_t nr, int64_t rows, int64_t cols, float alpha, bool accumulate, float* C,
                int64_t ldc) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* a = acc + i * nr;
    float* c = C + i * ldc;
    if (alpha == 1.0f && !accumulate) {
      std::memcpy(c, a, static_cast<size_t>(cols) * sizeof(float));
    } else if (alpha == 1.0f) {
      for (int64_t j = 0; j < cols; ++j) c[j] = c[j] + a[j];
    } else if (!accumulate) {
      for (int64_t j = 0; j < cols; ++j) c[j] = alpha * a[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) c[j] = c[j] + alpha * a[j];
    }
  }
}

// A(i, k) via `a`, B(k, j) via `bt(j, k)`.
template <typename GetA, typename GetBt>
void run(int64_t M, int64_t N, int64_t K, float alpha, const GetA& a, const GetBt& bt, bool accumulate, float* C,
         int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // the empty sum
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        if (!accumulate) C[i * ldc + j] = 0.0f;
    return;
  }
  const Isa& k = isa();
  const int64_t MR = k.mr, NR = k.nr, panels = (N + NR - 1) / NR;
  const int threads = std::max(1, gemm_threads());
  // Worth the pool only above ~4 MFLOP (tens of microseconds).
  const bool parallel = threads > 1 && 2.0 * static_cast<double>(M) * N * K > 4e6;
  thread_local std::vector<float> packed_b;  // this (calling) thread's; the tasks use `bp`
  packed_b.resize(static_cast<size_t>(panels * K * NR));
  float* const bp = packed_b.data();
  // B is packed on this thread unless it is large (a job costs a wake-up of the pool).
  parallel_for(panels, parallel && K * N > (1 << 18) ? threads : 1, [&](int64_t p) {
    pack(bt, p * NR, std::min(NR, N - p * NR), 0, K, NR, bp + p * K * NR);
  });
  const int64_t row_blocks = (M + kMC - 1) / kMC, col_blocks = (N + kNC - 1) / kNC;
  parallel_for(row_blocks * col_blocks, parallel ? threads : 1, [&](int64_t task) {
    const int64_t rb = task / col_blocks, cb = task % col_blocks;
    const int64_t r0 = rb * kMC, r1 = std::min(M, r0 + kMC), c0 = cb * kNC, c1 = std::min(N, c0 + kNC);
    const int64_t tiles = (c1 - c0 + NR - 1) / NR, panels_here = (r1 - r0 + MR - 1) / MR;
    thread_local std::vector<float> ap, acc;
    ap.resize(static_cast<size_t>(kKC * MR));
    acc.resize(static_cast<size_t>(panels_here * tiles * MR * NR));
    // K in blocks, outermost: the block's slice of B (tiles × kKC × NR) stays in L2 and a row
    // panel's slice of A in L1 while every tile's chains advance by up to kKC steps.
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
      const int64_t kc = std::min(kKC, K - k0);
      for (int64_t p = 0; p < panels_here; ++p) {
        const int64_t i0 = r0 + p * MR;
        pack(a, i0, std::min(MR, r1 - i0), k0, kc, MR, ap.data());
        for (int64_t t = 0; t < tiles; ++t)
          k.kernel(kc, ap.data(), bp + ((c0 / NR) + t) * K * NR + k0 * NR, acc.data() + (p * tiles + t) * MR * NR,
                   k0 == 0);
      }
    }
    for (int64_t p = 0; p < panels_here; ++p)
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t i0 = r0 + p * MR, j0 = c0 + t * NR;
        store_tile(acc.data() + (p * tiles + t) * MR * NR, NR, std::min(MR, r1 - i0), std::min(NR, c1 - j0), alpha,
                   accumulate, C + i0 * ldc + j0, ldc);
      }
  });
}

}  // namespace

void ordered_gemm(int64_t M, int64_t N, int64_t K, float alpha, MatView A, MatView B, bool accumulate, float* C,
                  int64_t ldc) {
  const MatView Bt{B.data, B.col_stride, B.row_stride};  // Bt(j, k) = B(k, j)
  run(M, N, K, alpha, Strided{A}, Strided{Bt}, accumulate, C, ldc);
}

void ordered_gemm_rows(int64_t M, int64_t N, int64_t K, float alpha, RowsView A, RowsView B, bool accumulate,
                       float* C, int64_t ldc) {
  run(M, N, K, alpha, Gathered{A}, Gathered{B}, accumulate, C, ldc);
}

const char* ordered_gemm_isa() { return isa().name; }

bool set_ordered_gemm_isa(const char* name) {
  const Isa* isa = find_isa(name ? name : "");
  if (!isa) return false;
  current().store(isa);
  return true;
}

}  // namespace moe::rt
