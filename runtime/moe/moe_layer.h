#pragma once
// The MoE feed-forward block of one layer, as the model sees it: x [T×d] in, y [T×d] out.
//   router (logits → scores → selection) → dispatch (permute tokens into expert-major order)
//   → experts (one SwiGLU FFN per expert over its contiguous block) → combine (weighted scatter-add)
//   + shared experts (always on).
// The balancing losses (Switch aux loss, router z-loss) are computed here and their gradients
// flow back into the router in backward(). The model calls forward() then, after its own
// backward reaches this layer, backward() with dL/dy; backward adds into the params' grads and
// returns dL/dx. A layer keeps what backward needs from the last forward (one micro-batch).
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "job_spec.h"
#include "param.h"
#include "token_dispatcher.h"

namespace moe::rt {

// What routing did in one forward pass: the `expert_load` record and the loss terms.
struct RoutingStats {
  std::vector<int64_t> counts;   // [E] tokens (token-expert pairs) that chose each expert, before capacity
  std::vector<int64_t> dropped;  // [E] of those, dropped by the capacity limit
  double aux_loss = 0.0;         // α · E · Σ f_i · P_i (already scaled by aux_loss_coef)
  double z_loss = 0.0;           // β · mean(logsumexp(logits)²) (already scaled by z_loss_coef)
  int64_t tokens_without_expert = 0;  // tokens routed to no expert at all (drops, expert choice)
  // With MoeLayerOptions::coselection: [E×E] tokens whose kept experts include a and b (a < b, at
  // a·E + b); empty otherwise.
  std::vector<int64_t> coselection;
};

struct MoeLayerOptions {
  bool training = true;  // jitter only in training
  bool force_dropless = false;  // eval: dropless routing, no noise (docs/architecture.md 3.5)
  // Weight of this layer's aux and z losses in the objective backward() differentiates (e.g.
  // 1/grad_accum when the model averages micro-batches). Captured by forward().
  double loss_scale = 1.0;
  // Ranks that share the batch (dp·ep, equal token counts): the losses are means over all their
  // tokens, so each rank scales its tokens' gradients as one process with the whole batch does and
  // the gradients are summed, not averaged, over the ranks.
  int64_t data_slices = 1;
  // Tokens per sequence (set by the model): the unit in which deterministic arithmetic sums weight
  // gradients (grad_sink.h). 0: the whole call is one unit.
  int64_t segment_tokens = 0;
  // Count co-selected expert pairs into RoutingStats::coselection (a sampled step, placement.stats_every).
  bool coselection = false;
};

template <typename T>
class RoutingSync;  // moe_compute.h

// Runtime II (expert parallelism): the layer holds only the dispatcher's local experts
// [first_expert, first_expert + local_experts) — their params keep their global index in the name,
// so checkpoints keep Hugging Face names — and routing decisions may be taken over all ranks.
// Expert tensor parallelism (parallel.etp, Megatron-Core's expert_tensor_parallel_size): the local
// experts hold hidden units [rank·f/size, (rank+1)·f/size) of their FFNs. The group's ranks hold
// the same experts and each receives its own rows for them (its share of the tokens, through its
// EP group); around the experts the group all-gathers the rows, each rank computes its slice's
// partial outputs for all of them, and a reduce-scatter sums each rank's rows back; backward the
// same with the output gradients and the input gradients. The slices' weight gradients then cover
// every row and need no sum over the group.
struct ExpertTensorParallel {
  int64_t rank = 0, size = 1;
  // counts[r]: rank r's elements, rank order.
  std::function<void(const float* mine, float* all, const std::vector<int64_t>& counts)> all_gather;
  std::function<void(const float* all, float* mine, const std::vector<int64_t>& counts)> reduce_scatter;
  std::function<void(const int64_t* mine, int64_t* all, int64_t n)> gather_counts;  // n from each rank
  bool active() const { return size > 1; }
};

struct MoeLayerParallel {
  std::unique_ptr<Dispatcher<float>> dispatcher;
  std::shared_ptr<RoutingSync<float>> routing_sync;  // null: decide locally
  ExpertTensorParallel etp;
  // Tensor parallelism (tp > 1): the shared experts are split over the tp group like a dense MLP
  // (Megatron's); the group all-gathers its ranks' token shares around them and reduce-scatters
  // the partial outputs. The same hook, over the tp group's token shares.
  ExpertTensorParallel shared_tp;
};

class MoeLayer {
 public:
  // `layer_index` names the params: model.layers.{i}.block_sparse_moe.*
  MoeLayer(const JobSpec& spec, int64_t layer_index);
  MoeLayer(const JobSpec& spec, int64_t layer_index, MoeLayerParallel parallel);
  ~MoeLayer();

  // y[T×d] = MoE(x[T×d]). `rng` drives jitter noise (training only).
  void forward(const float* x, float* y, int64_t T, const MoeLayerOptions& options, std::mt19937_64& rng);
  // Given dy[T×d], writes dx[T×d] and accumulates parameter gradients, including those of the
  // aux and z losses (whose weights are in the spec).
  void backward(const float* dy, float* dx);

  const RoutingStats& stats() const;
  std::vector<Param*> params();  // router, experts (is_expert; local ones only), shared experts
  // Aux-loss-free balancing (DeepSeek-V3): after an optimizer step, bias += rate · sign(mean − load).
  // `load` is the per-expert count of the step (summed over micro-batches and, later, ranks).
  void update_balancing_bias(const std::vector<int64_t>& load);
  std::vector<float>& balancing_bias();  // [E], part of the checkpoint state

  // Fills every weight with N(0, std²) from `rng` in params() order (optional: the model may
  // initialise params() itself).
  void init_params(std::mt19937_64& rng, double std);
  // Seconds per phase (router, permute, experts, combine, shared) summed since the last reset.
  struct PhaseTimes {
    double router = 0, permute = 0, experts = 0, combine = 0, shared = 0, expert_flops = 0;
  };
  PhaseTimes phase_times() const;
  void reset_phase_times();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe::rt
