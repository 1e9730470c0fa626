// MoeLayer, the float runtime layer: its Params, its agreement with the float64 path, the
// balancing bias, eval mode, the loss scale and the spec checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "error.h"
#include "moe_layer.h"
#include "moe_test_util.h"

namespace moe::rt {
namespace {

JobSpec small_spec() {
  JobSpec s;
  s.model.d_model = 8;
  s.model.moe.num_experts = 4;
  s.model.moe.top_k = 2;
  s.model.moe.d_expert = 6;
  s.routing.capacity_factor = 1.0;
  s.routing.aux_loss_coef = 0.1;
  s.routing.z_loss_coef = 0.01;
  return s;
}

TEST(MoeLayer, ParamsHaveHuggingFaceNamesAndShapes) {
  JobSpec s = small_spec();
  s.model.moe.shared_experts = 2;
  s.model.moe.d_shared_expert = 3;
  MoeLayer layer(s, 5);
  auto params = layer.params();
  ASSERT_EQ(params.size(), 1u + 4 * 3 + 3);
  EXPECT_EQ(params[0]->name, "model.layers.5.block_sparse_moe.gate.weight");
  EXPECT_EQ(params[0]->shape, (std::vector<int64_t>{4, 8}));
  EXPECT_FALSE(params[0]->is_expert);
  EXPECT_EQ(params[4]->name, "model.layers.5.block_sparse_moe.experts.1.w1.weight");
  EXPECT_EQ(params[4]->shape, (std::vector<int64_t>{6, 8}));
  EXPECT_EQ(params[5]->name, "model.layers.5.block_sparse_moe.experts.1.w2.weight");
  EXPECT_EQ(params[5]->shape, (std::vector<int64_t>{8, 6}));
  EXPECT_TRUE(params[5]->is_expert);
  EXPECT_EQ(params[13]->name, "model.layers.5.block_sparse_moe.shared_expert.w1.weight");
  EXPECT_EQ(params[13]->shape, (std::vector<int64_t>{6, 8}));  // 2 × 3 wide
  EXPECT_FALSE(params[13]->is_expert);
}

TEST(MoeLayer, RefusesSettingsItCannotRun) {
  JobSpec s = small_spec();
  s.routing.n_group = 3;  // does not divide 4
  EXPECT_THROW(MoeLayer(s, 0), Error);
  s = small_spec();
  s.model.moe.shared_experts = 1;
  s.model.moe.d_shared_expert = 0;
  EXPECT_THROW(MoeLayer(s, 0), Error);
  s = small_spec();
  s.routing.score = "relu";
  EXPECT_THROW(MoeLayer(s, 0), Error);
}

// The float layer computes what the float64 path computes, forward and backward.
TEST(MoeLayer, FloatLayerAgreesWithFloat64Path) {
  JobSpec s = small_spec();
  s.model.moe.shared_experts = 1;
  s.model.moe.d_shared_expert = 4;
  MoeLayer layer(s, 0);
  const MoeConfig c = MoeConfig::from_spec(s);
  const int64_t T = 16, d = c.d_model;
  test::SmallMoe ref(c, T, 3, 0.5);
  auto params = layer.params();
  auto arrays = ref.arrays();
  ASSERT_EQ(params.size(), arrays.size());
  for (size_t i = 0; i < params.size(); ++i)
    for (size_t j = 0; j < arrays[i]->size(); ++j) {
      (*arrays[i])[j] = static_cast<float>((*arrays[i])[j]);  // both see the same float values
      params[i]->value[j] = static_cast<float>((*arrays[i])[j]);
    }
  std::vector<float> x(ref.x.begin(), ref.x.end()), g(ref.g.begin(), ref.g.end());
  for (size_t i = 0; i < x.size(); ++i) ref.x[i] = x[i], ref.g[i] = g[i];

  std::mt19937_64 rng(1);
  std::vector<float> y(T * d), dx(T * d);
  layer.forward(x.data(), y.data(), T, {}, rng);
  layer.backward(g.data(), dx.data());

  MoeCompute<double> m(c);
  std::vector<double> yd(T * d), dxd(T * d);
  std::mt19937_64 rng2(1);
  m.forward(ref.weights(), ref.x.data(), yd.data(), T, {}, ref.bias.data(), rng2);
  EXPECT_EQ(layer.stats().counts, m.stats().counts);
  EXPECT_EQ(layer.stats().dropped, m.stats().dropped);
  EXPECT_NEAR(layer.stats().aux_loss, m.stats().aux_loss, 1e-6);
  EXPECT_NEAR(layer.stats().z_loss, m.stats().z_loss, 1e-6);
  double scale = 0;
  for (double v : yd) scale = std::max(scale, std::abs(v));
  for (int64_t i = 0; i < T * d; ++i) EXPECT_NEAR(y[i], yd[i], 1e-5 * scale) << i;

  std::vector<std::vector<double>> grads;
  for (auto* a : arrays) grads.emplace_back(a->size(), 0.0);
  MoeGrads<double> gd;
  gd.gate = grads[0].data();
  for (int64_t e = 0; e < 4; ++e) {
    gd.experts.w1.push_back(grads[1 + 3 * e].data());
    gd.experts.w2.push_back(grads[2 + 3 * e].data());
    gd.experts.w3.push_back(grads[3 + 3 * e].data());
  }
  gd.shared = {{grads[13].data()}, {grads[14].data()}, {grads[15].data()}};
  m.backward(ref.weights(), gd, ref.g.data(), dxd.data());
  for (size_t i = 0; i < params.size(); ++i) {
    double gscale = 1e-3;
    for (double v : grads[i]) gscale = std::max(gscale, std::abs(v));
    for (size_t j = 0; j < grads[i].size(); ++j)
      EXPECT_NEAR(params[i]->grad[j], grads[i][j], 1e-4 * gscale) << params[i]->name << "[" << j << "]";
  }
  for (int64_t i = 0; i < T * d; ++i) EXPECT_NEAR(dx[i], dxd[i], 1e-4 * scale) << i;
}

TEST(MoeLayer, BalancingBiasFollowsTheSignRule) {
  JobSpec s = small_spec();
  s.routing.bias_balancing.enabled = true;
  s.routing.bias_balancing.update_rate = 0.01;
  MoeLayer layer(s, 0);
  layer.update_balancing_bias({10, 2, 4, 4});  // mean 5
  const auto& b = layer.balancing_bias();
  EXPECT_FLOAT_EQ(b[0], -0.01f);
  EXPECT_FLOAT_EQ(b[1], 0.01f);
  EXPECT_FLOAT_EQ(b[2], 0.01f);
  EXPECT_THROW(layer.update_balancing_bias({1, 2}), Error);
  s.routing.bias_balancing.enabled = false;
  MoeLayer off(s, 0);
  off.update_balancing_bias({10, 2, 4, 4});
  EXPECT_EQ(off.balancing_bias(), (std::vector<float>(4, 0.0f)));
}

// From a router that sends everything to expert 0, the selection-only bias alone (no training)
// spreads the load: max/mean falls from 2 (top-2 of 4 all on experts 0 and 1) to near 1.
TEST(MoeLayer, BiasBalancingEvensOutACollapsedRouter) {
  JobSpec s = small_spec();
  s.routing.capacity_factor = 0.0;
  s.routing.score = "sigmoid";
  s.routing.bias_balancing.enabled = true;
  s.routing.bias_balancing.update_rate = 0.005;
  MoeLayer layer(s, 0);
  std::mt19937_64 rng(2);
  layer.init_params(rng, 0.2);
  auto* gate = layer.params()[0];
  const int64_t T = 64, d = 8;
  std::vector<float> x(T * d), y(T * d);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = normal(rng);
  for (int64_t t = 0; t < T; ++t) x[t * d] = 1.0f;
  for (int64_t e = 0; e < 4; ++e) gate->value[e * d] = e < 2 ? 3.0f : -3.0f;  // collapse onto 0, 1
  auto imbalance = [&] {
    layer.forward(x.data(), y.data(), T, {}, rng);
    const auto& c = layer.stats().counts;
    return static_cast<double>(*std::max_element(c.begin(), c.end())) / (2.0 * T / 4);
  };
  const double before = imbalance();
  double after = 0;  // mean over the last 100 steps: the fixed-step sign rule oscillates a little
  for (int step = 0; step < 600; ++step) {
    const double now = imbalance();
    if (step >= 500) after += now / 100;
    layer.update_balancing_bias(layer.stats().counts);
  }
  EXPECT_GE(before, 1.8);
  EXPECT_LT(after, 1.3);
}

TEST(MoeLayer, EvalIsDroplessAndNoiseless) {
  JobSpec s = small_spec();
  s.routing.capacity_factor = 0.5;
  s.routing.jitter = 0.3;
  MoeLayer layer(s, 0);
  std::mt19937_64 rng(4);
  layer.init_params(rng, 0.5);
  const int64_t T = 20, d = 8;
  std::vector<float> x(T * d), y1(T * d), y2(T * d), y3(T * d);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = normal(rng);
  MoeLayerOptions eval;
  eval.training = false;
  eval.force_dropless = true;
  std::mt19937_64 a(1), b(2);
  layer.forward(x.data(), y1.data(), T, eval, a);
  for (int64_t v : layer.stats().dropped) EXPECT_EQ(v, 0);
  layer.forward(x.data(), y2.data(), T, eval, b);
  EXPECT_EQ(y1, y2);  // no noise: the rng does not matter
  MoeLayerOptions train;
  std::mt19937_64 c(1);
  layer.forward(x.data(), y3.data(), T, train, c);
  int64_t dropped = 0;
  for (int64_t v : layer.stats().dropped) dropped += v;
  EXPECT_GT(dropped, 0);  // C = ceil(0.5·20·2/4) = 5 < 10 on average
  EXPECT_NE(y1, y3);
}

// loss_scale weights the aux and z losses: with dy = 0 only they reach the router.
TEST(MoeLayer, LossScaleWeightsTheBalancingLosses) {
  JobSpec s = small_spec();
  MoeLayer layer(s, 0);
  std::mt19937_64 rng(5);
  layer.init_params(rng, 0.5);
  const int64_t T = 12, d = 8;
  std::vector<float> x(T * d), y(T * d), dy(T * d, 0.0f), dx(T * d);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = normal(rng);
  auto gate_grad = [&](double scale) {
    for (Param* p : layer.params()) p->zero_grad();
    MoeLayerOptions o;
    o.loss_scale = scale;
    layer.forward(x.data(), y.data(), T, o, rng);
    layer.backward(dy.data(), dx.data());
    return layer.params()[0]->grad;
  };
  const auto g1 = gate_grad(1.0), g3 = gate_grad(3.0);
  double norm = 0;
  for (size_t i = 0; i < g1.size(); ++i) {
    EXPECT_NEAR(g3[i], 3.0f * g1[i], 1e-6);
    norm += std::abs(g1[i]);
  }
  EXPECT_GT(norm, 1e-4);
  for (Param* p : layer.params()) {
    if (!p->is_expert) continue;
    for (float v : p->grad) EXPECT_EQ(v, 0.0f);  // dy = 0: no expert gradient
  }
}

}  // namespace
}  // namespace moe::rt

namespace moe::rt {
namespace {

// An empty micro-batch (a rank or a chunk with no tokens) runs through and reports nothing.
TEST(MoeLayer, ZeroTokensIsANoOp) {
  MoeLayer layer(small_spec(), 0);
  std::mt19937_64 rng(1);
  layer.init_params(rng, 0.5);
  std::vector<float> none;
  layer.forward(none.data(), none.data(), 0, {}, rng);
  layer.backward(none.data(), none.data());
  EXPECT_EQ(layer.stats().counts, (std::vector<int64_t>(4, 0)));
  EXPECT_EQ(layer.stats().aux_loss, 0.0);
  EXPECT_EQ(layer.stats().z_loss, 0.0);
  for (Param* p : layer.params())
    for (float v : p->grad) ASSERT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace moe::rt
