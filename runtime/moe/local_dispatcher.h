#pragma once
// The dispatcher of one process: every expert is local, so dispatch is a permutation of x's rows
// into expert-major order and combine is the weighted scatter-add back (routing_ops.h).
#include "token_dispatcher.h"

namespace moe::rt {

template <typename T>
class LocalDispatcher final : public Dispatcher<T> {
 public:
  explicit LocalDispatcher(int64_t num_experts) : num_experts_(num_experts) {}
  int64_t first_expert() const override { return 0; }
  int64_t local_experts() const override { return num_experts_; }
  void dispatch(const Assignments& assignments, const T* x, int64_t d, DispatchHandle<T>& handle) override;
  void combine(DispatchHandle<T>& handle, const T* expert_out, const T* weight, T* y) override;
  void combine_backward(DispatchHandle<T>& handle, const T* dy, T* dweight, T* d_expert_out) override;
  void dispatch_backward(DispatchHandle<T>& handle, const T* d_expert_in, T* dx) override;

 private:
  int64_t num_experts_;
  std::vector<T> row_dweight_;
};

// The local permutation every dispatcher starts with: counts, offsets, row ↔ assignment maps
// and row_token (no data moved). Shared with the multi-process dispatchers.
template <typename T>
void plan_local_permutation(const Assignments& assignments, DispatchHandle<T>& handle);

}  // namespace moe::rt
