#include "expert_replicas.h"

#include <algorithm>
#include <type_traits>

#include "error.h"

namespace moe::rt::ep {

ExpertReplicas::ExpertReplicas(Placement placement, int64_t member) : placement_(std::move(placement)), member_(member) {
  for (const LayerPlacement& lp : placement_) {
    std::vector<int64_t> blocks(lp.log_to_phy.size(), -1);
    for (size_t e = 0; e < lp.log_to_phy.size(); ++e)
      if (lp.log_to_phy[e].size() > 1) blocks[e] = replicated_++;
    block_.push_back(std::move(blocks));
  }
}

LocalExpert ExpertReplicas::local(size_t k) const {
  const int64_t S = slots_per_rank(), per_layer = 3 * S;
  LocalExpert x;
  x.layer = static_cast<int64_t>(k) / per_layer;
  x.slot = member_ * S + (static_cast<int64_t>(k) % per_layer) / 3;
  x.weight = static_cast<int>(k % 3);
  if (x.layer >= static_cast<int64_t>(placement_.size()))
    throw Error("placement: expert param " + std::to_string(k) + " is beyond the placement's " +
                std::to_string(placement_.size()) + " MoE layers");
  x.logical = placement_[static_cast<size_t>(x.layer)].phy_to_log[static_cast<size_t>(x.slot)];
  return x;
}

int64_t ExpertReplicas::primary_member(int64_t layer, int64_t e) const {
  const LayerPlacement& lp = placement_[static_cast<size_t>(layer)];
  return lp.rank_of_slot(lp.log_to_phy[static_cast<size_t>(e)][0]);  // slots ascend, so do members
}

template <typename V>
int64_t ExpertReplicas::sum_replicas(comm::Communicator& ep, const std::vector<Param*>& experts, V&& view) const {
  if (replicated_ == 0 || experts.empty()) return 0;
  using Elem = typename std::decay_t<decltype(view(*experts[0]))>::value_type;
  const size_t per = view(*experts[0]).size();  // w1, w2, w3 all hold f·d values
  std::vector<Elem> flat(static_cast<size_t>(replicated_) * 3 * per, Elem(0));
  auto at = [&](size_t k) -> int64_t {
    const LocalExpert x = local(k);
    const int64_t b = block_[static_cast<size_t>(x.layer)][static_cast<size_t>(x.logical)];
    return b < 0 ? -1 : (b * 3 + x.weight) * static_cast<int64_t>(per);
  };
  for (size_t k = 0; k < experts.size(); ++k) {
    if (view(*experts[k]).size() != per) throw Error("placement: expert params of unequal size");
    if (const int64_t o = at(k); o >= 0) std::copy(view(*experts[k]).begin(), view(*experts[k]).end(), flat.begin() + o);
  }
  ep.all_reduce_sum(flat.data(), flat.size());
  for (size_t k = 0; k < experts.size(); ++k)
    if (const int64_t o = at(k); o >= 0) std::copy_n(flat.begin() + o, per, view(*experts[k]).begin());
  return static_cast<int64_t>(flat.size() * sizeof(Elem));
}

int64_t ExpertReplicas::sum_replica_grads(comm::Communicator& ep, const std::vector<Param*>& experts) const {
  if (replicated_ == 0 || experts.empty()) return 0;
  if (experts[0]->exact_grad.size() == 0)
    return sum_replicas(ep, experts, [](Param& p) -> std::vector<float>& { return p.grad; });
  const int64_t bytes = sum_replicas(ep, experts, [](Param& p) -> std::vector<int64_t>& { return p.exact_grad.limbs(); });
  for (size_t k = 0; k < experts.size(); ++k)
    if (block_[static_cast<size_t>(local(k).layer)][static_cast<size_t>(local(k).logical)] >= 0)
      experts[k]->exact_grad.round_to(experts[k]->grad.data());
  return bytes;
}

}  // namespace moe::rt::ep
