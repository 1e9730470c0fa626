#pragma once
// Softmax cross-entropy over a vocabulary split into shards (Megatron's vocab-parallel output
// layer, Shoeybi et al. 2019 §3): a shard holds the logits [rows × n] of vocabulary ids
// [first, first + n). Each shard computes per row its log-sum-exp and the target's logit (0 when
// the target is another shard's); the caller sums those over the shards (one all-reduce), then:
//   lse[t]   = log Σ_shards exp(shard lse[t])
//   loss     = (1/rows) · Σ_t (lse[t] − target logit[t])
//   probs    = exp(logits − lse[t]) on each shard, and backward cross_entropy_backward with the
//              shard's targets (shard_targets: −1 for another shard's, which gets no one-hot).
// With one shard this is cross_entropy_forward, to rounding.
#include <cstdint>
#include <vector>

namespace moe::rt {

// Per row of the shard: out_lse[t] (log Σ exp over the shard's logits) and out_target[t] (the
// target's logit if first ≤ target < first + n, else 0).
template <typename T>
void shard_statistics(const T* logits, const int32_t* targets, int64_t rows, int64_t n, int64_t first,
                      double* out_lse, double* out_target);

// The whole vocabulary's log-sum-exp per row from every shard's: lse[s·rows + t] of shard s.
void combine_shard_lse(const double* shard_lse, int64_t shards, int64_t rows, double* lse);

// probs = exp(logits − lse[t]) (probs may alias logits); returns the mean loss over the rows.
template <typename T>
double shard_softmax(T* probs, const T* logits, const double* lse, const double* target_logit, int64_t rows, int64_t n);

// The targets as the shard's columns: target − first, or −1 for another shard's.
std::vector<int32_t> shard_targets(const int32_t* targets, int64_t rows, int64_t n, int64_t first);

}  // namespace moe::rt
