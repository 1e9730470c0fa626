// A pipeline step played out with uneven stages (see pipeline_timing.h).
#include "pipeline_timing.h"

#include <algorithm>

namespace moe {

std::vector<bool> recomputed_backwards(const std::vector<PipelineOp>& ops, Recompute mode) {
  std::vector<bool> out(ops.size(), false);
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].forward || mode == Recompute::none) continue;
    const bool resident = i > 0 && ops[i - 1] == PipelineOp{true, ops[i].micro, ops[i].chunk};
    out[i] = mode == Recompute::full || !resident;
  }
  return out;
}

double PipelineTiming::idle_share() const {
  if (busy.empty() || makespan <= 0) return 0;
  double sum = 0;
  for (double b : busy) sum += (makespan - b) / makespan;
  return sum / static_cast<double>(busy.size());
}

PipelineTiming time_pipeline(int64_t stages, int64_t chunks, int64_t micro_batches, const std::vector<double>& forward,
                             const std::vector<double>& backward, Recompute mode) {
  stages = std::max<int64_t>(stages, 1), chunks = std::max<int64_t>(chunks, 1);
  const int64_t virtual_stages = stages * chunks, m = std::max<int64_t>(micro_batches, 0);
  PipelineTiming out;
  out.busy.assign(static_cast<size_t>(stages), 0.0);
  out.recomputes.assign(static_cast<size_t>(stages), 0);
  std::vector<std::vector<PipelineOp>> ops;
  std::vector<std::vector<bool>> recomputed;
  for (int64_t s = 0; s < stages; ++s) {
    ops.push_back(interleaved_one_f_one_b(stages, s, m, chunks));
    recomputed.push_back(recomputed_backwards(ops.back(), mode));
  }
  // When each (virtual stage, micro-batch)'s forward and backward ended; −1: not yet.
  std::vector<double> forward_end(static_cast<size_t>(virtual_stages * m), -1), backward_end = forward_end;
  auto at = [&](int64_t j, int64_t micro) { return static_cast<size_t>(j * m + micro); };
  std::vector<size_t> next(static_cast<size_t>(stages), 0);
  std::vector<double> clock(static_cast<size_t>(stages), 0.0);
  std::vector<bool> recomputing(static_cast<size_t>(stages), false);  // the next op's recompute ran
  size_t left = 0;
  for (const auto& o : ops) left += o.size();
  for (bool progress = true; progress && left > 0;) {
    progress = false;
    for (int64_t s = 0; s < stages; ++s) {
      const size_t si = static_cast<size_t>(s);
      for (; next[si] < ops[si].size(); ++next[si], --left, progress = true) {
        const PipelineOp& op = ops[si][next[si]];
        const int64_t j = op.chunk * stages + s;
        const size_t jv = static_cast<size_t>(j);
        // A recomputed forward needs no input: it runs as soon as the stage is free, once.
        if (recomputed[si][next[si]] && !recomputing[si]) {
          recomputing[si] = true;
          clock[si] += forward[jv];
          out.busy[si] += forward[jv];
          ++out.recomputes[si];
        }
        double ready = clock[si];
        if (op.forward && j > 0) {
          const double dep = forward_end[at(j - 1, op.micro)];
          if (dep < 0) break;
          ready = std::max(ready, dep);
        } else if (!op.forward && j + 1 < virtual_stages) {
          const double dep = backward_end[at(j + 1, op.micro)];
          if (dep < 0) break;
          ready = std::max(ready, dep);
        }
        recomputing[si] = false;
        const double took = op.forward ? forward[jv] : backward[jv];
        clock[si] = ready + took;
        out.busy[si] += took;
        (op.forward ? forward_end : backward_end)[at(j, op.micro)] = clock[si];
      }
    }
  }
  out.complete = left == 0;
  out.makespan = *std::max_element(clock.begin(), clock.end());
  return out;
}

}  // namespace moe
