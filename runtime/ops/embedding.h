#pragma once
// Token embedding: out[t] = table[tokens[t]], table is [vocab × d] (model.embed_tokens.weight).
//   backward: dtable[tokens[t]] += dout[t]   (accumulated; an ExactSum sink adds each row exactly)
#include <cstdint>

#include <type_traits>

#include "grad_sink.h"

namespace moe::rt {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d);

template <typename T>
void embedding_backward(std::type_identity_t<GradSink<T>> dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d);

}  // namespace moe::rt
