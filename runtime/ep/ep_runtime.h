#pragma once
// One rank of an expert-parallel (× data-parallel) training job (issue 4), as the trainer sees it:
//   - joins the job (rendezvous through rank 0's store, Gloo world) and builds core's groups;
//   - builds the model's MoE blocks with only this rank's experts, an all-to-all dispatcher over
//     the EP group and routing decisions taken over all dp × ep ranks (global_routing.h);
//   - reduces gradients (dense over dense_dp, experts over expert_dp), clips by the global norm
//     (each parameter counted once), sums losses and counts over ranks, gathers the a2a figures
//     and, for checkpoints, the experts of the other EP ranks to rank 0.
// Data: the one-process run with micro_batch b·dp·ep draws the same windows; rank r (its position
// in dense_dp, = ep + EP·dp) trains on sequences [r·b, (r+1)·b) of each window, so the global batch
// micro_batch·dp·ep·grad_accum is exactly the tokens one process sees (docs/expert-parallel.md).
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "all_to_all_dispatcher.h"
#include "checkpoint.h"
#include "comm_groups.h"
#include "expert_replicas.h"
#include "placed_dispatcher.h"
#include "job_spec.h"
#include "metrics_records.h"
#include "model.h"
#include "optimizer.h"
#include "rendezvous.h"

namespace moe::rt::ep {

class EpRuntime {
 public:
  // Collective over the world: every rank calls it with the same spec. Refuses what the
  // multi-process CPU runtime does not do (world ≠ dp·tp·pp·ep). With tp > 1 attention
  // and the dense MLPs are split over the tp group (tensor_parallel.h); the MoE blocks, router
  // and experts, are replicated over it, and each tp rank's EP group routes its share of the
  // batch (whole sequences), whose gradients are then summed over tp. With pp > 1 this rank holds
  // its stage's layers (model.h PipelineStage); every group above lies inside one stage, and the
  // trainer moves activations and gradients between the stages (pipeline_step.h).
  EpRuntime(const JobSpec& spec, const comm::RankEnv& env);
  ~EpRuntime();

  int rank() const { return static_cast<int>(env_.rank); }
  int world_size() const { return env_.world_size; }
  bool is_rank0() const { return env_.rank == 0; }
  int64_t data_slice() const { return groups_.dense_dp->rank(); }   // this rank's share of a window
  int64_t data_slices() const { return groups_.dense_dp->size(); }  // dp × ep

  // The expert placement in force, one entry per MoE layer of the model (every stage's).
  const Placement& placement() const { return placement_all_; }

  // Dynamic re-placement (placement.replace_every): adds the step's expert counts (summed over the
  // data ranks; every MoE layer of the model, every stage's with pp) to the window and, when a
  // re-placement is due, plans the placement from the window's loads and the latest co-selection
  // (`cosel`: [MoE layer][E×E], empty when not sampled), moves this stage's experts and their AdamW
  // moments, and returns the new placement's records (with what the move cost: every stage's bytes,
  // the slowest rank's time) on rank 0. Collective over the world; the decision is the same on
  // every rank. `layer_index`: the model's MoE layers.
  std::vector<metrics::PlacementRecord> replace_if_due(int64_t step, const std::vector<std::vector<int64_t>>& counts,
                                                       const std::vector<std::vector<int64_t>>& cosel,
                                                       MixtralModel& model, AdamW* optimizer,
                                                       const std::vector<int64_t>& layer_index);

  // Model options whose make_moe_layer builds this rank's MoE blocks (keeps the dispatchers).
  ModelOptions model_options();

