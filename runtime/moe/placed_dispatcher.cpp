#include "placed_dispatcher.h"

#include "error.h"

namespace moe::rt {

template <typename T>
PlacedDispatcher<T>::PlacedDispatcher(std::unique_ptr<Dispatcher<T>> inner, LayerPlacement placement,
                                      const ReplicaChoice& choice, int64_t unit_tokens)
    : inner_(std::move(inner)), placement_(std::move(placement)), choice_(choice), unit_tokens_(unit_tokens) {
  if (inner_->local_experts() != placement_.slots_per_rank)
    throw Error("placement: the dispatcher holds " + std::to_string(inner_->local_experts()) +
                " slots per rank, the placement has " + std::to_string(placement_.slots_per_rank));
}

template <typename T>
void PlacedDispatcher<T>::dispatch(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& handle) {
  slots_ = asg;
  slots_.num_experts = placement_.slots();
  for (int64_t a = 0; a < asg.size(); ++a) {
    const int32_t e = asg.route[static_cast<size_t>(a)];
    if (e < 0) continue;
    const int64_t unit = unit_tokens_ > 0 ? asg.token[static_cast<size_t>(a)] / unit_tokens_ : 0;
    slots_.route[static_cast<size_t>(a)] = static_cast<int32_t>(choice_.slot(e, unit));
  }
  inner_->dispatch(slots_, x, d, handle);
  // A token's outputs are added in logical expert order (rows of a slot are slot-major here).
  handle.add_order.clear();
  for (const std::vector<int64_t>& replicas : placement_.log_to_phy)
    for (int64_t s : replicas)
      for (int64_t r = handle.offsets[static_cast<size_t>(s)]; r < handle.offsets[static_cast<size_t>(s) + 1]; ++r)
        handle.add_order.push_back(static_cast<int32_t>(r));
}

template class PlacedDispatcher<float>;
template class PlacedDispatcher<double>;

}  // namespace moe::rt
