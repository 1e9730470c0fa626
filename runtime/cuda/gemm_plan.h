#pragma once
// How a row-major GEMM of the runtime becomes a cuBLAS (column-major) call, and the per-expert
// argument lists of the expert FFN's grouped GEMMs. Plain C++ (no CUDA headers): tested here.
//
// A row-major X[r×c] with leading dimension ld is the column-major Xᵀ[c×r] with the same ld, so
//   row-major C[M×N] = op(A)·op(B)   is   column-major Cᵀ[N×M] = op(B)ᵀ·op(A)ᵀ:
//   cuBLAS gets m = N, n = M, k = K, its "A" = our B (op = trans_b), its "B" = our A (op = trans_a).
//
// Expert i of a bank works on rows [offsets[i], offsets[i+1]) of expert-major activations; its
// weights w1, w3 [f×d] and w2 [d×f] lie at i·f·d in one contiguous [E×…] buffer each:
//   forward   h1 = x·W1ᵀ, h3 = x·W3ᵀ, act = silu(h1)·h3, y = act·W2ᵀ
//   backward  dact = dy·W2, dW2 += dyᵀ·act, dx = dh1·W1 (+)= dh3·W3, dW1 += dh1ᵀ·x, dW3 += dh3ᵀ·x
#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe::rt::cuda {

struct RowMajorGemm {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
};

struct CublasGemm {  // column-major arguments; `a` is the row-major B, `b` the row-major A
  bool trans_a = false, trans_b = false;
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
};

// Throws moe::Error naming the dimension when one does not fit cuBLAS's int arguments.
CublasGemm to_cublas(const RowMajorGemm& g);

enum class ExpertGemm { fwd_h1, fwd_h3, fwd_y, bwd_dact, bwd_dw2, bwd_dx1, bwd_dx3, bwd_dw1, bwd_dw3 };
const char* expert_gemm_name(ExpertGemm which);

// One GEMM per expert that has rows (experts with none are left out: their outputs and weight
// gradients are untouched, as the CPU twin skips them). Offsets are in elements from the base
// pointers of the row-major operands A, B and C of that GEMM (see expert_gemm_operands()).
struct GroupedGemmPlan {
  ExpertGemm which = ExpertGemm::fwd_h1;
  float beta = 0.0f;  // 1 for accumulating GEMMs (weight gradients, the second half of dx)
  std::vector<int> expert;  // expert of each group
  std::vector<CublasGemm> gemm;
  std::vector<int64_t> a_offset, b_offset, c_offset;  // row-major operands
  size_t groups() const { return gemm.size(); }
  // Every group has the same shape and evenly spaced operands (capacity mode): a strided-batched
  // GEMM does it. Fills the strides (elements) when true.
  bool uniform(int64_t* stride_a = nullptr, int64_t* stride_b = nullptr, int64_t* stride_c = nullptr) const;
};

// offsets has E + 1 entries (non-decreasing, offsets[0] = 0); d = d_model, f = d_expert.
GroupedGemmPlan plan_expert_gemm(ExpertGemm which, const std::vector<int64_t>& offsets, int64_t d, int64_t f);

// Which buffers the row-major A, B, C of each GEMM are (for messages and the device code).
struct ExpertGemmOperands {
  const char* a;
  const char* b;
  const char* c;
};
ExpertGemmOperands expert_gemm_operands(ExpertGemm which);

}  // namespace moe::rt::cuda
