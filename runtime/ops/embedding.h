#pragma once
// Token embedding: out[t] = table[tokens[t]], table is [vocab × d] (model.embed_tokens.weight).
//   backward: dtable[tokens[t]] += dout[t]   (accumulated)
#include <cstdint>

namespace moe::rt {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d);

template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d);

}  // namespace moe::rt
