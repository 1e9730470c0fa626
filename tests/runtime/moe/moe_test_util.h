#pragma once
// A small MoE block in float64 for the tests: its weights as plain arrays, the views MoeCompute
// takes, and the scalar objective L = Σ y · g + aux + z whose gradient backward(g) returns.
#include <random>
#include <vector>

#include "moe_compute.h"

namespace moe::rt::test {

struct SmallMoe {
  MoeConfig config;
  int64_t tokens = 0;
  std::vector<double> x, g, gate;  // x, g [T×d]; gate [E×d]
  std::vector<std::vector<double>> w1, w2, w3;
  std::vector<double> s1, s2, s3;  // shared expert
  std::vector<float> bias;

  SmallMoe(const MoeConfig& c, int64_t T, uint64_t seed, double gate_std = 0.7) : config(c), tokens(T) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto fill = [&](std::vector<double>& v, int64_t n, double std) {
      v.resize(n);
      for (double& a : v) a = std * normal(rng);
    };
    const int64_t d = c.d_model, f = c.d_expert, E = c.num_experts;
    fill(x, T * d, 1.0);
    fill(g, T * d, 1.0);
    fill(gate, E * d, gate_std);
    w1.resize(E), w2.resize(E), w3.resize(E);
    for (int64_t e = 0; e < E; ++e) fill(w1[e], f * d, 0.4), fill(w2[e], d * f, 0.4), fill(w3[e], f * d, 0.4);
    if (c.d_shared > 0) fill(s1, c.d_shared * d, 0.4), fill(s2, d * c.d_shared, 0.4), fill(s3, c.d_shared * d, 0.4);
    bias.assign(E, 0.0f);
  }

  MoeWeights<double> weights() const {
    MoeWeights<double> w;
    w.gate = gate.data();
    for (size_t e = 0; e < w1.size(); ++e) {
      w.experts.w1.push_back(w1[e].data());
      w.experts.w2.push_back(w2[e].data());
      w.experts.w3.push_back(w3[e].data());
    }
    if (config.d_shared > 0) w.shared = {{s1.data()}, {s2.data()}, {s3.data()}};
    return w;
  }

  // Every parameter array, in a fixed order (gate, experts' w1 w2 w3, shared w1 w2 w3).
  std::vector<std::vector<double>*> arrays() {
    std::vector<std::vector<double>*> out{&gate};
    for (size_t e = 0; e < w1.size(); ++e) out.insert(out.end(), {&w1[e], &w2[e], &w3[e]});
    if (config.d_shared > 0) out.insert(out.end(), {&s1, &s2, &s3});
    return out;
  }

  // L = Σ y·g + aux + z, with the jitter noise drawn from `seed` (the same noise every call).
  double loss(MoeCompute<double>& m, const MoeLayerOptions& options, uint64_t seed) {
    std::vector<double> y(x.size());
    std::mt19937_64 rng(seed);
    m.forward(weights(), x.data(), y.data(), tokens, options, bias.data(), rng);
    double l = m.stats().aux_loss + m.stats().z_loss;
    for (size_t i = 0; i < y.size(); ++i) l += y[i] * g[i];
    return l;
  }
};

}  // namespace moe::rt::test
