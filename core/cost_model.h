#pragma once
// The cost model: for a job spec and a hardware profile, parameters, memory per GPU, FLOPs,
// all-to-all bytes and a step-time estimate. One plain struct comes out; the CLI prints it, the
// studio draws it (stacked memory bar, step-time breakdown, intra/inter bytes), and the runtime
// compares its measured all-to-all bytes with `a2a_bytes_for_copies`. Every formula and assumption
// is written out in docs/cost-model.md. All counts are double: a 1T-parameter model's FLOPs per
// step (~10^20) overflow no double, and sums stay exact up to 2^53.
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hardware_profile.h"
#include "job_spec.h"
#include "spec_validation.h"

namespace moe {

struct ParamBreakdown {
  // Whole model, every replica counted once.
  double embedding = 0;       // input embedding V·d
  double head = 0;            // output head V·d (0 when tied to the embedding)
  double attention = 0;       // all layers' attention projections (GQA or MLA, incl. MLA's norms)
  double norms = 0;           // RMSNorm weights (2 per layer + final)
  double dense_ffn = 0;       // the first_dense_layers' SwiGLU FFNs
  double router = 0;          // router weights (d·E per MoE layer)
  double shared_experts = 0;  // always-active shared experts
  double routed_experts = 0;  // all routed experts of all MoE layers
  double total = 0;
  double total_no_embeddings = 0;   // total − embedding − head
  double active = 0;                // per token: routed experts count top_k/E; embedding and head included
  double active_no_embeddings = 0;  // active − embedding − head
  double active_with_head = 0;      // active − embedding (DeepSeek's convention)
  double expert = 0;                // one routed expert (3·d·d_expert)
  // Per GPU on the fullest pipeline stage, after TP/EP/PP sharding.
  double dense_per_gpu = 0;   // replicated over dp·ep
  double expert_per_gpu = 0;  // replicated over dp only
  double per_gpu = 0;
};

struct MemoryBreakdown {  // bytes per GPU on the fullest pipeline stage
  double weights = 0;
  double gradients = 0;
  double optimizer = 0;         // Adam m and v (+ fp32 master weights with bf16)
  double activations = 0;       // stored for backward: one micro-batch × micro-batches in flight
  double activations_per_micro_batch = 0;
  // 1F1B keeps min(pp, grad_accum) on the first stage; interleaved (vpp > 1) pp + (pp − 1)/vpp.
  double micro_batches_in_flight = 1;
  double logits = 0;            // fp32 logits of a micro-batch on the last stage (cross-entropy)
  double a2a_buffers = 0;       // counted in the peak: capacity buffers, or dropless expected
  double a2a_capacity_buffers = 0;   // send+receive buffers of capacity mode (0 when dropless)
  double a2a_dropless_expected = 0;  // send+receive with uniform routing, dropless
  double a2a_dropless_bound = 0;     // send+receive worst case, dropless (all tokens to one rank)
  double peak = 0;
  double device = 0;            // the hardware's memory
  double fraction = 0;          // peak / device
  int64_t stage = 0;            // the pipeline stage the figures describe
};

struct FlopBreakdown {  // model FLOPs (no recomputation), forward + backward = 3 × forward
  double per_token_forward = 0;
  double dense_matmul = 0;   // attention projections, dense FFN, router, shared experts (per step)
  double expert_matmul = 0;  // routed experts (per step)
  double attention = 0;      // QKᵀ and AV scores (per step, causal)
  double head = 0;           // output projection (per step)
  double per_step = 0;
  double per_gpu = 0;        // per_step / world size
};

struct A2aBreakdown {
  // Convention (docs/cost-model.md): per MoE layer, per rank, one message per (token, expert) pair
  // whose expert lives on another EP rank, each d_model × dtype-size bytes; no deduplication of a
  // token's copies in the flat all-to-all. Tokens per rank T = micro_batch·seq_len/tp.
  double tokens_per_rank = 0;          // T, per micro-batch
  double capacity_per_expert = 0;      // ⌈cf·T·k/E⌉ (0 when dropless)
  double bytes_per_copy = 0;           // d_model × sizeof(dtype)
  double copies_sent = 0;              // per micro-batch, off-rank copies (expected, kept ones only)
  // Expected share of the T·k copies that are kept: 1 dropless; with a capacity, E[min(load, C)] /
  // E[load] under uniform routing over the pooled dp·ep batch; expert choice C / (T·k/E).
  double kept_share = 1;
  // Bytes one rank sends, per MoE layer per micro-batch.
  double dispatch_fwd = 0, combine_fwd = 0, dispatch_bwd = 0, combine_bwd = 0;
  double per_layer_micro_batch = 0;    // the sum of the four
  double per_layer_step = 0;           // × grad_accum
  double per_step = 0;                 // × MoE layers of the stage
  // Split of per_layer_step over the links, for the rank with the most inter-node traffic.
  double flat_intra = 0, flat_inter = 0;
  double hier_intra = 0, hier_inter = 0;   // two stages, one copy per token per remote node
  double hier_inter_ratio = 1;             // flat_inter / hier_inter (1 when nothing crosses nodes)
  int64_t ep_ranks_per_node = 1;           // EP members sharing the worst rank's node
  int64_t ep_nodes = 1;                    // nodes an EP group spans
  bool hierarchical = false;               // the spec's choice, used for the time
};

struct TimeBreakdown {  // seconds per optimizer step on one GPU of the fullest stage
  double compute = 0;
  double a2a = 0;          // all four all-to-alls of every MoE layer of the stage
  double a2a_exposed = 0;  // not hidden by overlap_chunks or parallel.batch_overlap
  // parallel.batch_overlap: the share of micro-batches (chunks) that have a partner to overlap
  // with, and the all-to-all seconds hidden behind the partner's computation. `compute` then
  // includes the slowdown of computing beside the all-to-all kernels.
  double overlap_paired = 0;
  double a2a_batch_hidden = 0;
  double tp = 0;           // TP collectives (ring)
  // The TP collectives' payload one rank hands over per step, b·s·d·B each (the whole micro-batch's
  // activations: an all-reduce's tensor, an all-gather's output, a reduce-scatter's input), × grad_accum:
  // 4 all-reduces per layer, or with sequence parallelism 4 gathers/scatters per attention and
  // dense MLP. Before the ring's 2·(tp−1)/tp (all-reduce) or (tp−1)/tp (gather, scatter); what
  // moe-runtime reports as the step record's tp_bytes.
  double tp_bytes = 0;
  // With parallel.etp > 1 the expert rows' all-gathers and reduce-scatters over the etp group (etp
  // consecutive tp ranks) per step (4 per MoE layer and micro-batch, each the gathered tensor), in
  // expectation (k copies per token): what moe-runtime reports as the step record's etp_bytes. Its
  // time is in `tp`.
  double etp_bytes = 0;
  // The gradients summed over tp once a step, payload per rank: the routers (and with etp 1 the
  // experts) and with sequence parallelism the norms, which each tp rank computed from its share
  // of the tokens: grad_bytes.tp. (Shared experts are split over tp, as Megatron and moe-runtime do.)
  double tp_grad_bytes = 0;
  // With 1 < etp < tp the expert slices' gradients summed over the tp/etp ranks that hold the same
  // slice, payload per rank and step: grad_bytes.etp_copies. Its time is in `dp`.
  double etp_copy_bytes = 0;
  double dp = 0;           // gradient all-reduce over the DP groups (ring), not overlapped
  // Their payload per rank and step, before the ring's 2·(n−1)/n: the dense gradients over the
  // dp·ep replicas, the expert gradients over the dp replicas (0 where the group has one rank):
  // what moe-runtime reports as the step record's grad_bytes.dense_dp / .expert_dp.
  double dense_dp_bytes = 0, expert_dp_bytes = 0;
  // Spare slots (placement.slots_per_rank): the replicated experts' gradients summed over the EP
  // group, one replica each assumed (min(spare slots, E) experts): grad_bytes.replicas.
  double replica_bytes = 0;
  double pp_p2p = 0;       // activations between stages
  double pp_p2p_exposed = 0;  // of pp_p2p, what the step waits for (interleaved: beyond the computation)
  // The payload a middle stage's rank sends per step: each micro-batch's activations forward and
  // their gradients back, b·s·d·B each, split over the tp ranks (each sends its 1/tp; the receiver
  // all-gathers). The first and last stages send one of the two: moe-runtime's pp_bytes per stage.
  double pp_bytes = 0;
  // The pipeline's idle time on the compute stage: the step's makespan, every stage's (interleaved)
  // 1F1B played out with its own chunks' times and recomputed forwards (core/pipeline_timing.h),
  // less that stage's work; with equal stages (pp − 1)/(vpp·grad_accum) of the pipelined part.
  double bubble = 0;
  // The mean over the stages of their idle share of the played-out step: what moe-runtime's
  // pp_idle_ms / (pp_idle_ms + pp_busy_ms) averages to; with equal stages (pp − 1)/(vpp·m + pp − 1).
  double pp_idle_share = 0;
  // Of `compute`, the forwards recomputed under train.recompute (their all-to-alls and tp
  // collectives are in `a2a` and `tp`).
  double recompute = 0;
  // Every stage's computation per step (forwards, backwards and recomputed forwards), first stage
  // first; `compute` is the largest.
  std::vector<double> stage_compute;
  double step = 0;
  double tokens_per_s = 0;
  double mfu = 0;          // model FLOPs / (step · world · peak)
  double comm_ratio = 0;   // (a2a + tp + dp + pp_p2p) / compute; the seed wants < 0.30
  double a2a_ratio = 0;    // a2a / compute
  bool comm_ok = true;     // comm_ratio < 0.30
};

struct Plan {
  std::string hardware;
  std::string dtype;
  int64_t world_size = 1;
  int64_t nodes = 1;
  double tokens_per_step = 0;  // global batch × seq_len
  ParamBreakdown params;
  MemoryBreakdown memory;
  FlopBreakdown flops;
  A2aBreakdown a2a;
  TimeBreakdown time;
};

constexpr double kCommRatioTarget = 0.30;
constexpr double kMemoryWarnFraction = 0.90;

// Bytes of activations or gradients per token copy: d_model × sizeof(runtime.dtype).
double a2a_bytes_per_copy(const JobSpec& spec);
// What the runtime's dispatcher should report for `copies` token copies sent off-rank.
double a2a_bytes_for_copies(const JobSpec& spec, double copies);

// The exact all-to-all bytes of one MoE layer and micro-batch for the routing that actually
// happened in one EP group — what the runtime's dispatcher measures (docs/cost-model.md §4).
// Members are in EP-group order; expert placement is uniform (member p holds experts
// [p·E/P, (p+1)·E/P)). Only kept copies travel (capacity mode sends no padding).
struct A2aRouting {
  int64_t members = 1;                // P
  std::vector<int64_t> node_of;       // [P] node of each member (rank / gpus_per_node)
  std::vector<int64_t> copies;        // [P × P] kept (token, expert) copies member s sends member q
  std::vector<int64_t> node_tokens;   // [P × N] distinct tokens of member s with a kept copy on the
                                      // n-th node of the group (nodes in order of first member)
};
// Builds it from every member's kept (token, expert) pairs (tokens are member-local indices).
A2aRouting a2a_routing_from_copies(int64_t num_experts, const std::vector<int64_t>& node_of,
                                   const std::vector<std::vector<std::pair<int64_t, int64_t>>>& kept);
struct A2aPhaseBytes {  // bytes one member sends in one exchange (rows only; routing metadata excluded)
  double sent = 0, intra = 0, inter = 0;
};
// Per phase, in the runtime's order: dispatch fwd, combine fwd, combine bwd, dispatch bwd.
// Flat: one row per (token, expert) copy to another member. Hierarchical (node-major groups with
// the same member count per node): one row per (token, remote node) across nodes to the member
// with the sender's local index, then one row per copy from there to the expert's member.
std::array<A2aPhaseBytes, 4> a2a_bytes_for_routing(const JobSpec& spec, const A2aRouting& routing, int64_t member);

// The plan; assumes a spec without validation errors (sizes positive, divisibility holds).
Plan plan_job(const JobSpec& spec, const HardwareProfile& hw);

// The memory rule of validate_spec (spec_validation.h), for a spec without errors: a peak over the
// device's memory is an error at `parallel` ("peak memory per GPU … exceeds …"), over 90 % a warning.
void add_memory_rule(const JobSpec& spec, const HardwareProfile& hw, std::vector<Diagnostic>& out);

nlohmann::json plan_to_json(const Plan& plan);

// The bubble share a pipelined moe-runtime run should show (time.pp_idle_share): the plan of its
// recorded spec (run_start's) with the recomputation moe-runtime runs (train.recompute stage when
// pp > 1; older runs did not record it) on the spec's hardware profile. nullopt when the spec does
// not parse or plan, or has one stage.
std::optional<double> planned_idle_share(const std::string& recorded_spec_json);

}  // namespace moe
