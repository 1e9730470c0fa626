#pragma once
// Row-major single-precision GEMM, the one entry point every matrix product of the CPU runtime
// goes through: C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, op = transpose when asked.
// OpenBLAS's cblas_sgemm when available; a plain loop otherwise (machines without OpenBLAS).
// With deterministic arithmetic on (set_deterministic, the spec's runtime.deterministic), float
// GEMMs go to ordered_gemm instead: every element one fma chain in k order, so a row's result never
// depends on the call's row count, the thread count or the CPU's kernels (beta must be 0 or 1).
#include <cstdint>
#include <string>

namespace moe::rt {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same in double precision (cblas_dgemm): lets the ops run in float64 for gradient checks.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// Process-wide: float GEMMs through ordered_gemm (true) or the BLAS (false, the default).
void set_deterministic(bool on);
bool deterministic();

// Threads the GEMMs may use (0: the library's default).
void set_gemm_threads(int threads);
int gemm_threads();

// The BLAS kernels in use, e.g. "OpenBLAS SkylakeX" ("plain loops" without OpenBLAS).
std::string gemm_backend();
// OpenBLAS picks its kernels from the CPU model when the library loads; 0.3.21 (Debian 12) does
// not know recent Xeons (the 2-core dev VMs: family 6, model 207) and falls back to its SSE3
// "Prescott" kernels, about 4× slower than the AVX-512 ones on the same CPU. Returns the
// OPENBLAS_CORETYPE value that fits this CPU ("SkylakeX" with AVX-512, "Haswell" with AVX2) when
// the loaded kernels are such a fallback and the variable is not set; nullptr otherwise. The
// variable is read only at load time, so a program applies it by setting it and re-executing
// itself before doing any work.
const char* blas_coretype_override();

// Double-precision reference for tests: the same contract, naive loops, no BLAS.
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                    const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                    int64_t ldc);

}  // namespace moe::rt
