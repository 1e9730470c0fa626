// Order-independent float sums on a fixed-point grid (see exact_sum.h).
#include "exact_sum.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "gemm.h"
#include "thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moe::rt {

namespace {
constexpr double kHiScale = 16777216.0;       // 2^24: hi counts units of 2^-24
constexpr double kLoScale = 1099511627776.0;  // 2^40: lo counts units of 2^-64
constexpr float kLimit = 4294967296.0f;       // 2^32: larger magnitudes are out of range
}  // namespace

void ExactSum::resize(size_t n) {
  n_ = n;
  limbs_.assign(2 * n + 1, 0);
}

void ExactSum::zero() { std::fill(limbs_.begin(), limbs_.end(), 0); }

namespace {

// hi += trunc(v·2^24), lo += trunc(frac(v·2^24)·2^40): both conversions exact except the cut below
// 2^-64; unsigned adds (no undefined behaviour even far outside any realistic range). Returns the
// number of values that were not finite or out of range (skipped).
size_t add_scalar(const float* v, size_t count, int64_t* hi, int64_t* lo) {
  size_t bad = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!(std::fabs(v[i]) < kLimit)) {  // NaN, ±Inf or out of range
      ++bad;
      continue;
    }
    const double x = static_cast<double>(v[i]) * kHiScale;  // exact: a float times a power of two
    const int64_t h = static_cast<int64_t>(x);              // toward zero, |h| < 2^56
    const int64_t l = static_cast<int64_t>((x - static_cast<double>(h)) * kLoScale);
    hi[i] = static_cast<int64_t>(static_cast<uint64_t>(hi[i]) + static_cast<uint64_t>(h));
    lo[i] = static_cast<int64_t>(static_cast<uint64_t>(lo[i]) + static_cast<uint64_t>(l));
  }
  return bad;
}

#if defined(__x86_64__)
// The same operations 8 at a time (cvttpd2qq truncates as the scalar cast does); bit-identical.
__attribute__((target("avx512f,avx512dq"))) size_t add_avx512(const float* v, size_t count, int64_t* hi, int64_t* lo) {
  const __m512d hs = _mm512_set1_pd(kHiScale), ls = _mm512_set1_pd(kLoScale);
  const __m256 limit = _mm256_set1_ps(kLimit), sign = _mm256_set1_ps(-0.0f);
  size_t i = 0, bad = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 f = _mm256_loadu_ps(v + i);
    // |f| < limit is false for NaN too: any such lane goes to the scalar path, which counts it.
    if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, f), limit, _CMP_LT_OQ)) != 0xFF) {
      bad += add_scalar(v + i, 8, hi + i, lo + i);
      continue;
    }
    const __m512d x = _mm512_mul_pd(_mm512_maskz_cvtps_pd(0xFF, f), hs);
    const __m512i h = _mm512_cvttpd_epi64(x);
    const __m512i l = _mm512_cvttpd_epi64(_mm512_mul_pd(_mm512_sub_pd(x, _mm512_cvtepi64_pd(h)), ls));
    _mm512_storeu_si512(hi + i, _mm512_add_epi64(_mm512_loadu_si512(hi + i), h));
    _mm512_storeu_si512(lo + i, _mm512_add_epi64(_mm512_loadu_si512(lo + i), l));
  }
  return bad + add_scalar(v + i, count - i, hi + i, lo + i);
}
#endif

using AddFn = size_t (*)(const float*, size_t, int64_t*, int64_t*);

AddFn pick_add() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return add_avx512;
#endif
  return add_scalar;
}

}  // namespace

void ExactSum::add(const float* v, size_t count, size_t offset) {
  static const AddFn fn = pick_add();
  // Disjoint element ranges on the pool's threads (one range when small or already inside a job).
  constexpr size_t kChunk = 1 << 15;
  const int64_t chunks = static_cast<int64_t>((count + kChunk - 1) / kChunk);
  parallel_for(chunks, chunks > 1 ? gemm_threads() : 1, [&](int64_t c) {
    const size_t first = static_cast<size_t>(c) * kChunk, n = std::min(kChunk, count - first);
    int64_t* hi = limbs_.data() + offset + first;
    if (const size_t bad = fn(v + first, n, hi, hi + n_); bad > 0)
      std::atomic_ref<int64_t>(limbs_[2 * n_]).fetch_add(static_cast<int64_t>(bad));
  });
}

void ExactSum::round_to(float* out) const {
  const int64_t* hi = limbs_.data();
  const int64_t* lo = hi + n_;
  if (limbs_[2 * n_] != 0) {
    std::fill(out, out + n_, std::numeric_limits<float>::quiet_NaN());
    return;
  }
  // lo's whole units of 2^-24 move into hi; then hi·2^-24 (exact in double below 2^53, i.e. for
  // any sum under 2^29) plus the remaining fraction, rounded to double once and to float once.
  // A fixed function of the integers, so equal sums round to equal floats everywhere.
  for (size_t i = 0; i < n_; ++i) {
    const int64_t carry = lo[i] >> 40;  // floor division by 2^40
    const int64_t h = hi[i] + carry, l = lo[i] - carry * (int64_t{1} << 40);
    out[i] = static_cast<float>(static_cast<double>(h) * (1.0 / kHiScale) + static_cast<double>(l) * (1.0 / (kHiScale * kLoScale)));
  }
}

}  // namespace moe::rt
