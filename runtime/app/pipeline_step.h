#pragma once
// One optimizer step's micro-batches through this rank's pipeline stage (parallel.pp > 1), in the
// 1F1B order of core/pipeline_schedule.h, or with chunks (parallel.vpp > 1) its interleaved order:
// activations go forward to the next (virtual) stage, gradients back to the previous one
// (EpRuntime's transfers: the receive of the next op's input is posted before this op computes, so
// its data moves meanwhile, and outputs are sent asynchronously: a stage waits only for data it
// needs that has not arrived).
//
// A stage that has run other forwards since (micro-batch m, chunk c)'s recomputes that forward from
// its saved stage input and jitter stream before its backward (train.recompute stage: a stage
// keeps one forward's activations plus the inputs of those in flight), while the backward's
// gradient may still be on its way. The recomputed forward gives the same values, so training
// equals one process's; its exchanges are real and are counted.
#include <cstdint>
#include <random>
#include <vector>

#include "ep_runtime.h"
#include "model.h"

namespace moe::rt {

struct MicroBatch {
  std::vector<int32_t> tokens, targets;  // [batch × seq]
};

struct PipelineStepResult {
  // Means over the micro-batches: the LM loss on the last stage (0 elsewhere), this stage's MoE
  // layers' aux and z losses.
  double lm = 0, aux = 0, z = 0;
  // This stage's MoE layers, summed over the micro-batches (first forwards only).
  std::vector<std::vector<int64_t>> counts, dropped, cosel;
  bool finite = true;      // every forward's loss was finite (the step still ran to the end)
  double busy_ms = 0;      // forward, recompute and backward
  double wall_ms = 0;      // the whole schedule, transfers and waits included
  // Every compute op of the schedule, 4 numbers each: kind (0 forward, 1 recompute, 2 backward),
  // micro-batch, start and end in ms since the schedule began (this process's steady clock); with
  // chunks (interleaved schedule) a 5th, the chunk.
  std::vector<double> timeline;
};

PipelineStepResult run_pipeline_step(MixtralModel& model, ep::EpRuntime& pipe, const std::vector<MicroBatch>& micro,
                                     int64_t batch, const MoeLayerOptions& options, std::mt19937_64& rng,
                                     int64_t experts);

}  // namespace moe::rt
