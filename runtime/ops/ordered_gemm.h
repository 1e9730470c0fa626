#pragma once
// A GEMM whose every output element is computed by one fixed sequence of operations, whatever the
// matrix sizes, the element's position, the thread count or the CPU's vector width:
//   acc = 0;  for k = 0 … K−1:  acc = fma(A(i,k), B(k,j), acc);  C(i,j) = alpha·acc  (+ C(i,j))
// so a row of C depends only on its own row of A and on B. BLAS libraries (OpenBLAS included)
// pick kernels, blockings and small-matrix paths by size and thread count, which changes the
// rounding of a row when the call has more or fewer rows: one process with 256 token rows and four
// ranks with 64 each then disagree in the last bits, and a discrete choice (expert choice's top-C)
// turns that into a different run (docs/expert-parallel.md, "Deterministic arithmetic").
// The AVX-512 and AVX2 kernels and the portable one give bit-identical results (each lane runs the
// same fma chain); which one runs depends only on the CPU (MOE_ORDERED_GEMM_ISA=scalar|avx2|avx512
// or set_ordered_gemm_isa forces one, for tests and benchmarks).
//
// Operands are views: element (i, k) of A at a[i·row_stride + k·col_stride] — so one kernel serves
// x·Wᵀ, dy·W and dyᵀ·x — or, for a weight gradient over a gathered subset of rows, through a table
// of row pointers (RowsView: element (i, k) = rows[k][i], k indexing the gathered rows).
#include <cstdint>

namespace moe::rt {

struct MatView {
  const float* data = nullptr;
  int64_t row_stride = 0;  // step of the first index
  int64_t col_stride = 1;  // step of the second index
};

// Column-of-rows view for products that sum over gathered rows: element (i, k) = rows[k][offset + i].
struct RowsView {
  const float* const* rows = nullptr;
  int64_t offset = 0;
};

// C[M×N] (row stride ldc) = alpha · A[M×K] · B[K×N]  (+ C when accumulate).
void ordered_gemm(int64_t M, int64_t N, int64_t K, float alpha, MatView A, MatView B, bool accumulate, float* C,
                  int64_t ldc);
// C[M×N] = alpha · Aᵀ·B over K gathered rows: A(i,k) = a.rows[k][i], B(k,j) = b.rows[k][j].
void ordered_gemm_rows(int64_t M, int64_t N, int64_t K, float alpha, RowsView A, RowsView B, bool accumulate,
                       float* C, int64_t ldc);

// The kernel in use: "avx512", "avx2" or "scalar".
const char* ordered_gemm_isa();
// Switches the kernel (tests, benchmarks); false when this CPU cannot run it. Not thread-safe
// with GEMMs in flight.
bool set_ordered_gemm_isa(const char* name);

}  // namespace moe::rt
