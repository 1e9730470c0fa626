#pragma once
// AdamW (Loshchilov & Hutter, as torch.optim.AdamW computes it) and global-norm gradient clipping.
// One step, for parameter p with gradient g at step t (1-based):
//   p ← p − lr · wd · p                      (decoupled decay; not for 1-D params: norms)
//   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
//   p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
#include <cstdint>
#include <vector>

#include "job_spec.h"
#include "param.h"

namespace moe::rt {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  static AdamWConfig from_spec(const TrainSpec& train);
};

class AdamW {
 public:
  AdamW(std::vector<Param*> params, const AdamWConfig& config);

  void step(double lr);
  // Whether `p` gets weight decay: matrices yes, 1-D params (RMSNorm weights) no.
  static bool decays(const Param& p) { return p.shape.size() >= 2; }

  // State for checkpoints: steps taken and the moments, one vector per param in constructor order.
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  std::vector<std::vector<float>>& exp_avg() { return m_; }
  std::vector<std::vector<float>>& exp_avg_sq() { return v_; }
  const std::vector<Param*>& params() const { return params_; }

 private:
  std::vector<Param*> params_;
  AdamWConfig config_;
  int64_t steps_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

// Σ grad² of one parameter, in double, elements in order.
double squared_sum(const Param& p);
// The L2 norm of all gradients together: the params' squared_sum added in the given order (a
// multi-rank job adds the same per-param sums in the same order: ep_runtime.cpp).
double grad_norm(const std::vector<Param*>& params);
// Scales every gradient so the global norm is at most max_norm (max_norm ≤ 0: no clipping).
// Returns the norm before clipping, as torch.nn.utils.clip_grad_norm_ does.
double clip_grad_norm(const std::vector<Param*>& params, double max_norm);
// The scaling of clip_grad_norm given the norm.
void clip_to_norm(const std::vector<Param*>& params, double norm, double max_norm);
// grad ← factor · grad for every param (e.g. 1 / grad_accum after summing micro-batches).
void scale_grads(const std::vector<Param*>& params, double factor);

}  // namespace moe::rt
