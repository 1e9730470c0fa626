#pragma once
// Causal self-attention with grouped KV heads (GQA), after RoPE:
//   q [batch × seq × heads × hd], k, v [batch × seq × kv_heads × hd]; query head h reads kv head
//   h / (heads / kv_heads). For each (batch, head):
//     P = softmax(Q·Kᵀ / sqrt(hd) + causal mask)   [seq × seq], saved for backward
//     out = P · V                                   out is [batch × seq × heads × hd]
//   backward: dV += Pᵀ·dO;  dP = dO·Vᵀ;  dS = P ⊙ (dP − rowsum(dP ⊙ P)) / sqrt(hd);
//             dQ = dS·K;  dK += dSᵀ·Q    (dq, dk, dv are overwritten)
// Every product is one GEMM per head on strided views of the caller's buffers.
#include <cstdint>

namespace moe::rt {

struct AttentionShape {
  int64_t batch = 1, seq = 1, heads = 1, kv_heads = 1, head_dim = 1;
};

// probs: [batch × heads × seq × seq].
template <typename T>
void attention_forward(T* out, T* probs, const T* q, const T* k, const T* v, const AttentionShape& s);

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* probs, const T* q, const T* k,
                        const T* v, const AttentionShape& s);

}  // namespace moe::rt
