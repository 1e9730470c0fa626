#pragma once
// Causal GQA attention on the GPU (CPU twin: runtime/ops/attention.h, same layouts and contract):
// per batch and KV head, one strided-batched cuBLAS GEMM over that head's query heads for Q·Kᵀ and
// P·V, the fused causal softmax kernel between them; backward: dP = dO·Vᵀ and dQ = dS·K batched,
// dV and dK accumulated head by head (the query heads of a group share them).
#include <cstdint>

#include "cublas_ops.h"

namespace moe::rt::cuda {

struct AttentionDims {
  int64_t batch = 1, seq = 1, heads = 1, kv_heads = 1, head_dim = 1;
};

// probs [batch × heads × seq × seq] (kept for backward).
template <typename T>
void attention_forward(Blas& blas, T* out, T* probs, const T* q, const T* k, const T* v, const AttentionDims& s);

// dq, dk, dv are overwritten. scratch: [batch × heads × seq × seq] (dP, then dS).
template <typename T>
void attention_backward(Blas& blas, T* dq, T* dk, T* dv, T* scratch, const T* dout, const T* probs, const T* q,
                        const T* k, const T* v, const AttentionDims& s);

}  // namespace moe::rt::cuda
