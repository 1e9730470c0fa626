#pragma once
// What this build of the runtime can run: one process on the CPU, fp32. Everything else a spec may
// ask for is refused here with a one-line message naming the field, never silently ignored.
#include "job_spec.h"

namespace moe::rt {

// `multi_process`: this process is one rank of a launched job (runtime/ep), so parallel.ep and
// parallel.dp may exceed 1.
void check_supported_by_cpu_runtime(const JobSpec& spec, bool multi_process = false);

}  // namespace moe::rt
