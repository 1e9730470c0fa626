#pragma once
// config.json in Hugging Face Mixtral form (MixtralForCausalLM), so a checkpoint's weights load in
// transformers as they are. Our extensions (shared experts, dense first layers, sigmoid scores)
// are extra keys in DeepSeek's spelling; a plain Mixtral config leaves them out.
#include <nlohmann/json.hpp>

#include "job_spec.h"

namespace moe::rt {

nlohmann::json hf_config_from_spec(const JobSpec& spec);

// The model part of a spec from a config.json (ours or a plain Hugging Face Mixtral one), onto
// `spec`'s other fields. Missing or mistyped keys: a one-line error naming `origin` and the key.
void apply_hf_config(const nlohmann::json& config, JobSpec& spec, const std::string& origin);

}  // namespace moe::rt
