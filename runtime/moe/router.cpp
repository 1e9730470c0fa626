// Router forward/backward and the balancing losses (see router.h).
#include "router.h"

#include <algorithm>
#include <cmath>

#include "../cuda/jitter_hash.h"  // the counter hash the CUDA router uses (plain C++)
#include "linear.h"

namespace moe::rt {

template <typename T>
void Router<T>::forward(const T* gate_w, const T* x, int64_t tokens, bool jitter, std::mt19937_64& rng,
                        int64_t token_offset) {
  const int64_t E = config_.num_experts, d = config_.d_model;
  tokens_ = tokens;
  const T* input = x;
  if (jitter && config_.jitter > 0.0) {
    noise_.resize(tokens * d);
    noisy_x_.resize(tokens * d);
    const uint64_t key = rng();  // one draw per call, whatever the token count: ranks stay in step
    const float eps = static_cast<float>(config_.jitter);
    const uint64_t first = static_cast<uint64_t>(token_offset * d);
    for (int64_t i = 0; i < tokens * d; ++i) {
      noise_[i] = static_cast<T>(cuda::jitter_noise(key, first + static_cast<uint64_t>(i), eps));
      noisy_x_[i] = x[i] * noise_[i];
    }
    input = noisy_x_.data();
  } else {
    noise_.clear();
    noisy_x_.clear();
  }
  logits_.resize(tokens * E);
  scores_.resize(tokens * E);
  lse_.resize(tokens);
  linear_forward(logits_.data(), input, gate_w, tokens, d, E);
  for (int64_t t = 0; t < tokens; ++t) {
    const T* l = logits_.data() + t * E;
    T* s = scores_.data() + t * E;
    const T m = *std::max_element(l, l + E);
    T sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += std::exp(l[e] - m);
    lse_[t] = m + std::log(sum);
    for (int64_t e = 0; e < E; ++e)
      s[e] = config_.score == ScoreFn::softmax ? std::exp(l[e] - lse_[t]) : T(1) / (T(1) + std::exp(-l[e]));
  }
}

template <typename T>
void Router<T>::compute_losses(const std::vector<int64_t>& counts) {
  const int64_t E = config_.num_experts, n = tokens_;
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  load_share_.assign(E, T(0));
  for (int64_t e = 0; e < E; ++e) load_share_[e] = total > 0 ? T(counts[e]) / T(total) : T(0);
  // P_i = mean_t p[t,i]; p = softmax scores, or sigmoid scores normalised per token.
  double aux = 0.0, z = 0.0;
  std::vector<double> mean_p(E, 0.0);
  for (int64_t t = 0; t < n; ++t) {
    const T* s = scores_.data() + t * E;
    double norm = 1.0;
    if (config_.score == ScoreFn::sigmoid) {
      norm = 0.0;
      for (int64_t e = 0; e < E; ++e) norm += s[e];
    }
    for (int64_t e = 0; e < E; ++e) mean_p[e] += s[e] / norm;
    z += static_cast<double>(lse_[t]) * static_cast<double>(lse_[t]);
  }
  for (int64_t e = 0; e < E; ++e) aux += static_cast<double>(load_share_[e]) * mean_p[e] / std::max<int64_t>(n, 1);
  aux_loss_ = config_.aux_loss_coef * static_cast<double>(E) * aux;
  z_loss_ = n > 0 ? config_.z_loss_coef * z / static_cast<double>(n) : 0.0;
}

template <typename T>
void Router<T>::backward(const T* gate_w, const T* x, T* dscores, T loss_scale, GradSink<T> dgate_w, T* dx,
                         int64_t loss_tokens) {
  const int64_t E = config_.num_experts, d = config_.d_model, n = tokens_;
  if (n == 0) return;
  const T inv_n = T(1) / T(loss_tokens > 0 ? loss_tokens : n);
  const T aux_coef = loss_scale * static_cast<T>(config_.aux_loss_coef * static_cast<double>(E)) * inv_n;
  const T z_coef = loss_scale * static_cast<T>(2.0 * config_.z_loss_coef) * inv_n;
  std::vector<T> dlogits(n * E);
  for (int64_t t = 0; t < n; ++t) {
    const T* s = scores_.data() + t * E;
    const T* l = logits_.data() + t * E;
    T* ds = dscores + t * E;
    T* dl = dlogits.data() + t * E;
    // aux: d/ds[t,i] of α·E·Σ_i f_i·mean_t p[t,i]
    if (config_.aux_loss_coef != 0.0) {
      if (config_.score == ScoreFn::softmax) {
        for (int64_t e = 0; e < E; ++e) ds[e] += aux_coef * load_share_[e];
      } else {  // p = s / Σs:  dp_i → ds_j = (dp_j − Σ_i dp_i · p_i) / Σs
        T sum = 0, dot = 0;
        for (int64_t e = 0; e < E; ++e) sum += s[e];
        for (int64_t e = 0; e < E; ++e) dot += load_share_[e] * s[e] / sum;
        for (int64_t e = 0; e < E; ++e) ds[e] += aux_coef * (load_share_[e] - dot) / sum;
      }
    }
    if (config_.score == ScoreFn::softmax) {  // dl = s ⊙ (ds − Σ s·ds)
      T dot = 0;
      for (int64_t e = 0; e < E; ++e) dot += s[e] * ds[e];
      for (int64_t e = 0; e < E; ++e) dl[e] = s[e] * (ds[e] - dot);
    } else {  // dl = ds · s · (1 − s)
      for (int64_t e = 0; e < E; ++e) dl[e] = ds[e] * s[e] * (T(1) - s[e]);
    }
    // z: d/dl of β·mean lse² = 2β·lse·softmax(l) / T
    if (config_.z_loss_coef != 0.0)
      for (int64_t e = 0; e < E; ++e) dl[e] += z_coef * lse_[t] * std::exp(l[e] - lse_[t]);
  }
  const bool jittered = !noise_.empty();
  const T* input = jittered ? noisy_x_.data() : x;
  if (!jittered) {
    linear_backward(dx, dgate_w, dlogits.data(), input, gate_w, n, d, E, /*accumulate_dx=*/true);
    return;
  }
  std::vector<T> dnoisy(n * d);  // dx += (dlogits · W) ⊙ u
  linear_backward(dnoisy.data(), dgate_w, dlogits.data(), input, gate_w, n, d, E);
  for (int64_t i = 0; i < n * d; ++i) dx[i] += dnoisy[i] * noise_[i];
}

template class Router<float>;
template class Router<double>;

}  // namespace moe::rt
