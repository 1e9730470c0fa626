#pragma once
// Token embedding: out[t] = table[tokens[t]], table is [vocab × d] (model.embed_tokens.weight).
//   backward: dtable[tokens[t]] += dout[t]   (accumulated; an ExactSum sink adds each row exactly)
// A vocabulary shard (tensor parallelism): `table` holds ids [range.first, range.first + range.count);
// another shard's tokens give zero rows forward and nothing backward.
#include <cstdint>

#include <type_traits>

#include "grad_sink.h"

namespace moe::rt {

struct VocabRange {
  int64_t first = 0, count = -1;  // count −1: the whole vocabulary
  bool holds(int64_t token) const { return count < 0 || (token >= first && token < first + count); }
};

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* table, int64_t rows, int64_t d, VocabRange range = {});

template <typename T>
void embedding_backward(std::type_identity_t<GradSink<T>> dtable, const T* dout, const int32_t* tokens, int64_t rows, int64_t d,
                        VocabRange range = {});

}  // namespace moe::rt
