#pragma once
// The MoE block's computation on plain arrays, for float (the runtime) and double (the float64
// gradient checks): router → token selection → dispatcher → SwiGLU experts → combine, plus the
// shared expert. MoeLayer (moe_layer.h) wraps it with Params; tests drive it directly in double.
// Weights are views (pointers) so the same code runs on Param storage or on test arrays.
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "moe_config.h"
#include "moe_layer.h"
#include "router.h"
#include "swiglu_experts.h"
#include "token_dispatcher.h"
#include "token_selection.h"

namespace moe::rt {

template <typename T>
struct MoeWeights {
  const T* gate = nullptr;    // [E×d]
  ExpertWeights<T> experts;   // all E experts (the dispatcher picks its local ones)
  ExpertWeights<T> shared;    // empty, or one FFN of width d_shared
};
template <typename T>
struct MoeGrads {
  GradSink<T> gate;
  ExpertGrads<T> experts;
  ExpertGrads<T> shared;
};

// Optional (Runtime II): routing decisions taken over every data-parallel rank, so that N processes
// with T tokens each decide exactly what one process with N·T tokens decides. Called after the
// local top-k (no capacity applied): sets `loss_counts` to the per-expert counts of all ranks (the
// aux loss's load share f_i) and, when `apply_capacity`, drops assignments by the global rule.
template <typename T>
class RoutingSync {
 public:
  virtual ~RoutingSync() = default;
  virtual void decide(const MoeConfig& config, const T* weight, bool apply_capacity, Assignments& assignments,
                      std::vector<int64_t>& loss_counts) = 0;
  // Index of this rank's first token in the group's concatenated batch (the jitter noise is keyed
  // by the global token index). Called before the router, only when jitter is on.
  virtual int64_t token_offset(int64_t /*tokens*/) { return 0; }
  // Expert choice over the group's concatenated batch (training and evaluation): every expert takes its top-C
  // tokens among ALL the group's tokens; fills this rank's share of the assignments (its tokens,
  // in the one-process assignment order), their gate weights and the group's counts for the aux
  // loss. Returns false when the group does not do it (the caller then selects locally).
  virtual bool select_expert_choice(const MoeConfig& /*config*/, const T* /*scores*/, const float* /*bias*/,
                                    int64_t /*tokens*/, Assignments& /*assignments*/, std::vector<T>& /*weight*/,
                                    std::vector<int64_t>& /*loss_counts*/) {
    return false;
  }
};

// Seconds spent per phase, summed over calls until reset (the bench's time split).
struct MoePhaseTimes {
  double router = 0, permute = 0, experts = 0, combine = 0, shared = 0;
  double expert_flops = 0;  // FLOPs of the routed experts' GEMMs
  double total() const { return router + permute + experts + combine + shared; }
};

template <typename T>
class MoeCompute {
 public:
  // `dispatcher` null: a LocalDispatcher over all experts.
  explicit MoeCompute(const MoeConfig& config, std::unique_ptr<Dispatcher<T>> dispatcher = nullptr);

  // y [T×d] = MoE(x). `bias` [E] is the selection bias (zeros without bias balancing).
  void forward(const MoeWeights<T>& w, const T* x, T* y, int64_t tokens, const MoeLayerOptions& options,
               const float* bias, std::mt19937_64& rng);
  // dx [T×d] (overwritten) and grads (+=) from dy; the aux and z losses enter with weight loss_scale.
  void backward(const MoeWeights<T>& w, const MoeGrads<T>& g, const T* dy, T* dx, T loss_scale = T(1));

  // Runtime II: global routing decisions (token choice only); null = this process alone.
  void set_routing_sync(std::shared_ptr<RoutingSync<T>> sync) { sync_ = std::move(sync); }
  // Runtime III: the local experts are slices (moe_layer.h); config().d_expert is the slice's width.
  // Float only, and not with overlap chunks.
  void set_expert_tensor_parallel(ExpertTensorParallel etp) { etp_ = std::move(etp); }
  // Runtime III: the shared experts are slices (config().d_shared is the slice's width), computed
  // over every tp rank's token share (moe_layer.h). Float only.
  void set_shared_tensor_parallel(ExpertTensorParallel tp) { shared_tp_ = std::move(tp); }

