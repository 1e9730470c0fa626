#pragma once
// A trainable tensor: its Hugging Face name (checkpoint contract, docs/architecture.md 3.5), its shape
// (row-major, as PyTorch stores nn.Linear weights: [out, in]), its values and its gradient.
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "exact_sum.h"

namespace moe::rt {

// The part of a logical tensor one rank holds under tensor parallelism: the `index`-th of `count`
// equal slices along `dim` (0: rows, 1: columns) of a tensor of shape `full`. dim −1: the whole.
// Checkpoints and the init always see the logical tensor (param_shard.h).
struct ParamShard {
  int dim = -1;
  int64_t index = 0, count = 1;
  std::vector<int64_t> full;
  bool sharded() const { return dim >= 0; }
};

struct Param {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> value;
  std::vector<float> grad;
  // Deterministic arithmetic (grad_sink.h): the ops add the gradient here instead of into `grad`;
  // the trainer rounds it into `grad` once per step, after the reduction over ranks. Empty (size
  // 0) otherwise.
  ExactSum exact_grad;
  bool is_expert = false;  // an expert's weight: reduced over the expert-data-parallel group only
  ParamShard shard;        // tensor parallelism: the slice of the logical tensor held here
  // Tensor parallelism: the gradient covers this tp rank's share of the tokens only (the MoE
  // block's params); the runtime sums it over the tp group.
  bool tp_partial = false;

  Param() = default;
  Param(std::string n, std::vector<int64_t> s, bool expert = false)
      : name(std::move(n)), shape(std::move(s)), is_expert(expert) {
    const int64_t count = numel();
    value.assign(count, 0.0f);
    grad.assign(count, 0.0f);
  }
  int64_t numel() const {
    return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
  }
  void zero_grad() {
    if (exact_grad.size() > 0)
      exact_grad.zero();  // grad is written whole by rounding the sum
    else
      std::fill(grad.begin(), grad.end(), 0.0f);
  }
  void use_exact_grad() { exact_grad.resize(grad.size()); }
};

}  // namespace moe::rt
