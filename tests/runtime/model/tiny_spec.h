#pragma once
// A tiny job spec for model tests: small enough for finite differences over every tensor.
#include "job_spec.h"

namespace moe::rt::test {

inline JobSpec tiny_spec() {
  JobSpec s;
  s.model.vocab_size = 32;
  s.model.seq_len = 6;
  s.model.d_model = 16;
  s.model.n_layers = 2;
  s.model.n_heads = 4;
  s.model.n_kv_heads = 2;
  s.model.init_std = 0.3;  // O(1) activations, so every nonlinearity is exercised
  s.model.moe.num_experts = 4;
  s.model.moe.top_k = 2;
  s.model.moe.d_expert = 8;
  s.routing.capacity_factor = 0.0;
  s.routing.aux_loss_coef = 0.1;
  s.routing.z_loss_coef = 0.01;
  s.routing.jitter = 0.0;
  s.train.seed = 7;
  return s;
}

}  // namespace moe::rt::test
