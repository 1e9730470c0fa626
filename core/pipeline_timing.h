#pragma once
// How long a pipeline's step takes when its stages are not equal (issue 15): the schedules of
// pipeline_schedule.h played out with each (virtual) stage's own forward and backward times and
// the recomputed forwards train.recompute adds. The cost model prices the bubble with it, and the
// studio compares it with the runtime's recorded timeline; with equal stages and no recomputation
// it gives the formula (pp − 1)/(v·m + pp − 1) exactly.
#include <cstdint>
#include <vector>

#include "pipeline_schedule.h"
#include "spec_choices.h"

namespace moe {

// Which of a stage's ops (its schedule, in order) are backwards that first recompute their
// forward: none: none; full: every backward; stage: a backward whose forward is not the op right
// before it (other forwards or a backward ran since, so its activations are gone: moe-runtime's rule).
std::vector<bool> recomputed_backwards(const std::vector<PipelineOp>& ops, Recompute mode);

struct PipelineTiming {
  bool complete = false;            // false: the order deadlocks (interleaved, m not a multiple of pp)
  double makespan = 0;              // from the first op's start to the last op's end
  std::vector<double> busy;         // per stage: its forwards, recomputed forwards and backwards
  std::vector<int64_t> recomputes;  // per stage
  // Mean over the stages of (makespan − busy) / makespan: what moe-runtime's pp_idle_ms shares
  // average to when transfers are free.
  double idle_share() const;
};

// Plays out the (interleaved) 1F1B orders of `stages` stages with `chunks` chunks each over
// `micro_batches` micro-batches. forward[j] and backward[j] are virtual stage j's times for one
// micro-batch (chunk c of stage s is virtual stage c·stages + s); a recomputed forward costs
// forward[j] again. A stage runs its ops in order; a forward starts once virtual stage j − 1's
// forward of its micro-batch has ended, a backward once j + 1's backward has, and a recomputed
// forward (which needs no input) right after the stage's previous op, as moe-runtime runs it
// while the gradient is on its way. Transfers are free.
PipelineTiming time_pipeline(int64_t stages, int64_t chunks, int64_t micro_batches, const std::vector<double>& forward,
                             const std::vector<double>& backward, Recompute mode);

}  // namespace moe
