// Host-side decisions of the CUDA MoE layer (see moe_layer_plan.h).
#include "moe_layer_plan.h"

#include <string>

#include "error.h"

namespace moe::rt::cuda {

const char* layer_mode_name(LayerMode m) {
  switch (m) {
    case LayerMode::dropless: return "dropless";
    case LayerMode::capacity: return "capacity";
    case LayerMode::expert_choice: return name_of(RoutingType::expert_choice).data();
  }
  return "?";
}

MoeLayerPlan plan_moe_layer(const MoeConfig& c, int64_t tokens, bool force_dropless, size_t elem_bytes) {
  c.validate();
  if (tokens <= 0) throw Error("cuda moe layer: tokens must be positive, got " + std::to_string(tokens));
  MoeLayerPlan p;
  p.tokens = tokens;
  const int64_t E = c.num_experts;
  if (c.type == RoutingType::expert_choice) {
    p.mode = LayerMode::expert_choice;
    p.capacity = c.capacity(tokens);
    p.assignments = E * p.capacity;
    p.expert_rows = E * p.capacity;
  } else if (c.dropless() || force_dropless) {
    p.mode = LayerMode::dropless;
    p.assignments = tokens * c.top_k;
    p.expert_rows = p.assignments;
  } else {
    p.mode = LayerMode::capacity;
    p.capacity = c.capacity(tokens);
    p.assignments = tokens * c.top_k;
    p.expert_rows = E * p.capacity;
  }
  if (p.mode != LayerMode::dropless) {
    p.fixed_offsets.resize(E + 1);
    for (int64_t e = 0; e <= E; ++e) p.fixed_offsets[e] = e * p.capacity;
  }
  p.shape.tokens = tokens;
  p.shape.d_model = c.d_model;
  p.shape.d_expert = c.d_expert;
  p.shape.num_experts = E;
  p.shape.top_k = c.top_k;
  p.shape.capacity = p.capacity;
  p.shape.expert_choice = p.expert_choice();
  p.shape.elem_bytes = elem_bytes;
  if (p.shape.assignments() != p.assignments || p.shape.expert_rows() != p.expert_rows)
    throw Error("cuda moe layer: buffer plan and layer plan disagree on the row counts (mode " +
                std::string(layer_mode_name(p.mode)) + ")");
  return p;
}

std::vector<int64_t> routing_counts(const MoeLayerPlan& plan, const std::vector<int64_t>& device_counts) {
  if (plan.expert_choice()) return std::vector<int64_t>(device_counts.size(), plan.capacity);
  return device_counts;
}

std::vector<float> load_share(const std::vector<int64_t>& counts) {
  int64_t total = 0;
  for (int64_t v : counts) total += v;
  std::vector<float> share(counts.size(), 0.0f);
  if (total > 0)
    for (size_t e = 0; e < counts.size(); ++e) share[e] = static_cast<float>(counts[e]) / static_cast<float>(total);
  return share;
}

double aux_loss_from_terms(const MoeConfig& c, const std::vector<float>& share, const std::vector<float>& sum_p,
                           int64_t tokens) {
  if (tokens <= 0) return 0.0;
  if (share.size() != sum_p.size()) throw Error("cuda moe layer: load share and score sums differ in size");
  double aux = 0.0;
  for (size_t e = 0; e < share.size(); ++e)
    aux += static_cast<double>(share[e]) * static_cast<double>(sum_p[e]) / static_cast<double>(tokens);
  return c.aux_loss_coef * static_cast<double>(c.num_experts) * aux;
}

double z_loss_from_terms(const MoeConfig& c, double sum_lse_sq, int64_t tokens) {
  return tokens > 0 ? c.z_loss_coef * sum_lse_sq / static_cast<double>(tokens) : 0.0;
}

RouterBackwardCoefs router_backward_coefs(const MoeConfig& c, int64_t tokens, double loss_scale) {
  if (tokens <= 0) return {};
  const double inv_n = 1.0 / static_cast<double>(tokens);
  return {static_cast<float>(loss_scale * c.aux_loss_coef * static_cast<double>(c.num_experts) * inv_n),
          static_cast<float>(loss_scale * 2.0 * c.z_loss_coef * inv_n)};
}

int64_t count_unrouted_tokens(const std::vector<int32_t>& token, const std::vector<int32_t>& assignment_row,
                              int64_t tokens) {
  if (token.size() != assignment_row.size())
    throw Error("cuda moe layer: token and assignment_row differ in size");
  std::vector<char> routed(static_cast<size_t>(tokens), 0);
  for (size_t a = 0; a < token.size(); ++a)
    if (assignment_row[a] >= 0 && token[a] >= 0 && token[a] < tokens) routed[token[a]] = 1;
  int64_t n = 0;
  for (char r : routed) n += !r;
  return n;
}

}  // namespace moe::rt::cuda
