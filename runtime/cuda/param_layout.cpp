// Where CudaModel keeps each parameter (see param_layout.h).
#include "param_layout.h"

#include <map>
#include <set>

#include "error.h"

namespace moe::rt::cuda {

std::string expert_param_name(int64_t layer, int64_t expert, const char* kind) {
  return "model.layers." + std::to_string(layer) + ".block_sparse_moe.experts." + std::to_string(expert) + "." + kind +
         ".weight";
}

std::vector<ParamSlot> plan_param_layout(const std::vector<ParamInfo>& params, int64_t num_experts, size_t* total) {
  std::map<std::string, const ParamInfo*> by_name;
  for (const ParamInfo& p : params)
    if (!by_name.emplace(p.name, &p).second) throw Error("cuda model: parameter " + p.name + " appears twice");
  std::vector<ParamSlot> out;
  std::set<std::string> placed;
  size_t offset = 0;
  auto align = [&] { offset = (offset + 63) / 64 * 64; };
  auto place = [&](const ParamInfo& p) {
    out.push_back({p.name, offset, p.numel, p.decays});
    offset += p.numel;
    placed.insert(p.name);
  };
  const std::string marker = ".block_sparse_moe.experts.";
  for (const ParamInfo& p : params) {
    if (placed.count(p.name)) continue;
    if (p.name.find(marker) == std::string::npos) {
      align();
      place(p);
      continue;
    }
    const int64_t layer = std::stoll(p.name.substr(std::string("model.layers.").size()));
    for (const char* kind : {"w1", "w2", "w3"}) {
      align();
      for (int64_t j = 0; j < num_experts; ++j) {
        const std::string name = expert_param_name(layer, j, kind);
        auto it = by_name.find(name);
        if (it == by_name.end()) throw Error("cuda model: no parameter " + name + " (each MoE layer needs all experts)");
        place(*it->second);
      }
    }
  }
  align();
  if (total) *total = offset;
  return out;
}

}  // namespace moe::rt::cuda
