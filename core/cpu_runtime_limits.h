#pragma once
// What moe-runtime's CPU backend trains, in one place: shared by the runtime, which refuses the
// rest with these one-line messages naming the field, and by the studio's Design, which marks the
// layouts this machine can run (issue 15). The spec's own rules are validate_spec's; these are the
// runtime's limits on top of them.
#include <cstdint>
#include <string>

#include "job_spec.h"

namespace moe {

// The spec keys only the cost model and the exports take (FP8 GEMMs, batch-level all-to-all
// overlap): why moe-runtime, on either backend, refuses `spec` (empty: none set).
std::string unmodelled_in_runtime(const JobSpec& spec);
// Why the CPU backend cannot train the model and layout of `spec` (empty: it can). `multi_process`:
// one process per rank, as `moe-runtime train --nproc-per-node` and `moe run` launch it (else
// parallel.tp/ep/dp > 1 are refused). Does not look at runtime.backend.
std::string cpu_model_refusal(const JobSpec& spec, bool multi_process);
// The model's refusal, then the training job's: micro-batch split over tp, byte vocabulary, what
// deterministic arithmetic cannot keep layout-invariant.
std::string cpu_training_refusal(const JobSpec& spec, bool multi_process);

// The train.recompute moe-runtime runs: a pipeline stage keeps one micro-batch's activations, so
// with pp > 1 `none` runs as `stage` (the runtime writes that into the spec it records, so plans of
// the run price what ran); otherwise the spec's value (`full` is refused by unmodelled_in_runtime).
std::string runtime_recompute(const JobSpec& spec);

struct LocalRunFit {
  bool runnable = false;
  std::string text;  // one line for the user
};

// Whether `moe run` can train `spec` on this machine's `cores` CPU cores: the CPU backend's limits,
// and how many ranks share each core. (Whether the spec is valid is validate_spec's question.)
LocalRunFit local_run_fit(const JobSpec& spec, int64_t cores);

}  // namespace moe