  // Sums gradients over their replica groups and scales by 1/(dp·ep): afterwards every rank holds
  // the gradient of the global-batch mean loss for its parameters.
  void reduce_gradients(const std::vector<Param*>& params);
  // The payload this rank handed to each gradient sum since the last call (the step record's
  // grad_bytes; float gradients with the fast arithmetic, the exact sums' integer limbs with the
  // deterministic one). Local.
  struct GradientBytes {
    int64_t dense_dp = 0;        // non-expert gradients over dense_dp (dp × ep)
    int64_t expert_dp = 0;       // expert gradients over expert_dp (dp)
    int64_t tp = 0;              // the MoE blocks' gradients over tp (each tp rank routed a share)
    int64_t tied_embedding = 0;  // the tied embedding over the first and last stage
    int64_t replicas = 0;        // replicated experts' gradients over the EP group (spare slots)
    int64_t etp_copies = 0;      // 1 < etp < tp: expert slices over the tp ranks holding the same slice
  };
  GradientBytes take_grad_bytes() { return std::exchange(grad_bytes_, GradientBytes{}); }
  // Global L2 norm of all gradients (dense once, every expert once) and torch-style clipping.
  double clip_grad_norm(const std::vector<Param*>& params, double max_norm);
  // Sums over all dp × ep ranks (the LM loss: tp ranks hold the same value).
  void sum_over_data(double* values, size_t n);
  void sum_over_data(int64_t* values, size_t n);
  // Sums over every share of the MoE blocks' tokens: dp × ep ranks, × tp (each tp rank routes its
  // share). Router losses, expert counts, co-selection.
  void sum_over_moe_shares(double* values, size_t n);
  void sum_over_moe_shares(int64_t* values, size_t n);
  int64_t moe_shares() const { return moe_group().size(); }
  // The payload this rank handed to the tensor-parallel activation all-reduces since the last
  // call (the step record's tp_bytes; the cost model's TimeBreakdown::tp_bytes). Local.
  int64_t take_tp_bytes() { return std::exchange(tp_bytes_, 0); }
  // With parallel.etp > 1, the same for the expert rows' all-gathers and reduce-scatters (the step
  // record's etp_bytes; the cost model's TimeBreakdown::etp_bytes in expectation). Local.
  int64_t take_etp_bytes() { return std::exchange(etp_bytes_, 0); }
  // The parameters of the whole model, as one process holds them (run_start.params): tp slices
  // counted whole, every logical expert once, every stage's layers, the tied embedding once. A
  // collective over the pipeline group.
  int64_t logical_params(MixtralModel& model);
  // True on every rank when `flag` is true on any rank (stop decisions must agree).
  bool any(bool flag);

  // Pipeline parallelism. With pp = 1 there is one stage, the sums are no-ops and the transfers
  // must not be called.
  int64_t pipeline_stage() const { return stage_; }
  int64_t pipeline_stages() const { return spec_.parallel.pp; }
  // Activations go to the next stage, gradients to the previous one (the rank with the same tp, ep
  // and dp there; the stages form a ring, for the interleaved schedule's next chunk on the first
  // stage; with tp > 1 each tp rank sends its 1/tp and the receivers all-gather). Messages are
  // numbered per direction, so every one has its own tag. Sends are asynchronous (a copy of the
  // data is kept until finish_sends), so a stage never waits for its neighbour to post the receive.
  // Receives may be posted ahead (the next op's input, while this op computes) and waited for when
  // needed; each direction's receives must be posted in the order their data is used.
  void send_activations(const std::vector<float>& x);
  void send_gradient(const std::vector<float>& g);
  void finish_sends();  // waits until every send has been received
  struct PipeRecv {
    std::vector<float>* into = nullptr;  // sized by the caller; must stay put until wait_recv
    comm::Communicator::Pending op;
  };
  PipeRecv post_recv_activations(std::vector<float>& x);
  PipeRecv post_recv_gradient(std::vector<float>& g);
  void wait_recv(PipeRecv& r);  // then x holds the whole tensor (tp parts gathered)
  void recv_activations(std::vector<float>& x);  // post and wait
  void recv_gradient(std::vector<float>& g);
  // Bytes this rank sent to other stages since the last call (the step record's pp_bytes). Local.
  int64_t take_pp_bytes() { return std::exchange(pp_bytes_, 0); }
  // Sums over this rank's pipeline group (one rank per stage): a stage's figure added to the others'.
  void sum_over_pipeline(double* values, size_t n);
  void sum_over_pipeline(int64_t* values, size_t n);
  // Every stage's `value`, in stage order (one entry with pp = 1).
  std::vector<double> gather_over_pipeline(double value);
  std::vector<std::vector<double>> gather_over_pipeline(const std::vector<double>& values);

  // The step's `a2a` records (one per MoE layer × phase × pass), every rank's figures gathered;
  // collective over the world, the records are non-empty on rank 0 only.
  // `slot_rows` (a sampled step, placement.stats_every; the same on every rank): the dispatch/fwd
  // records also carry rank_slot_rows, the rows each rank sent to each slot.
  std::vector<metrics::A2aRecord> a2a_records(int64_t step, const std::vector<int64_t>& layer_index,
                                              bool slot_rows = false);
  // Drops the exchange figures gathered since the last a2a_records (validation's forward passes),
  // so a step's records hold that step's exchanges only. Local, not a collective.
  void discard_a2a_totals();

  // Checkpoints: rank 0 gathers the experts (values and AdamW moments) of the other ranks of its
  // EP group, and the tensor-parallel slices of its tp group assembled into logical tensors, and
  // writes one complete, one-process-loadable checkpoint. With pp > 1 the first rank of every other
  // stage assembles its stage the same way and sends it to rank 0 (with its layers' balancing
  // biases, in trainer_state). Collective over rank 0's EP, tp and pipeline groups and every
  // stage's; the returned data (tensors owned by *this) is non-empty on rank 0 only.
  const CheckpointData& gather_remote_experts(MixtralModel& model, AdamW* optimizer);
  // The part of a loaded checkpoint that this rank's model holds (for --resume).
  LoadedCheckpoint local_part(const LoadedCheckpoint& ck, MixtralModel& model) const;

