// The pipeline step played out with uneven stages and recomputation (core/pipeline_timing.h):
// hand-worked timelines, the formula for equal stages, and which backwards recompute.
#include <gtest/gtest.h>

#include <algorithm>

#include "pipeline_timing.h"

namespace {

using moe::Recompute;

int64_t count(const std::vector<bool>& v) { return static_cast<int64_t>(std::count(v.begin(), v.end(), true)); }

TEST(PipelineTiming, EqualStagesWithoutRecomputationGiveTheFormula) {
  for (int64_t pp = 1; pp <= 4; ++pp)
    for (int64_t v = 1; v <= 3; ++v)
      for (int64_t m = pp; m <= 12; m += pp) {
        if (v > 1 && pp == 1) continue;
        const size_t virtual_stages = static_cast<size_t>(pp * v);
        // One micro-batch's forward through a whole stage takes 1, its backward 2: 1/v per chunk.
        const std::vector<double> f(virtual_stages, 1.0 / double(v)), b(virtual_stages, 2.0 / double(v));
        const moe::PipelineTiming t = moe::time_pipeline(pp, v, m, f, b, Recompute::none);
        ASSERT_TRUE(t.complete) << pp << " " << v << " " << m;
        for (double busy : t.busy) EXPECT_NEAR(busy, 3.0 * double(m), 1e-9);
        EXPECT_NEAR(t.makespan, 3.0 * double(m) + 3.0 * double(pp - 1) / double(v), 1e-9) << pp << " " << v << " " << m;
        EXPECT_NEAR(t.idle_share(), double(pp - 1) / double(v * m + pp - 1), 1e-12) << pp << " " << v << " " << m;
      }
}

// Two stages, two micro-batches, forward/backward 1/2 on stage 0 and 3/5 on stage 1. Stage 0 runs
// F0 F1 B0 B1, stage 1 F0 B0 F1 B1; a recompute R runs as soon as its stage is free:
//   none:  s0 F0 [0,1] F1 [1,2]; s1 F0 [1,4] B0 [4,9] F1 [9,12] B1 [12,17]; s0 B0 [9,11] B1 [17,19].
//   stage: s0's backwards follow other ops, so each recomputes: R0 [2,3] while s1 works, B0 [9,11],
//          R1 [11,12], B1 [17,19]: the same step, two more units of work on s0.
//   full:  s1 too: R0 [4,7] B0 [7,12] F1 [12,15] R1 [15,18] B1 [18,23]; s0 R0 [2,3] B0 [12,14]
//          R1 [14,15] B1 [23,25].
TEST(PipelineTiming, UnevenStagesAsWorkedByHand) {
  const std::vector<double> f{1, 3}, b{2, 5};
  const moe::PipelineTiming none = moe::time_pipeline(2, 1, 2, f, b, Recompute::none);
  EXPECT_TRUE(none.complete);
  EXPECT_DOUBLE_EQ(none.makespan, 19);
  EXPECT_EQ(none.busy, (std::vector<double>{6, 16}));
  EXPECT_EQ(none.recomputes, (std::vector<int64_t>{0, 0}));
  const moe::PipelineTiming stage = moe::time_pipeline(2, 1, 2, f, b, Recompute::stage);
  EXPECT_DOUBLE_EQ(stage.makespan, 19);
  EXPECT_EQ(stage.busy, (std::vector<double>{8, 16}));
  EXPECT_EQ(stage.recomputes, (std::vector<int64_t>{2, 0}));
  EXPECT_DOUBLE_EQ(stage.idle_share(), (11.0 / 19 + 3.0 / 19) / 2);
  const moe::PipelineTiming full = moe::time_pipeline(2, 1, 2, f, b, Recompute::full);
  EXPECT_DOUBLE_EQ(full.makespan, 25);
  EXPECT_EQ(full.busy, (std::vector<double>{8, 22}));
  EXPECT_EQ(full.recomputes, (std::vector<int64_t>{2, 2}));
}

// One micro-batch: each stage's backward follows its own forward, so nothing is recomputed under
// stage; the step is the sum of all stages' forwards and backwards.
TEST(PipelineTiming, OneMicroBatchRunsStraightThrough) {
  const moe::PipelineTiming t = moe::time_pipeline(3, 1, 1, {1, 2, 4}, {8, 16, 32}, Recompute::stage);
  EXPECT_DOUBLE_EQ(t.makespan, 63);
  EXPECT_EQ(t.recomputes, (std::vector<int64_t>{0, 0, 0}));
}

// moe-runtime's rule (stage): under 1F1B every stage but the last recomputes every micro-batch
// (its forward is never the op right before its backward) unless there is only one; the last stage
// never does. With chunks
// only the model's last chunk's backwards can follow their forward. Full recomputes every backward.
TEST(PipelineTiming, WhichBackwardsRecompute) {
  for (int64_t pp = 2; pp <= 4; ++pp)
    for (int64_t m = 1; m <= 8; ++m)
      for (int64_t s = 0; s < pp; ++s) {
        const auto ops = moe::one_f_one_b(pp, s, m);
        EXPECT_EQ(count(moe::recomputed_backwards(ops, Recompute::stage)), s == pp - 1 || m == 1 ? 0 : m) << pp << " " << s << " " << m;
        EXPECT_EQ(count(moe::recomputed_backwards(ops, Recompute::full)), m);
        EXPECT_EQ(count(moe::recomputed_backwards(ops, Recompute::none)), 0);
      }
  for (int64_t s = 0; s < 2; ++s) {
    const auto ops = moe::interleaved_one_f_one_b(2, s, 4, 2);
    const auto flags = moe::recomputed_backwards(ops, Recompute::stage);
    for (size_t i = 0; i < ops.size(); ++i) {
      if (flags[i]) {
        EXPECT_FALSE(i > 0 && ops[i - 1] == (moe::PipelineOp{true, ops[i].micro, ops[i].chunk}));
      } else if (!ops[i].forward) {
        EXPECT_TRUE(s == 1 && ops[i].chunk == 1) << "op " << i;
      }
    }
  }
}

// The interleaved order with micro-batches pp does not divide can deadlock (pipeline_schedule.h):
// the play-out says so instead of returning a time.
TEST(PipelineTiming, ADeadlockedOrderIsNotComplete) {
  const std::vector<double> f(12, 1.0), b(12, 2.0);
  EXPECT_FALSE(moe::time_pipeline(4, 3, 5, f, b, Recompute::none).complete);
  EXPECT_TRUE(moe::time_pipeline(4, 3, 8, f, b, Recompute::none).complete);
}

}  // namespace