  Dispatcher<T>& dispatcher() const { return *dispatcher_; }
  const RoutingStats& stats() const { return stats_; }
  const Assignments& assignments() const { return assignments_; }
  const std::vector<T>& gate_weights() const { return weight_; }
  const DispatchHandle<T>& handle() const { return handle_; }
  const Router<T>& router() const { return router_; }
  MoePhaseTimes& times() { return times_; }
  const MoeConfig& config() const { return config_; }

 private:
  ExpertWeights<T> local_experts(const ExpertWeights<T>& all) const;
  ExpertGrads<T> local_expert_grads(const ExpertGrads<T>& all) const;
  // Deterministic arithmetic: the local experts' weight gradients of the last backward, one
  // partial per (expert, source sequence) added to the sinks' ExactSums.
  void add_expert_weight_grads_per_sequence(const ExpertGrads<T>& g);
  // Expert tensor parallelism over one chunk of the expert rows (all of them without overlap:
  // chunk 0): the local experts' slices over every group rank's rows of the chunk, whose offsets
  // per local expert are `offsets` [local experts + 1]; `out` / `din` get this rank's rows, summed
  // over the slices. Every group rank calls them for the same chunks in the same order.
  void etp_forward(const ExpertWeights<T>& local, size_t chunk, const std::vector<int64_t>& offsets, const T* in, T* out);
  void etp_backward(const ExpertWeights<T>& local, const ExpertGrads<T>& grads, size_t chunk, const T* dout, T* din);
  // The shared experts' slices over the tp group's token shares: shared_out_ (forward), dx += (backward).
  void shared_tp_forward(const ExpertWeights<T>& w);
  void shared_tp_backward(const ExpertWeights<T>& w, const ExpertGrads<T>& g, const T* dy, T* dx);

  MoeConfig config_;
  std::unique_ptr<Dispatcher<T>> dispatcher_;
  std::shared_ptr<RoutingSync<T>> sync_;
  std::vector<int64_t> loss_counts_;
  Router<T> router_;
  SwigluExperts<T> experts_;
  std::vector<SwigluExperts<T>> chunk_experts_;  // overlap: one bank state per chunk (for backward)
  SwigluExperts<T> shared_;
  int64_t tokens_ = 0;
  int64_t loss_tokens_ = 0;  // tokens the losses average over (all data-parallel ranks)
  std::vector<T> x_;  // the forward input (router and shared-expert backward)
  Assignments assignments_;
  std::vector<T> weight_;   // [A] gate weights
  DispatchHandle<T> handle_;
  std::vector<T> expert_out_;  // [expert rows × d]
  std::vector<T> shared_out_;  // [T×d] the shared expert's output
  std::vector<T> dweight_, dscores_, d_expert_out_, d_expert_in_;
  RoutingStats stats_;
  MoePhaseTimes times_;
  ExpertTensorParallel etp_;
  struct EtpChunk {
    std::vector<SwigluExperts<T>> experts;        // one bank state per group rank's rows (for backward)
    std::vector<int64_t> first_row;               // [size + 1] each rank's first gathered row
    std::vector<std::vector<int64_t>> offsets;    // per rank: its rows' offsets per local expert
    std::vector<T> in, out, dout, din;            // [gathered rows × d]
  };
  std::vector<EtpChunk> etp_chunks_;  // one per overlap chunk (one without overlap)
  ExpertTensorParallel shared_tp_;
  std::vector<int64_t> shared_counts_;                      // elements of each tp rank's share
  std::vector<T> shared_in_, shared_all_out_, shared_dy_, shared_dx_, shared_part_;  // gathered shares
};

}  // namespace moe::rt
