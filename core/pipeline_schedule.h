#pragma once
// Pipeline parallelism's plan (issue 15), shared by the runtime and the cost model:
//   - which decoder layers each stage holds (parallel.pp_layers, or the even split: stage s holds
//     [s·L/pp, (s+1)·L/pp));
//   - the order in which a stage runs its micro-batches under 1F1B (PipeDream-Flush, as in
//     Megatron-Core): stage s first runs min(pp − s − 1, m) forward passes (warm-up), then
//     alternates one forward and one backward, then drains the remaining backward passes;
//   - the bubble that schedule leaves with equal stage times: (pp − 1) / (m + pp − 1) of the step;
//   - the interleaved 1F1B of Megatron-Core (Narayanan et al. 2021, §2.2.2; parallel.vpp = v > 1):
//     the layers are split into pp·v virtual stages and stage s holds v chunks, virtual stages
//     s, s + pp, …; activations go round the ring of stages v times.
// The embedding is on the first (virtual) stage, the final norm and the head on the last.
#include <cstdint>
#include <vector>

namespace moe {

struct StageLayers {
  int64_t begin = 0, end = 0;  // decoder layers [begin, end)
};

// Stage `stage` of `stages` over `n_layers` decoder layers: `split`'s counts when it has one per
// stage (parallel.pp_layers; validation checks they sum to n_layers), else the even split. Stages
// ≤ n_layers keep every stage non-empty (the validation refuses more stages than layers).
StageLayers stage_layers(int64_t n_layers, int64_t stages, int64_t stage, const std::vector<int64_t>& split = {});
// Every stage's layer count, first stage first.
std::vector<int64_t> layers_per_stage(int64_t n_layers, int64_t stages, const std::vector<int64_t>& split = {});

// Stage `stage`'s chunks, first chunk first: with `chunks` = 1 its stage_layers; otherwise chunk c
// is virtual stage c·stages + stage of stages·chunks even virtual stages (an explicit split is for
// chunks = 1 only; validation refuses both at once).
std::vector<StageLayers> stage_chunks(int64_t n_layers, int64_t stages, int64_t chunks, int64_t stage,
                                      const std::vector<int64_t>& split = {});

struct PipelineOp {
  bool forward = true;
  int64_t micro = 0;  // micro-batch index, 0-based
  int64_t chunk = 0;  // the stage's chunk (interleaved schedule), 0 otherwise
  bool operator==(const PipelineOp& o) const { return forward == o.forward && micro == o.micro && chunk == o.chunk; }
};

// The 1F1B order of stage `stage` over `micro_batches` micro-batches: every micro-batch's forward
// once and its backward once, forwards and backwards each in micro-batch order.
std::vector<PipelineOp> one_f_one_b(int64_t stages, int64_t stage, int64_t micro_batches);

// Warm-up forwards of `stage` (what it keeps in flight before its first backward, less one).
int64_t warmup_forwards(int64_t stages, int64_t stage, int64_t micro_batches);

// Megatron-Core's interleaved order of stage `stage` with `chunks` chunks: the micro-batches go in
// groups of `stages`; within a group every chunk's forwards in chunk order (backwards in reverse
// chunk order), so the k-th forward is chunk (k / pp) mod v of micro-batch (k / (pp·v))·pp + k mod pp.
// Warm-up: 2·(pp − s − 1) + (v − 1)·pp forwards (Megatron's count), then one forward and one
// backward in turn, then the remaining backwards. Each (micro-batch, chunk) forward and backward
// once; a chunk's forwards (and backwards) in micro-batch order. `chunks` = 1: one_f_one_b.
// micro_batches must be a multiple of stages (Megatron's rule): otherwise the order can deadlock.
std::vector<PipelineOp> interleaved_one_f_one_b(int64_t stages, int64_t stage, int64_t micro_batches, int64_t chunks);

// The idle share of each stage's step under 1F1B with equal stage times: (pp − 1) / (m + pp − 1).
double bubble_fraction(int64_t stages, int64_t micro_batches);

}  // namespace moe
