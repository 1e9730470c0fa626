#pragma once
// Row-major single-precision GEMM, the one entry point every matrix product of the CPU runtime
// goes through: C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, op = transpose when asked.
// OpenBLAS's cblas_sgemm when available; a plain loop otherwise (machines without OpenBLAS).
#include <cstdint>

namespace moe::rt {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same in double precision (cblas_dgemm): lets the ops run in float64 for gradient checks.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// Threads the GEMMs may use (0: the library's default).
void set_gemm_threads(int threads);
int gemm_threads();

// Double-precision reference for tests: the same contract, naive loops, no BLAS.
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                    const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                    int64_t ldc);

}  // namespace moe::rt
