#pragma once
// Rotary position embedding, Hugging Face "rotate-half" convention (Llama/Mixtral), in place.
// x is [batch × seq × heads × head_dim]; the position of a row is its index within the sequence.
// For each head vector, half = head_dim / 2, inv_freq[i] = theta^(−2i / head_dim), angle = pos·inv_freq[i]:
//   x'[i]        = x[i] · cos − x[i+half] · sin
//   x'[i+half]   = x[i+half] · cos + x[i] · sin
// The map is a rotation, so backward applies the inverse rotation to the gradient (in place).
#include <cstdint>

namespace moe::rt {

template <typename T>
void rope_forward(T* x, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta);

template <typename T>
void rope_backward(T* dx, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, double theta);

}  // namespace moe::rt
