#pragma once
// The host-side decisions of the CUDA MoE layer (cuda_moe_layer.h), as pure functions so they are
// tested on the CPU against the CPU layer (runtime/moe):
//   - the routing mode and the row layout of the expert buffers:
//       dropless       token choice without capacity: R = T·k compact rows, offsets from the
//                      per-expert counts (read back), experts via the grouped GEMM;
//       capacity       token choice with capacity C: every expert owns C rows (R = E·C), its kept
//                      assignments first, the rest padding (zero in, ignored out), experts via one
//                      strided-batched GEMM;
//       expert_choice  each expert takes exactly C tokens (A = R = E·C, a = e·C + rank).
//   - the balancing losses from the device's reduced terms, and the router backward's coefficients.
#include <cstdint>
#include <vector>

#include "buffer_plan.h"
#include "moe_config.h"

namespace moe::rt::cuda {

enum class LayerMode { dropless, capacity, expert_choice };
const char* layer_mode_name(LayerMode m);

struct MoeLayerPlan {
  LayerMode mode = LayerMode::dropless;
  int64_t tokens = 0;
  int64_t capacity = 0;     // per-expert rows (0 in dropless mode)
  int64_t assignments = 0;  // A
  int64_t expert_rows = 0;  // R
  MoeShape shape;           // for plan_moe_buffers()
  // Row offsets of the experts when they are fixed before routing (capacity, expert choice):
  // e·C, E + 1 entries. Empty in dropless mode (they come from the counts).
  std::vector<int64_t> fixed_offsets;
  bool expert_choice() const { return mode == LayerMode::expert_choice; }
};

// `force_dropless` is eval's dropless routing (MoeLayerOptions); expert choice keeps its C, as the
// CPU selection does. elem_bytes: 4 (fp32) or 2 (bf16). Throws moe::Error naming the field.
MoeLayerPlan plan_moe_layer(const MoeConfig& c, int64_t tokens, bool force_dropless, size_t elem_bytes);

// Per-expert counts before capacity in the layout the CPU selection reports them: expert choice
// has C per expert whatever the device did.
std::vector<int64_t> routing_counts(const MoeLayerPlan& plan, const std::vector<int64_t>& device_counts);

// f_i = counts_i / Σ counts (all zero when nothing was routed). The aux loss's load share.
std::vector<float> load_share(const std::vector<int64_t>& counts);

// aux = α·E·Σ_i f_i·P_i with P_i = sum_p[i] / T (sum_p: router_loss_terms' column sums);
// z = β·Σ_t lse_t² / T. Both 0 for T = 0. Router::compute_losses is the CPU twin.
double aux_loss_from_terms(const MoeConfig& c, const std::vector<float>& share, const std::vector<float>& sum_p,
                           int64_t tokens);
double z_loss_from_terms(const MoeConfig& c, double sum_lse_sq, int64_t tokens);

// The coefficients router_backward() takes: aux_coef = s·α·E/T, z_coef = s·2β/T (s = loss_scale).
struct RouterBackwardCoefs {
  float aux = 0, z = 0;
};
RouterBackwardCoefs router_backward_coefs(const MoeConfig& c, int64_t tokens, double loss_scale);

// Tokens none of whose assignments reached an expert: assignment_row[a] < 0 means dropped.
int64_t count_unrouted_tokens(const std::vector<int32_t>& token, const std::vector<int32_t>& assignment_row,
                              int64_t tokens);

}  // namespace moe::rt::cuda
