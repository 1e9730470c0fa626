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
#include <filesystem>
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
  // multi-process CPU runtime does not do (pp > 1, world ≠ dp·tp·pp·ep). With tp > 1 attention
  // and the dense MLPs are split over the tp group (tensor_parallel.h); the MoE blocks, router
  // and experts, are replicated over it, and each tp rank's EP group routes its share of the
  // batch (whole sequences), whose gradients are then summed over tp.
  EpRuntime(const JobSpec& spec, const comm::RankEnv& env);
  ~EpRuntime();

  int rank() const { return static_cast<int>(env_.rank); }
  int world_size() const { return env_.world_size; }
  bool is_rank0() const { return env_.rank == 0; }
  int64_t data_slice() const { return groups_.dense_dp->rank(); }   // this rank's share of a window
  int64_t data_slices() const { return groups_.dense_dp->size(); }  // dp × ep

  // The expert placement in force, one entry per MoE layer.
  const Placement& placement() const { return replicas_->placement(); }

  // Dynamic re-placement (placement.replace_every): adds the step's expert counts (summed over the
  // data ranks) to the window and, when a re-placement is due, plans the placement from the
  // window's loads and the latest co-selection (`cosel`: [MoE layer][E×E], empty when not sampled),
  // moves the experts and their AdamW moments, and returns the new placement's records (with what
  // the move cost) on rank 0. Collective over the world; the decision is the same on every rank.
  std::vector<metrics::PlacementRecord> replace_if_due(int64_t step, const std::vector<std::vector<int64_t>>& counts,
                                                       const std::vector<std::vector<int64_t>>& cosel,
                                                       MixtralModel& model, AdamW* optimizer,
                                                       const std::vector<int64_t>& layer_index);

  // Model options whose make_moe_layer builds this rank's MoE blocks (keeps the dispatchers).
  ModelOptions model_options();

  // Sums gradients over their replica groups and scales by 1/(dp·ep): afterwards every rank holds
  // the gradient of the global-batch mean loss for its parameters.
  void reduce_gradients(const std::vector<Param*>& params);
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
  // True on every rank when `flag` is true on any rank (stop decisions must agree).
  bool any(bool flag);

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
  // writes one complete, one-process-loadable checkpoint. Collective over rank 0's EP and tp
  // groups; the returned data (tensors owned by *this) is non-empty on rank 0 only.
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
  std::unique_ptr<ExpertReplicas> replicas_;  // the placement in force and this rank's slots in it
  std::vector<PlacedDispatcher<float>*> placed_;  // owned by the model's layers (a non-uniform placement)
  std::vector<std::vector<double>> window_load_, last_cosel_;  // re-placement's inputs
  std::vector<comm::AllToAllDispatcher<float>*> dispatchers_;  // owned by the model's layers
  std::vector<std::vector<float>> gathered_;
  std::vector<std::vector<float>> tp_full_;  // logical tensors assembled from the tp slices
  int64_t tp_bytes_ = 0;                      // take_tp_bytes
  void gather_tp_slices(MixtralModel& model, AdamW* optimizer);
  comm::Communicator& moe_group() const;  // the ranks sum_over_moe_shares adds over
  CheckpointData remote_;
};

}  // namespace moe::rt::ep
