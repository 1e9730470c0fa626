#pragma once
// One optimizer step's micro-batches through this rank's pipeline stage (parallel.pp > 1), in the
// 1F1B order of core/pipeline_schedule.h: activations go forward to the next stage, gradients back
// to the previous one (EpRuntime's transfers; where a stage sends to a neighbour and next needs
// that neighbour's message, both halves are posted together, as Megatron-Core's 1F1B does).
//
// A stage that has run other forwards since micro-batch m's recomputes m's forward from its saved
// stage input and jitter stream before m's backward (full activation recomputation: a stage keeps
// one micro-batch's activations plus the inputs of those in flight). The recomputed forward gives
// the same values, so training equals one process's; its exchanges are real and are counted.
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
  // micro-batch, start and end in ms since the schedule began (this process's steady clock).
  std::vector<double> timeline;
};

PipelineStepResult run_pipeline_step(MixtralModel& model, ep::EpRuntime& pipe, const std::vector<MicroBatch>& micro,
                                     int64_t batch, const MoeLayerOptions& options, std::mt19937_64& rng,
                                     int64_t experts);

}  // namespace moe::rt
