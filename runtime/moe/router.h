#pragma once
// The router: logits = x̃ · Wᵀ (bias-free linear, W = model.layers.{i}.block_sparse_moe.gate.weight
// [E×d]), scores = softmax(logits) or sigmoid(logits), and the two balancing losses:
//   aux  = α · E · Σ_i f_i · P_i   (Switch; f_i = share of assignments that chose expert i,
//          before capacity, a constant; P_i = mean over tokens of the score of i — for sigmoid the
//          scores normalised to sum to 1 per token, DeepSeek-V3 style)
//   z    = β · mean_t logsumexp(logits_t)²   (ST-MoE router z-loss)
// Jitter (training only): x̃ = x ⊙ u, u ~ U(1 − ε, 1 + ε) elementwise, on the router's input only
// (Switch Transformer); the experts see x unchanged.
// backward() takes dL/dscores from the gate weights, adds the losses' gradients (times
// loss_scale, the weight of this layer's losses in the objective), and produces dW and dx.
#include <cstdint>
#include <random>
#include <vector>

#include "grad_sink.h"
#include "moe_config.h"

namespace moe::rt {

template <typename T>
class Router {
 public:
  explicit Router(const MoeConfig& config) : config_(config) {}

  // Computes logits and scores for `tokens` rows of x. `jitter` turns the noise on (training):
  // one 64-bit key is drawn from `rng` per call, and element (token t, channel c) gets
  // u = jitter_noise(key, (token_offset + t)·d + c) — a counter hash of the GLOBAL token index, so
  // N ranks holding consecutive slices of one process's batch (token_offset = the tokens of the
  // ranks before them, with their rngs in step) draw exactly that process's noise.
  void forward(const T* gate_w, const T* x, int64_t tokens, bool jitter, std::mt19937_64& rng,
               int64_t token_offset = 0);
  // The losses of the last forward, given the per-expert assignment counts (before capacity).
  void compute_losses(const std::vector<int64_t>& counts);
  // dscores [T×E] (from the gate weights; modified: the aux gradient is added), accumulates
  // dgate_w [E×d] and adds into dx [T×d]. The losses are means over `loss_tokens` tokens (the
  // whole batch of every data-parallel rank; 0: this call's tokens), so every rank scales its
  // tokens' gradients exactly as one process with the whole batch would.
  void backward(const T* gate_w, const T* x, T* dscores, T loss_scale, GradSink<T> dgate_w, T* dx,
                int64_t loss_tokens = 0);

  const T* logits() const { return logits_.data(); }
  const T* scores() const { return scores_.data(); }
  double aux_loss() const { return aux_loss_; }
  double z_loss() const { return z_loss_; }
  int64_t tokens() const { return tokens_; }

 private:
  MoeConfig config_;
  int64_t tokens_ = 0;
  std::vector<T> noise_;    // [T×d] u, empty without jitter
  std::vector<T> noisy_x_;  // [T×d] x ⊙ u, empty without jitter
  std::vector<T> logits_, scores_;  // [T×E]
  std::vector<T> lse_;              // [T] logsumexp of the logits
  std::vector<T> load_share_;       // [E] f_i
  double aux_loss_ = 0.0, z_loss_ = 0.0;
};

}  // namespace moe::rt
