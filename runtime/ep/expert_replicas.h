#pragma once
// Where this rank's expert params sit in the layer's placement (core/expert_placement.h), and the
// sums that replicas need: a replicated expert's gradient is the sum of its replicas' gradients,
// and every replica then takes the same optimizer step. The rank's expert params come in
// MoeLayer::params() order: per MoE layer, per local slot, w1, w2, w3 (all f·d values).
#include <cstdint>
#include <vector>

#include "communicator.h"
#include "expert_placement.h"
#include "param.h"

namespace moe::rt::ep {

struct LocalExpert {
  int64_t layer = 0;    // MoE layer ordinal (index into the placement)
  int64_t slot = 0;     // physical slot
  int64_t logical = 0;  // logical expert it holds
  int weight = 0;       // 0, 1, 2: w1, w2, w3
};

class ExpertReplicas {
 public:
  ExpertReplicas(Placement placement, int64_t member);

  const Placement& placement() const { return placement_; }
  int64_t slots_per_rank() const { return placement_.empty() ? 0 : placement_[0].slots_per_rank; }
  // The k-th expert param of this rank (params() order).
  LocalExpert local(size_t k) const;
  bool has_replicas() const { return replicated_ > 0; }
  // The lowest EP member holding logical expert e of `layer`: it speaks for e in norms and checkpoints.
  int64_t primary_member(int64_t layer, int64_t e) const;

  // Sums the gradients of every replicated expert over its replicas (one all-reduce over the EP
  // group; members without a replica add zeros). Deterministic arithmetic sums the ExactSums'
  // integers and rounds them again. `experts`: this rank's expert params in params() order.
  // Returns the payload handed to the all-reduce in bytes (0 without replicas).
  int64_t sum_replica_grads(comm::Communicator& ep, const std::vector<Param*>& experts) const;

 private:
  template <typename V>
  int64_t sum_replicas(comm::Communicator& ep, const std::vector<Param*>& experts, V&& view) const;

  Placement placement_;
  int64_t member_ = 0;
  std::vector<std::vector<int64_t>> block_;  // [layer][logical] → index among replicated experts, or -1
  int64_t replicated_ = 0;
};

}  // namespace moe::rt::ep
