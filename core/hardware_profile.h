#pragma once
// Hardware profiles for the cost model: device memory, peak dense FLOP/s, link bandwidths and the
// efficiencies a real run reaches. They live in resources/hardware.json so a user can edit them
// or add their own; values there come from vendor datasheets (each profile names its source).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

struct HardwareProfile {
  std::string name;
  std::string kind = "gpu";        // gpu | cpu
  double memory_bytes = 0;         // per device
  double peak_flops_bf16 = 0;      // dense, FLOP/s
  double peak_flops_fp32 = 0;      // dense, FLOP/s
  double peak_flops_fp8 = 0;       // dense, FLOP/s; 0: no FP8 tensor cores (runtime.fp8 is refused)
  double sms = 0;                  // streaming multiprocessors; 0: unknown (no overlap slowdown)
  double intra_node_bw = 0;        // per device and direction, B/s (NVLink)
  double inter_node_bw = 0;        // per device and direction, B/s (InfiniBand)
  double efficiency = 0.5;         // achieved fraction of peak FLOP/s on GEMMs
  double comm_efficiency = 0.8;    // achieved fraction of link bandwidth
  // Start-up cost of one exchange stage (the all-to-all simulator): a few microseconds, NCCL's
  // order for small messages; assumptions, not datasheet values (docs/cost-model.md §9).
  double intra_node_latency = 2e-6;  // s
  double inter_node_latency = 5e-6;  // s
  std::string source;

  double peak_flops(const std::string& dtype) const { return dtype == "bf16" ? peak_flops_bf16 : peak_flops_fp32; }
};

// Parses the document of resources/hardware.json ({"profiles": {NAME: {...}}}); errors name
// `origin` and the field ("hardware.json: profiles.H100-SXM.memory_gib: must be positive").
std::vector<HardwareProfile> parse_hardware_profiles(const nlohmann::json& doc, const std::string& origin);
std::vector<HardwareProfile> load_hardware_profiles(const std::filesystem::path& file);

// The profiles of the installed resources/hardware.json, read once and cached.
const std::vector<HardwareProfile>& builtin_hardware_profiles();

// The profile called `name`; an unknown name throws with the known names and a suggestion.
const HardwareProfile& find_hardware(const std::vector<HardwareProfile>& profiles, const std::string& name);

}  // namespace moe
