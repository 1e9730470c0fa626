#pragma once
// Where CudaModel (cuda_model.h) keeps each parameter in its flat device buffers — plain C++,
// tested on the host with a real MixtralModel's parameter list:
//   - parameters in the model's named order, each starting on a 64-element boundary (256 bytes
//     in fp32), except that
//   - a MoE layer's experts are placed where its first expert parameter appears, as three banks
//     (w1 of experts 0..E−1, then w2, then w3), each bank contiguous and 64-element aligned, so
//     expert j of a bank is at bank_offset + j·numel — the layout ExpertBank and the strided /
//     grouped GEMMs expect.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moe::rt::cuda {

struct ParamSlot {
  std::string name;
  size_t offset = 0, numel = 0;  // elements
  bool decays = false;           // AdamW weight decay (matrices; not 1-D norm weights)
};

struct ParamInfo {
  std::string name;
  size_t numel = 0;
  bool decays = false;
};

// `params` in MixtralModel::named_params() order; `num_experts` E. Throws moe::Error naming the
// parameter when an expert of a bank is missing or a name appears twice.
std::vector<ParamSlot> plan_param_layout(const std::vector<ParamInfo>& params, int64_t num_experts, size_t* total);

// The expert parameter name of layer i, expert j, kind "w1" | "w2" | "w3".
std::string expert_param_name(int64_t layer, int64_t expert, const char* kind);

}  // namespace moe::rt::cuda
