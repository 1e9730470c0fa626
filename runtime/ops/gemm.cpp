#include "gemm.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if MOE_HAVE_CBLAS
#include <cblas.h>
#endif

#include "ordered_gemm.h"

namespace moe::rt {

namespace {
int g_threads = 0;
std::atomic<bool> g_deterministic{false};

template <typename T>
void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        T a = ta ? A[k * lda + i] : A[i * lda + k];
        T b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      C[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
    }
}
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (g_deterministic.load(std::memory_order_relaxed)) {
    if (beta != 0.0f && beta != 1.0f) throw std::invalid_argument("gemm: deterministic arithmetic takes beta 0 or 1");
    // op(A)(i, k) and op(B)(k, j) as strided views of the row-major arrays.
    const MatView a = trans_a ? MatView{A, 1, lda} : MatView{A, lda, 1};
    const MatView b = trans_b ? MatView{B, 1, ldb} : MatView{B, ldb, 1};
    ordered_gemm(M, N, K, alpha, a, b, beta == 1.0f, C, ldc);
    return;
  }
#if MOE_HAVE_CBLAS
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
#else
  naive_gemm<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
#if MOE_HAVE_CBLAS
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
#else
  naive_gemm<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

#if MOE_HAVE_CBLAS
extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);
extern "C" char* openblas_get_corename(void);
#endif

void set_deterministic(bool on) { g_deterministic.store(on); }
bool deterministic() { return g_deterministic.load(); }

std::string gemm_backend() {
  if (deterministic()) return std::string("ordered GEMM ") + ordered_gemm_isa();
#if MOE_HAVE_CBLAS
  const char* core = openblas_get_corename();
  return std::string("OpenBLAS ") + (core ? core : "?");
#else
  return "plain loops";
#endif
}

const char* blas_coretype_override() {
#if MOE_HAVE_CBLAS && (defined(__x86_64__) || defined(__i386__))
  if (std::getenv("OPENBLAS_CORETYPE")) return nullptr;  // the user chose
  const char* core_name = openblas_get_corename();
  const std::string core = core_name ? core_name : "";
  const bool avx512_core = core == "SkylakeX" || core == "Cooperlake" || core == "SapphireRapids";
  const bool avx2_core = avx512_core || core == "Haswell" || core == "Zen";
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && !avx512_core) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !avx2_core) return "Haswell";
#endif
  return nullptr;
}

void set_gemm_threads(int threads) {
  g_threads = threads;
#if MOE_HAVE_CBLAS
  openblas_set_num_threads(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));
#endif
}

int gemm_threads() {
#if MOE_HAVE_CBLAS
  return openblas_get_num_threads();
#else
  return g_threads > 0 ? g_threads : 1;
#endif
}

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                    const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                    int64_t ldc) {
  naive_gemm<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace moe::rt
