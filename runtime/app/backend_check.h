#pragma once
// What this build of the runtime can run: one process on the CPU, fp32. Everything else a spec may
// ask for is refused here with a one-line message naming the field, never silently ignored.
#include "job_spec.h"

namespace moe::rt {

void check_supported_by_cpu_runtime(const JobSpec& spec);

}  // namespace moe::rt
