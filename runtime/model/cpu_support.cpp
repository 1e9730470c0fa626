// The CPU runtime's limits (see cpu_support.h).
#include "cpu_support.h"

#include "cpu_runtime_limits.h"
#include "error.h"
#include "spec_choices.h"
#include "spec_validation.h"

namespace moe::rt {

void check_model_supported(const JobSpec& spec, bool multi_process) {
  if (spec.runtime.backend == "cuda")
    throw Error("runtime.backend: cuda is not available in this build of moe-runtime (built without CUDA); use cpu");
  if (spec.runtime.backend != "cpu")
    throw Error("runtime.backend: '" + spec.runtime.backend + "' is not one of: " + choice_names("runtime.backend"));
  if (const std::string why = cpu_model_refusal(spec, multi_process); !why.empty()) throw Error(why);
  throw_if_invalid(validate_model(spec.model));
}

void check_supported_by_cpu_runtime(const JobSpec& spec, bool multi_process) {
  check_model_supported(spec, multi_process);
  if (const std::string why = cpu_training_refusal(spec, multi_process); !why.empty()) throw Error(why);
  throw_if_invalid(validate_spec(spec));  // after the runtime's own refusals, which say more
}

}  // namespace moe::rt
