// AdamW, gradient clipping and the learning-rate schedule against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "optimizer.h"
#include "schedule.h"

using namespace moe::rt;

TEST(AdamW, TwoStepsMatchHandComputedValues) {
  // A matrix (decayed) and a norm weight (not decayed), both starting at 1 with the same grads.
  Param w("w", {1, 1}), norm("norm", {1});
  w.value = {1.0f}, norm.value = {1.0f};
  AdamW opt({&w, &norm}, AdamWConfig{0.9, 0.999, 1e-8, 0.1});
  // Step 1, g = 0.5, lr = 0.1:
  //   decay: 1 − 0.1·0.1·1 = 0.99;  m = 0.05, v = 0.00025;  m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25
  //   w = 0.99 − 0.1 · 0.5 / (0.5 + 1e-8) = 0.89;  norm (no decay) = 1 − 0.1 = 0.9
  w.grad = {0.5f}, norm.grad = {0.5f};
  opt.step(0.1);
  EXPECT_NEAR(w.value[0], 0.89, 1e-6);
  EXPECT_NEAR(norm.value[0], 0.9, 1e-6);
  // Step 2, g = −1:
  //   decay: 0.89 · 0.99 = 0.8811;  m = 0.045 − 0.1 = −0.055;  v = 0.00024975 + 0.001 = 0.00124975
  //   m̂ = −0.055 / 0.19 = −0.2894737;  v̂ = 0.00124975 / 0.001999 = 0.6251876, sqrt = 0.7906880
  //   step = 0.1 · (−0.2894737) / 0.7906880 = −0.0366105
  //   w = 0.8811 + 0.0366105 = 0.9177105;  norm = 0.9 + 0.0366105 = 0.9366105
  w.grad = {-1.0f}, norm.grad = {-1.0f};
  opt.step(0.1);
  EXPECT_NEAR(w.value[0], 0.9177105, 2e-6);
  EXPECT_NEAR(norm.value[0], 0.9366105, 2e-6);
  EXPECT_EQ(opt.steps(), 2);
  EXPECT_NEAR(opt.exp_avg()[0][0], -0.055, 1e-7);
  EXPECT_NEAR(opt.exp_avg_sq()[0][0], 0.00124975, 1e-9);
}

TEST(AdamW, DecayAppliesToMatricesOnly) {
  EXPECT_TRUE(AdamW::decays(Param("model.layers.0.self_attn.q_proj.weight", {4, 4})));
  EXPECT_FALSE(AdamW::decays(Param("model.norm.weight", {4})));
  // With zero gradients only the decay moves a matrix: w ← w · (1 − lr · wd).
  Param w("w", {2, 2}), norm("n", {4});
  w.value = {1, -2, 3, -4};
  norm.value = {1, 1, 1, 1};
  AdamW opt({&w, &norm}, AdamWConfig{0.9, 0.95, 1e-8, 0.5});
  opt.step(0.2);
  EXPECT_FLOAT_EQ(w.value[1], -2.0f * 0.9f);
  EXPECT_FLOAT_EQ(w.value[3], -4.0f * 0.9f);
  EXPECT_EQ(norm.value, (std::vector<float>{1, 1, 1, 1}));
}

TEST(GradClip, ScalesToTheMaximumGlobalNorm) {
  Param a("a", {2}), b("b", {1, 1});
  a.grad = {3.0f, 0.0f};
  b.grad = {4.0f};
  EXPECT_NEAR(grad_norm({&a, &b}), 5.0, 1e-12);
  EXPECT_NEAR(clip_grad_norm({&a, &b}, 10.0), 5.0, 1e-12);  // under the limit: untouched
  EXPECT_EQ(a.grad[0], 3.0f);
  EXPECT_NEAR(clip_grad_norm({&a, &b}, 1.0), 5.0, 1e-12);  // returns the norm before clipping
  EXPECT_NEAR(a.grad[0], 0.6, 1e-6);
  EXPECT_NEAR(b.grad[0], 0.8, 1e-6);
  EXPECT_NEAR(grad_norm({&a, &b}), 1.0, 1e-6);
  scale_grads({&a, &b}, 2.0);
  EXPECT_NEAR(b.grad[0], 1.6, 1e-6);
  EXPECT_NEAR(clip_grad_norm({&a, &b}, 0.0), 2.0, 1e-6);  // 0: no clipping
  EXPECT_NEAR(b.grad[0], 1.6, 1e-6);
}

TEST(LrSchedule, WarmupThenCosineToTheFloor) {
  const LrSchedule s{1.0, 0.1, 4, 13};
  // Warmup: (s + 1) / 4.
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(1), 0.5);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);
  // Cosine over steps 4..12 (span 8): peak, a quarter, half, floor.
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(6), 0.1 + 0.45 * (1 + std::cos(M_PI / 4)), 1e-12);  // 0.8681981
  EXPECT_NEAR(s.at(6), 0.8681981, 1e-7);
  EXPECT_NEAR(s.at(8), 0.55, 1e-12);
  EXPECT_NEAR(s.at(12), 0.1, 1e-12);
  EXPECT_NEAR(s.at(20), 0.1, 1e-12);  // past the end: stays at the floor
  // No warmup: the first step runs at the peak.
  EXPECT_DOUBLE_EQ((LrSchedule{2.0, 0.5, 0, 10}).at(0), 2.0);
}
