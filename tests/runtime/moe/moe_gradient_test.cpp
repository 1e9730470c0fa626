// Gradient checks of the whole MoE block in float64: central differences of
// L = Σ y·g + aux + z against backward(g), for every parameter and every input element, under
// each routing mode. The routing must not change under the ±h perturbation (checked), so the
// objective is smooth where we differentiate; h = 1e-6 gives errors ~1e-10, the tolerance is 1e-7.
#include <gtest/gtest.h>

#include <cmath>

#include "moe_test_util.h"

namespace moe::rt {
namespace {

using test::SmallMoe;

MoeConfig base_config() {
  MoeConfig c;
  c.d_model = 6;
  c.num_experts = 4;
  c.top_k = 2;
  c.d_expert = 5;
  c.capacity_factor = 0.0;
  c.aux_loss_coef = 0.3;
  c.z_loss_coef = 0.05;
  return c;
}

struct GradCheckResult {
  int64_t checked = 0;
  double max_error = 0;
};

// Compares backward() with central differences over all parameters and inputs.
GradCheckResult check_gradients(SmallMoe& moe, const MoeLayerOptions& options, uint64_t noise_seed = 7) {
  MoeCompute<double> m(moe.config);
  const double h = 1e-6, tol = 1e-7;
  moe.loss(m, options, noise_seed);
  const Assignments reference = m.assignments();
  // Analytic gradients.
  std::vector<std::vector<double>> grads;
  for (auto* a : moe.arrays()) grads.emplace_back(a->size(), 0.0);
  MoeGrads<double> g;
  g.gate = grads[0].data();
  size_t i = 1;
  for (int64_t e = 0; e < moe.config.num_experts; ++e, i += 3) {
    g.experts.w1.push_back(grads[i].data());
    g.experts.w2.push_back(grads[i + 1].data());
    g.experts.w3.push_back(grads[i + 2].data());
  }
  if (moe.config.d_shared > 0) g.shared = {{grads[i].data()}, {grads[i + 1].data()}, {grads[i + 2].data()}};
  std::vector<double> dx(moe.x.size());
  m.backward(moe.weights(), g, moe.g.data(), dx.data());

  GradCheckResult result;
  auto check = [&](std::vector<double>& values, const std::vector<double>& analytic, const std::string& what) {
    for (size_t j = 0; j < values.size(); ++j) {
      const double saved = values[j];
      values[j] = saved + h;
      const double plus = moe.loss(m, options, noise_seed);
      EXPECT_EQ(m.assignments().route, reference.route) << what << "[" << j << "]: routing changed under +h";
      values[j] = saved - h;
      const double minus = moe.loss(m, options, noise_seed);
      EXPECT_EQ(m.assignments().route, reference.route) << what << "[" << j << "]: routing changed under -h";
      values[j] = saved;
      const double numeric = (plus - minus) / (2 * h);
      const double error = std::abs(numeric - analytic[j]);
      EXPECT_LE(error, tol + 1e-6 * std::abs(numeric)) << what << "[" << j << "] numeric " << numeric
                                                        << " analytic " << analytic[j];
      result.max_error = std::max(result.max_error, error);
      ++result.checked;
    }
  };
  auto arrays = moe.arrays();
  for (size_t a = 0; a < arrays.size(); ++a) check(*arrays[a], grads[a], "param " + std::to_string(a));
  check(moe.x, dx, "x");
  return result;
}

// The gradient of every expert that got tokens is nonzero; run the check and the forward stats.
void expect_checked(const GradCheckResult& r) {
  EXPECT_GT(r.checked, 100);
  EXPECT_LT(r.max_error, 1e-7);
}

TEST(MoeGradient, Top1Switch) {
  MoeConfig c = base_config();
  c.top_k = 1;
  c.norm_topk_prob = false;  // Switch: the gate is the softmax probability
  SmallMoe moe(c, 9, 11);
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, Top2Dropless) {
  SmallMoe moe(base_config(), 9, 12);
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, Top2ScaledWithoutRenormalisation) {
  MoeConfig c = base_config();
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 2.5;
  SmallMoe moe(c, 9, 13);
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, ExpertChoice) {
  MoeConfig c = base_config();
  c.type = RoutingType::expert_choice;
  c.capacity_factor = 1.0;
  SmallMoe moe(c, 9, 14);
  MoeCompute<double> m(c);
  moe.loss(m, {}, 7);
  EXPECT_EQ(m.stats().counts, (std::vector<int64_t>(4, c.capacity(9))));
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, SigmoidWithBiasBalancingAndGroups) {
  MoeConfig c = base_config();
  c.score = ScoreFn::sigmoid;
  c.bias_balancing = true;
  c.n_group = 2;
  c.topk_group = 1;
  SmallMoe moe(c, 9, 15);
  moe.bias = {0.3f, -0.2f, 0.1f, 0.0f};
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, SharedExperts) {
  MoeConfig c = base_config();
  c.d_shared = 2 * 3;  // shared_experts 2 × d_shared_expert 3, as one FFN of width 6
  SmallMoe moe(c, 9, 16);
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, CapacityDropsPosition) {
  MoeConfig c = base_config();
  c.capacity_factor = 0.6;  // C = ceil(0.6·9·2/4) = 3: drops are certain
  SmallMoe moe(c, 9, 17);
  MoeCompute<double> m(c);
  moe.loss(m, {}, 7);
  int64_t dropped = 0;
  for (int64_t v : m.stats().dropped) dropped += v;
  EXPECT_GT(dropped, 0);
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, CapacityDropsProbability) {
  MoeConfig c = base_config();
  c.capacity_factor = 0.6;
  c.drop_policy = DropPolicy::probability;
  SmallMoe moe(c, 9, 18);
  MoeCompute<double> m(c);
  moe.loss(m, {}, 7);
  int64_t dropped = 0;
  for (int64_t v : m.stats().dropped) dropped += v;
  EXPECT_GT(dropped, 0);
  expect_checked(check_gradients(moe, {}));
}

TEST(MoeGradient, JitterNoiseInTraining) {
  MoeConfig c = base_config();
  c.jitter = 0.2;
  SmallMoe moe(c, 9, 19);
  MoeLayerOptions training;
  training.training = true;
  expect_checked(check_gradients(moe, training));
}

// An expert that receives no token: it computes nothing, its weights get zero gradient, and the
// rest of the layer's gradient is still exact.
TEST(MoeGradient, ExpertWithZeroTokens) {
  MoeConfig c = base_config();
  SmallMoe moe(c, 9, 20);
  for (int64_t i = 0; i < c.d_model; ++i) moe.gate[3 * c.d_model + i] = 0.0;
  moe.bias = {0.0f, 0.0f, 0.0f, -100.0f};  // expert 3 is never selected
  MoeCompute<double> m(c);
  moe.loss(m, {}, 7);
  EXPECT_EQ(m.stats().counts[3], 0);
  expect_checked(check_gradients(moe, {}));
}

}  // namespace
}  // namespace moe::rt
