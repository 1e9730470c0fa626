#pragma once
// A dispatcher for a non-uniform expert placement (core/expert_placement.h): routing decides in
// logical experts; this wrapper sends each kept assignment to a physical slot instead — the slot's
// replica chosen by core's ReplicaChoice, per sender and sequence — and hands the relabelled
// assignments to an inner dispatcher that works in slot space (slot s on EP rank s / slots_per_rank,
// exactly the contiguous layout the all-to-all dispatcher already moves rows for). Rows, gate
// weights and gradients are untouched, so only where an expert row is computed changes.
// A sequence's rows of one expert all go to one replica: deterministic arithmetic sums expert
// weight gradients per (expert, sequence), and that partial is then computed on the same rows in
// the same order as in one process (docs/placement.md).
#include <memory>

#include "expert_placement.h"
#include "replica_choice.h"
#include "token_dispatcher.h"

namespace moe::rt {

template <typename T>
class PlacedDispatcher final : public Dispatcher<T> {
 public:
  // `inner` moves rows between slots (its expert count is placement.slots()); `member` is this
  // rank's position in the EP group; `unit_tokens` the tokens per sequence (0: one unit).
  PlacedDispatcher(std::unique_ptr<Dispatcher<T>> inner, LayerPlacement placement, const ReplicaChoice& choice,
                   int64_t unit_tokens);

  int64_t first_expert() const override { return inner_->first_expert(); }
  int64_t local_experts() const override { return inner_->local_experts(); }
  int64_t logical_expert(int64_t slot) const override { return placement_.phy_to_log[static_cast<size_t>(slot)]; }
  void dispatch(const Assignments& assignments, const T* x, int64_t d, DispatchHandle<T>& handle) override;
  void combine(DispatchHandle<T>& h, const T* out, const T* w, T* y) override { inner_->combine(h, out, w, y); }
  void combine_backward(DispatchHandle<T>& h, const T* dy, T* dw, T* dout) override {
    inner_->combine_backward(h, dy, dw, dout);
  }
  void dispatch_backward(DispatchHandle<T>& h, const T* din, T* dx) override { inner_->dispatch_backward(h, din, dx); }
  void wait_dispatch_chunk(DispatchHandle<T>& h, int64_t c) override { inner_->wait_dispatch_chunk(h, c); }
  void start_combine_chunk(DispatchHandle<T>& h, int64_t c, const T* out, const T* w) override {
    inner_->start_combine_chunk(h, c, out, w);
  }
  void wait_combine_backward_chunk(DispatchHandle<T>& h, int64_t c) override { inner_->wait_combine_backward_chunk(h, c); }
  void start_dispatch_backward_chunk(DispatchHandle<T>& h, int64_t c, const T* din) override {
    inner_->start_dispatch_backward_chunk(h, c, din);
  }

  Dispatcher<T>& inner() { return *inner_; }
  // Dynamic re-placement: the next dispatch uses this placement (same slots per rank).
  void set_placement(LayerPlacement placement, const ReplicaChoice& choice) {
    placement_ = std::move(placement);
    choice_ = choice;
  }
  const LayerPlacement& placement() const { return placement_; }

 private:
  std::unique_ptr<Dispatcher<T>> inner_;
  LayerPlacement placement_;
  ReplicaChoice choice_;
  int64_t unit_tokens_;
  Assignments slots_;  // the last dispatch's assignments in slot space
};

}  // namespace moe::rt
