// Pipeline stages and the 1F1B order (see pipeline_schedule.h).
#include "pipeline_schedule.h"

#include <algorithm>

namespace moe {

StageLayers stage_layers(int64_t n_layers, int64_t stages, int64_t stage, const std::vector<int64_t>& split) {
  stages = std::max<int64_t>(stages, 1);
  if (static_cast<int64_t>(split.size()) != stages) return {stage * n_layers / stages, (stage + 1) * n_layers / stages};
  int64_t begin = 0;
  for (int64_t s = 0; s < stage; ++s) begin += split[static_cast<size_t>(s)];
  return {begin, begin + split[static_cast<size_t>(stage)]};
}

std::vector<int64_t> layers_per_stage(int64_t n_layers, int64_t stages, const std::vector<int64_t>& split) {
  std::vector<int64_t> out;
  for (int64_t s = 0; s < stages; ++s) {
    const StageLayers l = stage_layers(n_layers, stages, s, split);
    out.push_back(l.end - l.begin);
  }
  return out;
}

std::vector<StageLayers> stage_chunks(int64_t n_layers, int64_t stages, int64_t chunks, int64_t stage,
                                      const std::vector<int64_t>& split) {
  if (chunks <= 1) return {stage_layers(n_layers, stages, stage, split)};
  std::vector<StageLayers> out;
  for (int64_t c = 0; c < chunks; ++c) out.push_back(stage_layers(n_layers, stages * chunks, c * stages + stage));
  return out;
}

int64_t warmup_forwards(int64_t stages, int64_t stage, int64_t micro_batches) {
  return std::clamp<int64_t>(stages - stage - 1, 0, micro_batches);
}

std::vector<PipelineOp> one_f_one_b(int64_t stages, int64_t stage, int64_t micro_batches) {
  const int64_t warmup = warmup_forwards(stages, stage, micro_batches);
  std::vector<PipelineOp> ops;
  int64_t next_forward = 0, next_backward = 0;
  for (; next_forward < warmup; ++next_forward) ops.push_back({true, next_forward});
  while (next_forward < micro_batches) {  // steady state: one forward, one backward
    ops.push_back({true, next_forward++});
    ops.push_back({false, next_backward++});
  }
  while (next_backward < micro_batches) ops.push_back({false, next_backward++});  // cool-down
  return ops;
}

std::vector<PipelineOp> interleaved_one_f_one_b(int64_t stages, int64_t stage, int64_t micro_batches, int64_t chunks) {
  if (chunks <= 1) return one_f_one_b(stages, stage, micro_batches);
  // The k-th op of each kind, in groups of `stages` micro-batches.
  std::vector<PipelineOp> order;
  for (int64_t first = 0; first < micro_batches; first += stages) {
    const int64_t group = std::min(stages, micro_batches - first);
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t i = 0; i < group; ++i) order.push_back({true, first + i, c});
  }
  const int64_t total = static_cast<int64_t>(order.size());
  auto forward = [&](int64_t k) { return order[static_cast<size_t>(k)]; };
  auto backward = [&](int64_t k) {
    PipelineOp op = order[static_cast<size_t>(k)];
    op.forward = false, op.chunk = chunks - 1 - op.chunk;
    return op;
  };
  const int64_t warmup = std::min(total, 2 * (stages - stage - 1) + (chunks - 1) * stages);
  std::vector<PipelineOp> ops;
  int64_t f = 0, b = 0;
  for (; f < warmup; ++f) ops.push_back(forward(f));
  while (f < total) {  // steady state: one forward, one backward
    ops.push_back(forward(f++));
    ops.push_back(backward(b++));
  }
  while (b < total) ops.push_back(backward(b++));  // cool-down
  return ops;
}

double bubble_fraction(int64_t stages, int64_t micro_batches) {
  if (stages <= 1 || micro_batches <= 0) return 0.0;
  return static_cast<double>(stages - 1) / static_cast<double>(micro_batches + stages - 1);
}

}  // namespace moe
