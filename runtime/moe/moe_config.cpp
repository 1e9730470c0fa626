// Reads the MoE settings from the job spec and refuses what the layer cannot do (see moe_config.h).
#include "moe_config.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"

namespace moe::rt {

MoeConfig MoeConfig::from_spec(const JobSpec& spec) {
  const MoeSpec& m = spec.model.moe;
  const RoutingSpec& r = spec.routing;
  MoeConfig c;
  c.d_model = spec.model.d_model;
  c.num_experts = m.num_experts;
  c.top_k = m.top_k;
  c.d_expert = m.d_expert;
  c.d_shared = m.shared_experts > 0 ? m.shared_experts * m.d_shared_expert : 0;
  if (m.shared_experts > 0 && m.d_shared_expert <= 0)
    throw Error("model.moe.d_shared_expert: must be > 0 when model.moe.shared_experts is " +
                std::to_string(m.shared_experts));

  c.type = moe::routing_type(r);
  c.score = moe::score_fn(r);
  c.drop_policy = moe::drop_policy(r);

  c.capacity_factor = r.capacity_factor;
  c.aux_loss_coef = r.aux_loss_coef;
  c.z_loss_coef = r.z_loss_coef;
  c.jitter = r.jitter;
  c.norm_topk_prob = r.norm_topk_prob;
  c.routed_scaling_factor = r.routed_scaling_factor;
  c.n_group = r.n_group;
  c.topk_group = r.topk_group;
  c.bias_balancing = r.bias_balancing.enabled;
  c.bias_update_rate = r.bias_balancing.update_rate;
  c.validate();
  return c;
}

void MoeConfig::validate() const {
  auto need = [](bool ok, const std::string& message) {
    if (!ok) throw Error(message);
  };
  need(d_model > 0, "model.d_model: must be > 0, got " + std::to_string(d_model));
  need(num_experts > 0, "model.moe.num_experts: must be > 0, got " + std::to_string(num_experts));
  need(top_k >= 1 && top_k <= num_experts, "model.moe.top_k: must be in [1, num_experts=" +
                                               std::to_string(num_experts) + "], got " + std::to_string(top_k));
  need(d_expert > 0, "model.moe.d_expert: must be > 0, got " + std::to_string(d_expert));
  need(d_shared >= 0, "model.moe.d_shared_expert: must be >= 0");
  need(capacity_factor >= 0.0 && std::isfinite(capacity_factor),
       "routing.capacity_factor: must be a finite number >= 0");
  need(jitter >= 0.0 && jitter < 1.0, "routing.jitter: must be in [0, 1)");
  need(n_group >= 1 && num_experts % n_group == 0,
       "routing.n_group: " + std::to_string(n_group) + " must be >= 1 and divide model.moe.num_experts (" +
           std::to_string(num_experts) + ")");
  need(topk_group >= 1 && topk_group <= n_group,
       "routing.topk_group: " + std::to_string(topk_group) + " must be in [1, routing.n_group=" +
           std::to_string(n_group) + "]");
  need(top_k <= topk_group * (num_experts / n_group),
       "routing.topk_group: the selected groups hold fewer than model.moe.top_k experts");
  need(!(n_group > 1 && type == RoutingType::expert_choice),
       "routing.n_group: group-limited routing applies to token_choice only, not expert_choice");
}

int64_t MoeConfig::capacity(int64_t tokens) const {
  if (dropless()) return tokens * top_k;
  const double factor = capacity_factor > 0.0 ? capacity_factor : 1.0;
  // 1e-9 keeps exact products (1.25 · 8 · 2 / 4 = 5) from rounding up through float error.
  const double exact = factor * static_cast<double>(tokens) * static_cast<double>(top_k) /
                       static_cast<double>(num_experts);
  int64_t c = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(exact - 1e-9)));
  if (type == RoutingType::expert_choice) c = std::min(c, tokens);
  return c;
}

}  // namespace moe::rt
