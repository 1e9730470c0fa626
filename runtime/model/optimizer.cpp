// AdamW and gradient clipping (see optimizer.h). The per-element update is a plain loop the
// compiler vectorises; the bias corrections are computed once per step in double.
#include "optimizer.h"

#include <cmath>

#include "error.h"

namespace moe::rt {

AdamWConfig AdamWConfig::from_spec(const TrainSpec& t) {
  return AdamWConfig{t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay};
}

AdamW::AdamW(std::vector<Param*> params, const AdamWConfig& config)
    : params_(std::move(params)), config_(config) {
  if (!(config.beta1 >= 0 && config.beta1 < 1)) throw Error("train.adam_beta1: must be in [0, 1)");
  if (!(config.beta2 >= 0 && config.beta2 < 1)) throw Error("train.adam_beta2: must be in [0, 1)");
  for (Param* p : params_) {
    m_.emplace_back(p->numel(), 0.0f);
    v_.emplace_back(p->numel(), 0.0f);
  }
}

void AdamW::step(double lr) {
  ++steps_;
  const double t = static_cast<double>(steps_);
  const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
  const float one_minus_b1 = static_cast<float>(1.0 - config_.beta1);  // exact in double, then rounded once
  const float one_minus_b2 = static_cast<float>(1.0 - config_.beta2);
  const float bc1 = static_cast<float>(1.0 / (1.0 - std::pow(config_.beta1, t)));
  const float bc2 = static_cast<float>(1.0 / (1.0 - std::pow(config_.beta2, t)));
  const float eps = static_cast<float>(config_.eps), step_lr = static_cast<float>(lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = *params_[i];
    const float decay = decays(p) ? static_cast<float>(1.0 - lr * config_.weight_decay) : 1.0f;
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const int64_t n = p.numel();
    for (int64_t j = 0; j < n; ++j) {
      m[j] = b1 * m[j] + one_minus_b1 * g[j];
      v[j] = b2 * v[j] + one_minus_b2 * g[j] * g[j];
      w[j] = w[j] * decay - step_lr * (m[j] * bc1) / (std::sqrt(v[j] * bc2) + eps);
    }
  }
}

double squared_sum(const Param& p) {
  double ss = 0.0;
  for (float g : p.grad) ss += static_cast<double>(g) * g;
  return ss;
}

double grad_norm(const std::vector<Param*>& params) {
  double ss = 0.0;
  for (const Param* p : params) ss += squared_sum(*p);
  return std::sqrt(ss);
}

void clip_to_norm(const std::vector<Param*>& params, double norm, double max_norm) {
  // torch: clip_coef = max_norm / (norm + 1e-6), applied when < 1
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) scale_grads(params, coef);
  }
}

void scale_grads(const std::vector<Param*>& params, double factor) {
  const float f = static_cast<float>(factor);
  for (Param* p : params)
    for (float& g : p->grad) g *= f;
}

double clip_grad_norm(const std::vector<Param*>& params, double max_norm) {
  const double norm = grad_norm(params);
  clip_to_norm(params, norm, max_norm);
  return norm;
}

}  // namespace moe::rt
