#pragma once
// Softmax cross-entropy over logits [rows × vocab] against integer targets, mean over rows:
//   loss = (1/rows) · Σ_t −log softmax(logits[t])[targets[t]]
//   backward: dlogits[t] = dloss · (softmax(logits[t]) − onehot(targets[t])) / mean_rows
//             (mean_rows: the rows the loss is a mean over — all data-parallel ranks' — or rows)
// forward writes the softmax into probs (probs may alias logits) and returns the loss in double;
// backward writes dlogits (it may alias probs); a target outside [0, vocab) gets no one-hot (another
// vocabulary shard's, vocab_parallel_cross_entropy.h).
#include <cstdint>

namespace moe::rt {

template <typename T>
double cross_entropy_forward(T* probs, const T* logits, const int32_t* targets, int64_t rows,
                             int64_t vocab);

template <typename T>
void cross_entropy_backward(T* dlogits, const T* probs, const int32_t* targets, int64_t rows,
                            int64_t vocab, double dloss = 1.0, int64_t mean_rows = 0);

}  // namespace moe::rt
