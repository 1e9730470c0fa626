#pragma once
// The Mixtral-style decoder (docs/architecture.md 3.5), forward and backward on the CPU:
//   tokens → embed_tokens → per layer:
//       h   = x + self_attn(input_layernorm(x))
//       out = h + ffn(post_attention_layernorm(h))     ffn: MoE block, or a dense SwiGLU MLP
//                                                       for the first `first_dense_layers` layers
//   → model.norm → lm_head (or embed_tokens when tied) → cross-entropy against the targets.
// The loss is the mean LM cross-entropy over all batch·seq tokens plus every MoE layer's aux and
// z losses (already scaled by their coefficients in the spec); each part is reported separately.
// Parameters carry Hugging Face Mixtral names and PyTorch shapes, and are initialised from the
// seed: N(0, init_std) for matrices, 1 for norms. A parameter's draw depends only on the seed and
// its name, so a rank that holds a subset of the experts initialises them identically.
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "dense_mlp.h"
#include "embedding.h"
#include "job_spec.h"
#include "moe_layer.h"
#include "param.h"
#include "self_attention.h"
#include "tensor_parallel.h"

namespace moe::rt {

// Pipeline parallelism (issue 15): this process is stage `stage` of `stages` and holds the decoder
// layers core's stage_chunks gives it (pipeline_schedule.h): one range, or with the interleaved
// schedule (parallel.vpp) `chunks` ranges, chunk c being virtual stage c·stages + stage. The
// embedding lives on the first stage (its chunk 0), the final norm and head on the last (its last
// chunk; with tied embeddings a copy of the embedding there, whose gradient the runtime sums with
// the first stage's).
struct PipelineStage {
  int64_t stage = 0, stages = 1, chunks = 1;
  bool active() const { return stages > 1; }
  bool first() const { return stage == 0; }
  bool last() const { return stage == stages - 1; }
  bool starts(int64_t chunk) const { return first() && chunk == 0; }         // the embedding's chunk
  bool ends(int64_t chunk) const { return last() && chunk == chunks - 1; }  // the head's chunk
};

struct ModelOptions {
  // Test only: every layer gets a dense MLP (width d_ff, or d_expert when d_ff is 0), so the
  // dense path can be checked without the MoE block. Specs cannot ask for this.
  bool all_dense = false;
  // Runtime II: builds the MoE block of decoder layer i (local experts, all-to-all dispatcher).
  // Set by the expert-parallel runtime (runtime/ep); with it, parallel.ep/dp > 1 are accepted.
  std::function<std::unique_ptr<MoeLayer>(int64_t layer)> make_moe_layer;
  // Runtime III: this rank's place in its tensor-parallel group; attention and the dense MLPs
  // hold their slices (tensor_parallel.h). Set by the multi-process runtime when parallel.tp > 1.
  TensorParallel tp;
  PipelineStage pp;
};

struct LayerRouting {
  int64_t layer = 0;  // decoder layer index (the MoE layer's position in the stack)
  RoutingStats stats;
};

struct ForwardResult {
  double loss = 0.0;     // lm_loss + aux_loss + z_loss: what backward differentiates
  double lm_loss = 0.0;  // mean cross-entropy in nats per token
  double aux_loss = 0.0;  // summed over MoE layers
  double z_loss = 0.0;    // summed over MoE layers
  std::vector<LayerRouting> routing;  // one per MoE layer, in layer order
};

// Adds each MoE layer's routed and dropped counts of one forward pass into per-layer totals
// (the trainers' per-step expert_load figures; layers beyond `counts` are ignored).
void add_routing_counts(const ForwardResult& r, std::vector<std::vector<int64_t>>& counts,
                        std::vector<std::vector<int64_t>>& dropped);

class MixtralModel {
 public:
  // Throws moe::Error naming the field for what the CPU runtime can't do: attention mla,
  // parallel.tp/pp/ep > 1 in one process (without make_moe_layer), more pipeline stages than
  // layers, dtype other than fp32, heads not divisible by kv heads, odd head_dim.
  explicit MixtralModel(const JobSpec& spec, const ModelOptions& options = {});
  ~MixtralModel();
  MixtralModel(const MixtralModel&) = delete;
  MixtralModel& operator=(const MixtralModel&) = delete;

  // Re-draws every parameter from `seed` (the constructor uses spec.train.seed).
  void init_params(uint64_t seed);

