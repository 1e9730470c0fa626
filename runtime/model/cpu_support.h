#pragma once
// What the CPU runtime can run: the cpu backend in this build, then core's cpu_runtime_limits.h
// (fp32, GQA attention, no pipeline parallelism, tp/ep/dp only as one process per rank, …), whose
// one-line refusals are thrown as moe::Error, never silently ignored. The spec's own rules are
// core's (validate_spec); these are the runtime's limits on top of them.
#include "job_spec.h"

namespace moe::rt {

// The model's part (MixtralModel checks it when built): the limits above, then core's model rules.
// `multi_process`: this process is one rank of a launched job (runtime/ep), so parallel.ep and
// parallel.dp may exceed 1.
void check_model_supported(const JobSpec& spec, bool multi_process);

// A whole training or evaluation job: the model's part, a byte vocabulary, what deterministic
// arithmetic cannot keep layout-invariant, then every rule of core's validate_spec.
void check_supported_by_cpu_runtime(const JobSpec& spec, bool multi_process = false);

}  // namespace moe::rt
