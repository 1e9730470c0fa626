// LocalDispatcher (see local_dispatcher.h): the routing ops wired into dispatch and combine.
#include "local_dispatcher.h"

#include <algorithm>

#include "error.h"
#include "routing_ops.h"

namespace moe::rt {

template <typename T>
void plan_local_permutation(const Assignments& asg, DispatchHandle<T>& h) {
  const int64_t E = asg.num_experts, A = asg.size();
  h.num_tokens = asg.num_tokens;
  h.counts.resize(E);
  h.offsets.resize(E + 1);
  h.scratch.resize(E);
  expert_histogram(asg.route.data(), A, E, h.counts.data());
  exclusive_scan(h.counts.data(), E, h.offsets.data());
  const int64_t R = h.offsets[E];
  h.row_assignment.resize(R);
  h.row_token.resize(R);
  h.assignment_row.resize(A);
  sort_by_expert(asg.route.data(), A, h.offsets.data(), E, h.scratch.data(), h.row_assignment.data(),
                 h.assignment_row.data());
  for (int64_t r = 0; r < R; ++r) h.row_token[r] = asg.token[h.row_assignment[r]];
}

template <typename T>
void LocalDispatcher<T>::dispatch(const Assignments& asg, const T* x, int64_t d, DispatchHandle<T>& h) {
  if (asg.num_experts != num_experts_)
    throw Error("dispatcher: assignments name " + std::to_string(asg.num_experts) + " experts, the layer has " +
                std::to_string(num_experts_));
  h.d = d;
  plan_local_permutation(asg, h);
  h.expert_counts = h.counts;
  h.expert_offsets = h.offsets;
  h.expert_input.resize(h.local_rows() * d);
  gather_rows(h.expert_input.data(), x, h.row_token.data(), h.local_rows(), d);
  h.returned_rows = nullptr;
  h.expert_row_sequence.clear();
  if (h.segment_tokens > 0)
    for (int64_t r = 0; r < h.local_rows(); ++r)
      h.expert_row_sequence.push_back(static_cast<int32_t>(h.row_token[r] / h.segment_tokens));
}

template <typename T>
void LocalDispatcher<T>::combine(DispatchHandle<T>& h, const T* expert_out, const T* weight, T* y) {
  const int64_t R = h.local_rows();
  h.row_weight.resize(R);
  for (int64_t r = 0; r < R; ++r) h.row_weight[r] = weight[h.row_assignment[r]];
  weighted_scatter_add_rows(y, expert_out, h.row_token.data(), h.row_weight.data(), R, h.d);
  h.returned_rows = expert_out;
}

template <typename T>
void LocalDispatcher<T>::combine_backward(DispatchHandle<T>& h, const T* dy, T* dweight, T* d_expert_out) {
  const int64_t R = h.local_rows();
  if (R > 0 && h.returned_rows == nullptr) throw Error("dispatcher: combine_backward before combine");
  row_dweight_.resize(R);
  row_dots(row_dweight_.data(), h.returned_rows, dy, h.row_token.data(), R, h.d);
  std::fill(dweight, dweight + h.assignment_row.size(), T(0));
  for (int64_t r = 0; r < R; ++r) dweight[h.row_assignment[r]] = row_dweight_[r];
  weighted_gather_rows(d_expert_out, dy, h.row_token.data(), h.row_weight.data(), R, h.d);
}

template <typename T>
void LocalDispatcher<T>::dispatch_backward(DispatchHandle<T>& h, const T* d_expert_in, T* dx) {
  scatter_add_rows(dx, d_expert_in, h.row_token.data(), h.local_rows(), h.d);
}

template class LocalDispatcher<float>;
template class LocalDispatcher<double>;
template void plan_local_permutation<float>(const Assignments&, DispatchHandle<float>&);
template void plan_local_permutation<double>(const Assignments&, DispatchHandle<double>&);

}  // namespace moe::rt