  // tokens, targets: [batch × seq_len] (seq_len from the spec, or `seq` when given). With
  // targets == nullptr only the logits are computed (loss fields stay 0, backward not allowed).
  // `rng` drives the routers' jitter noise (training only). backward() will differentiate
  // options.loss_scale · loss (e.g. 1/grad_accum, so micro-batch grads sum to the mean's grad),
  // with the loss a mean over options.data_slices such batches (one per data-parallel rank).
  // A pipeline stage other than the first starts from `stage_input` [boundary_rows(batch) × d], the
  // previous stage's output (the tokens are then only checked); a stage other than the last stops after its
  // layers, with stage_output() for the next stage and only its layers' aux and z losses. `rng`
  // advances as one process's does over all layers (each router draws once when it jitters).
  // With chunks (interleaved schedule) the pass runs chunk `chunk`'s layers only, from its
  // virtual stage's input to its output: "stage" above is the chunk's virtual stage.
  ForwardResult forward(const int32_t* tokens, const int32_t* targets, int64_t batch,
                        const MoeLayerOptions& options, std::mt19937_64& rng, int64_t seq = 0,
                        const float* stage_input = nullptr, int64_t chunk = 0);
  // d(loss_scale · loss)/d(params) of the last forward, added into every Param's grad (or its
  // ExactSum, after use_exact_grads). A stage other than the last starts from `output_grad`, the
  // gradient of its stage_output() (from the next stage); a stage other than the first ends with
  // input_grad(), the gradient of its stage input, for the previous stage.
  // With chunks, `chunk` must be the last forward's.
  void backward(const float* output_grad = nullptr, int64_t chunk = 0);
  const std::vector<float>& stage_output() const { return stage_output_; }
  // Rows of a stage boundary's tensor (stage input, stage output, their gradients) on this rank
  // for `batch` sequences of `seq` tokens (0: seq_len): batch·seq, or with sequence parallelism
  // the rank's share of them (tensor_parallel.h).
  int64_t boundary_rows(int64_t batch, int64_t seq = 0) const;
  const std::vector<float>& input_grad() const { return dres_; }
  const PipelineStage& pipeline_stage() const { return pp_; }
  void zero_grad();
  // Deterministic arithmetic (grad_sink.h): every Param's gradient is summed in its ExactSum;
  // round_exact_grads() then writes the (reduced) sums into the grads.
  void use_exact_grads();
  void round_exact_grads();

  // Logits [batch·seq × vocab] of the last forward (with tensor parallelism the columns of the
  // rank's vocabulary shard only).
  const std::vector<float>& logits() const { return logits_; }

  // Every parameter, in a stable order: embed_tokens; per layer input_layernorm, q/k/v/o_proj,
  // post_attention_layernorm, then mlp.{gate,up,down}_proj or the MoE block's params (router,
  // experts, shared expert, as MoeLayer::params() lists them); model.norm; lm_head (untied only).
  std::vector<Param*> named_params();
  int64_t num_params();
  const TensorParallel& tensor_parallel() const { return tp_; }
  // The MoE blocks in layer order (balancing bias updates, expert_load records).
  std::vector<MoeLayer*> moe_layers();
  // Decoder layer index (in the whole model) of each entry of moe_layers().
  std::vector<int64_t> moe_layer_indices() const;

  const JobSpec& spec() const { return spec_; }

 private:
  struct Layer;
  JobSpec spec_;
  int64_t d_model_, vocab_, head_dim_;
  Param embed_tokens_, norm_, lm_head_;
  std::vector<std::unique_ptr<Layer>> layers_;

  // Activations of the last forward.
  int64_t batch_ = 0, seq_ = 0;
  double loss_scale_ = 1.0;
  int64_t mean_tokens_ = 0;  // tokens the LM loss is a mean over (this batch × data slices)
  const int32_t* targets_ = nullptr;
  std::vector<int32_t> tokens_, target_copy_;
  std::vector<float> final_norm_, final_rstd_, logits_, probs_;
  // Gradient scratch.
  std::vector<float> dres_, dh_, dnormed_;

  // Tensor parallelism: the MoE blocks see this rank's share of the batch (moe_share), whose rows
  // moe_forward/moe_backward pass through the block and sum over the tp group.
  TensorParallel tp_;
  // Pipeline parallelism: layers_[i] is decoder layer layer_index_[i]; chunk c is layers_
  // [chunk_begin_[c], chunk_begin_[c + 1]).
  PipelineStage pp_;
  std::vector<int64_t> layer_index_;
  std::vector<size_t> chunk_begin_;
  int64_t last_chunk_ = 0;  // the last forward's
  std::vector<int64_t> jitter_draws_before_, jitter_draws_after_;  // per chunk: MoE layers before/after it
  bool holds_embedding_ = true;
  std::vector<float> stage_output_;
  struct TokenShare {
    int64_t first = 0, rows = 0;  // first row, row count
  };
  TokenShare share_of(int64_t batch, int64_t seq, int64_t rank) const;
  TokenShare moe_share() const;
  TokenShare residual_rows() const;  // all rows, or with sequence parallelism moe_share()
  // Sequence parallelism: the tp ranks' shares (elements, rank order) all-gathered into the whole
  // batch, and a block's whole-batch partial output summed and scattered back to the shares.
  std::vector<int64_t> share_counts() const;
  void gather_rows(const std::vector<float>& mine, std::vector<float>& all);
  void scatter_rows(const std::vector<float>& all, std::vector<float>& mine);
  std::vector<float> sp_partial_, sp_dy_, head_input_;  // head_input_: the gathered final norm (SP)
  // Tensor parallelism: the vocabulary ids of this rank's embedding and head rows (all without tp).
  VocabRange vocab_shard_;
  int64_t vocab_local() const { return vocab_shard_.count < 0 ? vocab_ : vocab_shard_.count; }
  void moe_forward(Layer& L, const MoeLayerOptions& options, std::mt19937_64& rng);
  void moe_backward(Layer& L);
  std::vector<float> moe_share_out_;
};

}  // namespace moe::rt
