#pragma once
// Tensor parallelism inside one decoder layer (issue 15), Megatron's split: q/k/v and the dense
// MLP's gate/up are column-parallel (each tp rank owns n_heads/tp heads, d_ff/tp hidden units),
// o_proj and down_proj row-parallel. The block's output is a partial sum, all-reduced over the tp
// group in the forward pass; the block's input gradient likewise in the backward pass (the
// conjugate). The embedding and the head are split by vocabulary (Megatron's vocab-parallel
// embedding and output layer): each tp rank looks up its shard's tokens (the rows summed over tp)
// and computes its shard's logits, the cross-entropy combining the shards' per-token statistics
// (vocab_parallel_cross_entropy.h); the head's input gradient is summed over tp. Norms are
// replicated and see identical inputs and gradients on every tp rank. The MoE blocks (router,
// experts) are replicated too (or the experts split, parallel.etp; the shared experts are split,
// moe_layer.h), but each tp rank passes only its share of the batch through them (whole sequences; the outputs and input
// gradients are summed back into every rank's copy), so experts compute each token once; their
// gradients (Param::tp_partial) are summed over tp by the runtime.
//
// Sequence parallelism (parallel.sequence_parallel, Megatron's): the residual stream and the norms
// hold only the rank's share of the tokens, the same whole sequences its MoE blocks route. Before
// attention, a dense MLP or the head the normed share is all-gathered; a block's partial output
// (and the embedding's) is reduce-scattered back to the shares instead of all-reduced; backward
// the conjugates (the output gradient all-gathered, the input gradient reduce-scattered). The MoE
// blocks then need no tp communication at all, and the norms' gradients are tp-partial.
// The model knows the group only through these functions, so it stays free of the communication
// library.
#include <cstdint>
#include <functional>
#include <vector>

namespace moe::rt {

struct TensorParallel {
  int64_t rank = 0, size = 1;
  bool sequence_parallel = false;
  std::function<void(float* data, int64_t count)> all_reduce;  // sums over the tp group
  std::function<void(double* data, int64_t count)> all_reduce_f64;
  // counts[r]: rank r's elements, rank order (whole sequences each; uneven when the batch is).
  std::function<void(const float* mine, float* all, const std::vector<int64_t>& counts)> all_gather;
  std::function<void(const float* all, float* mine, const std::vector<int64_t>& counts)> reduce_scatter;

  bool active() const { return size > 1; }
  bool sequence_sharded() const { return active() && sequence_parallel; }
  // A row-parallel block's partial output (or a column-parallel block's input gradient): summed
  // here, or with sequence parallelism left for the model to reduce-scatter.
  void reduce(float* data, int64_t count) const {
    if (active() && !sequence_parallel) all_reduce(data, count);
  }
};

}  // namespace moe::rt