 private:
  JobSpec spec_;
  comm::RankEnv env_;
  std::unique_ptr<comm::ProcessGroup> pg_;
  comm::CommGroups groups_;
  RankLayout layout_;
  PlacementInput placement_input_;           // sizes and the EP members' nodes
  bool uniform_ = true;                      // the placement is uniform without replicas
  std::unique_ptr<ExpertReplicas> replicas_;  // this stage's layers of the placement in force, this rank's slots
  Placement placement_all_;                   // the placement in force, every stage's layers
  std::vector<PlacedDispatcher<float>*> placed_;  // owned by the model's layers (a non-uniform placement)
  std::vector<std::vector<double>> window_load_, last_cosel_;  // re-placement's inputs
  std::vector<comm::AllToAllDispatcher<float>*> dispatchers_;  // owned by the model's layers
  std::vector<std::vector<float>> gathered_;
  std::vector<std::vector<float>> tp_full_;  // logical tensors assembled from the tp slices
  std::vector<float> expert_full_;           // with etp: the local experts' logical tensors (part-major)
  using PartOf = std::function<const std::vector<float>&(const Param*, int part)>;  // value, exp_avg, exp_avg_sq
  static PartOf parts_of(AdamW* optimizer);  // (a checkpoint gather's view of the params and moments)
  // With etp: this tp group's expert slices assembled at its rank 0 (collective over the tp groups
  // of the stage's dp 0 ranks); returns the (part, expert) tensors in order, or null elsewhere.
  const float* assemble_expert_slices(const std::vector<Param*>& experts, const PartOf& part_of, int parts);
  int64_t tp_bytes_ = 0;                      // take_tp_bytes
  int64_t etp_bytes_ = 0;                     // take_etp_bytes
  // The MoE layers' hooks over a tp group (split experts over the etp group, split shared experts
  // over the tp group), counting their payload into `bytes` (etp_bytes_, tp_bytes_).
  ExpertTensorParallel tp_hook(comm::Communicator& group, int64_t& bytes);
  // With 1 < etp < tp: this rank's etp group (etp consecutive tp ranks) and the tp ranks holding
  // the same expert slice (one per etp group); null otherwise. etp_group() is the tp group then.
  std::unique_ptr<comm::Communicator> etp_group_, etp_copies_;
  comm::Communicator& etp_group() const;
  GradientBytes grad_bytes_;                  // take_grad_bytes
  int64_t stage_ = 0;                         // this rank's pipeline stage
  std::vector<std::vector<int64_t>> stage_moe_;  // per stage: the MoE layers it holds (ordinals, ascending)
  int64_t max_stage_moe_layers_ = 0;          // the most MoE layers any stage holds
  Placement stage_part(const Placement& all) const;  // this stage's layers of `all`
  std::unique_ptr<comm::Communicator> tied_embedding_;  // first and last stage (tied embeddings, pp > 1)
  int64_t pp_bytes_ = 0;                      // take_pp_bytes
  uint32_t sent_[2] = {0, 0}, received_[2] = {0, 0};  // pipeline messages: [activations, gradients]
  uint32_t pipe_tag(int kind, uint32_t& counter);
  // With tp > 1 each tp rank sends only its 1/tp of a transfer between stages and the receiving tp
  // group all-gathers the parts (Megatron's scatter-gather): tp× fewer bytes between the stages.
  struct Part {
    size_t first = 0, count = 0;  // elements
  };
  Part tp_part(size_t n) const;  // the whole tensor when tp = 1 or tp does not divide n
  void gather_tp_parts(std::vector<float>& x) const;
  // The pipeline transfers, to or from the stage at offset +1 (next) or −1 (previous) on the ring:
  // activations go forward, gradients back, each direction's messages numbered for their tags.
  int neighbour(int offset) const;
  void send(const std::vector<float>& x, int to);
  PipeRecv post_recv(std::vector<float>& x, int from);
  struct PendingPipeSend {
    std::vector<float> data;  // the copy the send reads
    comm::Communicator::Pending send;
  };
  std::deque<PendingPipeSend> pipe_sends_;  // until finish_sends (a deque: the copies never move)
  // The rank that assembles this stage's checkpoint part (tp = ep = dp = 0 in the stage).
  int64_t stage_leader() const { return stage_ * spec_.parallel.tp * spec_.parallel.ep * spec_.parallel.dp; }
  void gather_pipeline_stages(MixtralModel& model, AdamW* optimizer);
  std::vector<std::vector<float>> stage_tensors_;  // checkpoint tensors received from other stages
  nlohmann::json stage_biases_;                    // their MoE layers' balancing biases
  void gather_tp_slices(MixtralModel& model, AdamW* optimizer);
  comm::Communicator& moe_group() const;  // the ranks sum_over_moe_shares adds over
  CheckpointData remote_;
};

}  // namespace moe::rt::ep
