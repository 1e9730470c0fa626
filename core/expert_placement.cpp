#include "expert_placement.h"

#include <algorithm>
#include <set>

#include "error.h"
#include "placement_strategies.h"
#include "rank_layout.h"
#include "spec_choices.h"

namespace moe {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

Placement place_uniform(const PlacementInput& in) {
  if (in.num_experts < 1 || in.ep < 1 || in.num_experts % in.ep != 0)
    throw Error("placement.uniform: ep (" + str(in.ep) + ") must divide num_experts (" + str(in.num_experts) + ")");
  // Spare slots (slots_per_rank above E/ep) stay empty of replicas: the first E/ep slots of each
  // member hold its block, the others repeat nothing and are refused by layer_from_map, so uniform
  // asks for exactly E/ep slots per member.
  if (in.slots_per_rank != 0 && in.slots_per_rank != in.num_experts / in.ep)
    throw Error("placement.slots_per_rank: uniform uses num_experts / ep (" + str(in.num_experts / in.ep) +
                ") slots per rank, not " + str(in.slots_per_rank) + " (replicas need the replicate or explicit strategy)");
  std::vector<int64_t> map(in.num_experts);
  for (int64_t e = 0; e < in.num_experts; ++e) map[e] = e;
  return Placement(std::max<int64_t>(in.layers, 1), layer_from_map(map, in.num_experts, in.ep));
}

}  // namespace

int64_t PlacementInput::slots() const { return ep * (slots_per_rank > 0 ? slots_per_rank : num_experts / std::max<int64_t>(ep, 1)); }

int64_t PlacementInput::nodes() const {
  if (node_of_member.empty()) return 1;
  return static_cast<int64_t>(std::set<int64_t>(node_of_member.begin(), node_of_member.end()).size());
}

LayerPlacement layer_from_map(const std::vector<int64_t>& phy_to_log, int64_t num_experts, int64_t ep) {
  const int64_t slots = static_cast<int64_t>(phy_to_log.size());
  if (ep < 1 || slots == 0 || slots % ep != 0)
    throw Error(str(slots) + " slots cannot be split evenly over " + str(ep) + " EP ranks");
  LayerPlacement lp;
  lp.slots_per_rank = slots / ep;
  lp.phy_to_log = phy_to_log;
  lp.log_to_phy.assign(num_experts, {});
  for (int64_t s = 0; s < slots; ++s) {
    const int64_t e = phy_to_log[s];
    if (e < 0 || e >= num_experts)
      throw Error("slot " + str(s) + " holds expert " + str(e) + ", outside 0.." + str(num_experts - 1));
    for (int64_t other : lp.log_to_phy[e])
      if (lp.rank_of_slot(other) == lp.rank_of_slot(s))
        throw Error("expert " + str(e) + " has two replicas on EP rank " + str(lp.rank_of_slot(s)) + " (slots " +
                    str(other) + " and " + str(s) + ")");
    lp.log_to_phy[e].push_back(s);
  }
  for (int64_t e = 0; e < num_experts; ++e)
    if (lp.log_to_phy[e].empty()) throw Error("expert " + str(e) + " has no slot");
  return lp;
}

std::vector<std::string> placement_strategies() {
  std::vector<std::string> out;
  for (const Choice& c : choices_of("placement.strategy"))
    if (c.name != "explicit") out.emplace_back(c.name);
  return out;
}

Placement place_experts(const std::string& strategy, const PlacementInput& input) {
  if (strategy == "uniform") return place_uniform(input);
  if (strategy == "data_driven") return place_data_driven(input);
  if (strategy == "hierarchical") return place_hierarchical(input);
  if (strategy == "replicate") return place_replicate(input);
  throw Error("placement.strategy: '" + strategy + "' is not one of: " + choice_names("placement.strategy"));
}

PlacementInput placement_input(const JobSpec& spec) {
  PlacementInput in;
  in.num_experts = spec.model.moe.num_experts;
  in.ep = spec.parallel.ep;
  in.slots_per_rank = spec.placement.slots_per_rank;
  in.layers = std::max<int64_t>(spec.model.moe_layers(), 1);
  // Every EP group has the same node pattern when the layout is aligned (validation); take the
  // first one's, relative to its first node.
  in.node_of_member = first_ep_group_nodes(spec.parallel);
  return in;
}

Placement placement_for_spec(const JobSpec& spec, const std::vector<std::vector<double>>& load,
                             const std::vector<std::vector<double>>& coselection) {
  const PlacementSpec& ps = spec.placement;
  const int64_t experts = spec.model.moe.num_experts, ep = spec.parallel.ep;
  const int64_t layers = std::max<int64_t>(spec.model.moe_layers(), 1);
  if (ps.strategy == "explicit") {
    if (ps.map.empty()) throw Error("placement.map: the explicit strategy needs a map (one row per MoE layer, or one for all)");
    if (ps.map.size() != 1 && static_cast<int64_t>(ps.map.size()) != layers)
      throw Error("placement.map: " + str(static_cast<int64_t>(ps.map.size())) + " rows, expected 1 or one per MoE layer (" +
                  str(layers) + ")");
    Placement out;
    for (int64_t l = 0; l < layers; ++l) {
      const auto& row = ps.map[ps.map.size() == 1 ? 0 : l];
      try {
        out.push_back(layer_from_map(row, experts, ep));
      } catch (const Error& e) {
        throw Error("placement.map." + str(ps.map.size() == 1 ? 0 : l) + ": " + e.what());
      }
      if (ps.slots_per_rank != 0 && out.back().slots_per_rank != ps.slots_per_rank)
        throw Error("placement.map." + str(l) + ": " + str(out.back().slots()) + " slots, expected ep × slots_per_rank = " +
                    str(ep * ps.slots_per_rank));
    }
    return out;
  }
  PlacementInput in = placement_input(spec);
  in.load = load;
  in.coselection = coselection;
  try {
    return place_experts(ps.strategy, in);
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind("placement", 0) == 0 ? what : "placement." + ps.strategy + ": " + what);
  }
}

bool is_uniform(const Placement& placement, int64_t num_experts) {
  for (const LayerPlacement& lp : placement) {
    if (lp.slots() != num_experts) return false;
    for (int64_t s = 0; s < lp.slots(); ++s)
      if (lp.phy_to_log[s] != s) return false;
  }
  return true;
}

}  // namespace moe
