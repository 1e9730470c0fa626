#pragma once
// Hugging Face config.json → JobSpec for the MoE architectures we know (by `architectures`):
// Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2 and DeepSeek-V3. Every key is either mapped, known to
// be irrelevant to training cost (token ids, dtype, versions), or listed as a warning.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job_spec.h"

namespace moe {

struct HfImport {
  JobSpec spec;
  std::string architecture;
  std::vector<std::string> warnings;  // "key: not mapped (reason)"
};

std::vector<std::string> supported_hf_architectures();

// Throws moe::Error for an unknown architecture (listing the supported ones), a missing required
// key or a key of the wrong type, each naming `origin` and the key.
HfImport import_hf_config(const nlohmann::json& config, const std::string& origin = "config.json");

}  // namespace moe
