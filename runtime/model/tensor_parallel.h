#pragma once
// Tensor parallelism inside one decoder layer (issue 15), Megatron's split: q/k/v and the dense
// MLP's gate/up are column-parallel (each tp rank owns n_heads/tp heads, d_ff/tp hidden units),
// o_proj and down_proj row-parallel. The block's output is a partial sum, all-reduced over the tp
// group in the forward pass; the block's input gradient likewise in the backward pass (the
// conjugate). Norms, embedding and head are replicated over tp and see identical inputs and
// gradients on every tp rank. The MoE blocks (router, experts, shared experts) are replicated too,
// but each tp rank passes only its share of the batch through them (whole sequences; the outputs
// and input gradients are summed back into every rank's copy), so experts compute each token once;
// their gradients (Param::tp_partial) are summed over tp by the runtime. The model knows the group
// only through `all_reduce`, so it stays free of the communication library.
#include <cstdint>
#include <functional>

namespace moe::rt {

struct TensorParallel {
  int64_t rank = 0, size = 1;
  std::function<void(float* data, int64_t count)> all_reduce;  // sums over the tp group

  bool active() const { return size > 1; }
  void reduce(float* data, int64_t count) const {
    if (active()) all_reduce(data, count);
  }
};

}  // namespace moe::rt
