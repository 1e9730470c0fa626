#pragma once
// A pipeline-parallel step's figures as moe-runtime records them in the step record's extensions
// (docs/parallelism.md §3): per stage the busy and idle milliseconds, the bytes sent to the
// neighbouring stages and the 1F1B schedule's ops with their times. Read back from a store for
// Live's timeline and `moe runs show`.
#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::store {

struct PipelineOpTime {
  enum Kind { forward = 0, recompute = 1, backward = 2 };
  int kind = forward;
  int64_t micro = 0;
  double start_ms = 0, end_ms = 0;  // since the stage's schedule began
  int64_t chunk = 0;                 // the stage's chunk (interleaved schedule; a 5th number)
};

struct PipelineFigures {
  int64_t step = 0;
  std::vector<double> busy_ms, idle_ms;          // per stage
  std::vector<int64_t> bytes;                    // per stage
  std::vector<std::vector<PipelineOpTime>> ops;  // per stage, in schedule order
  // The idle share of the step, averaged over the stages (the measured bubble): the step is the
  // longest stage's schedule (busy + idle), since a stage that ends early waits for it before the
  // gradient sums; what the cost model's pp_idle_share predicts.
  double idle_share() const;
};

// The figures in a step record's extensions; nullopt when they are missing or malformed (a
// stage count that differs between the lists, an op that is not [kind, micro, start, end]).
std::optional<PipelineFigures> pipeline_figures(int64_t step, const nlohmann::json& extra);

}  // namespace moe::store
