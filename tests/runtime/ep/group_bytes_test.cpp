// The gradient sums' payload per group (issue 15): every step record of a multi-rank run carries
// grad_bytes, what rank 0 handed to each gradient all-reduce, and with float gradients (the fast
// arithmetic) it equals the cost model's per-group figure for the recorded spec exactly.
#include <gtest/gtest.h>

#include <string>

#include "ep_run_support.h"

namespace {

using namespace ep_test;

// dp 2 × ep 2: the dense gradients go over all 4 ranks, the experts' over the 2 dp replicas.
TEST(GroupBytes, GradientSumsEqualTheCostModelPerGroup) {
  const TrainRun run = train("group_bytes_dp2ep2", 4, " --set parallel.dp=2 --set parallel.ep=2 --set train.micro_batch=2"
                                                      " --set train.steps=3 --set runtime.deterministic=false");
  ASSERT_EQ(run.rc, 0) << run.err;
  const moe::Plan plan = plan_of(run);
  ASSERT_GT(plan.time.dense_dp_bytes, 0);
  ASSERT_GT(plan.time.expert_dp_bytes, 0);
  const auto steps = run.of("step");
  ASSERT_EQ(steps.size(), 3u);
  for (const auto& s : steps) {
    ASSERT_TRUE(s.contains("grad_bytes")) << s.dump();
    EXPECT_EQ(s["grad_bytes"]["dense_dp"].get<int64_t>(), static_cast<int64_t>(plan.time.dense_dp_bytes)) << "step " << s["step"];
    EXPECT_EQ(s["grad_bytes"]["expert_dp"].get<int64_t>(), static_cast<int64_t>(plan.time.expert_dp_bytes)) << "step " << s["step"];
  }
}

// tp 2 × ep 2, plain, with sequence parallelism, with experts split over tp and with shared
// experts: the dense gradients (the vocab-parallel embedding and head and the shared experts split
// like attention) go over the 2 data ranks, and what the tp ranks computed from their token shares
// over tp: the routers and the whole experts (etp 1), the norms too with sequence parallelism.
// Each is the cost model's figure.
TEST(GroupBytes, TensorParallelGradientSumsEqualTheCostModel) {
  const std::string shared = " --set model.moe.shared_experts=1 --set model.moe.d_shared_expert=128";
  for (const std::string& layout : {std::string(), std::string(" --set parallel.sequence_parallel=true"),
                                   std::string(" --set parallel.etp=2"),
                                   " --set parallel.sequence_parallel=true --set parallel.etp=2" + shared, shared}) {
    const TrainRun run = train("group_bytes_tp2ep2", 4, " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4"
                                                       " --set train.steps=2 --set runtime.deterministic=false" + layout);
    ASSERT_EQ(run.rc, 0) << layout << ": " << run.err;
    const moe::Plan plan = plan_of(run);
    ASSERT_GT(plan.time.tp_grad_bytes, 0);
    for (const auto& s : run.of("step")) {
      EXPECT_EQ(s["grad_bytes"]["dense_dp"].get<int64_t>(), static_cast<int64_t>(plan.time.dense_dp_bytes)) << layout;
      EXPECT_EQ(s["grad_bytes"]["tp"].get<int64_t>(), static_cast<int64_t>(plan.time.tp_grad_bytes)) << layout;
      EXPECT_EQ(s["tp_bytes"].get<int64_t>(), static_cast<int64_t>(plan.time.tp_bytes)) << layout;
    }
  }
}

// tp 4 × ep 2 with each expert split over 2 of the 4 tp ranks (parallel.etp 2): each slice's two
// copies are summed over the tp ranks holding it (etp_copies), the routers over tp; both, and the
// expert rows' gathers, are the cost model's figures. The gathers' is the expectation (equal when
// dropless without ep, TpEquivalence.Tp4Etp2…); here the measured figure is the rows the
// all-to-all delivered to rank 0's etp group (global ranks 0 and 1: the a2a records' rank_rows),
// 4 collectives of d floats each.
TEST(GroupBytes, ExpertSliceCopiesSumEqualsTheCostModel) {
  const TrainRun run = train("group_bytes_tp4ep2etp2", 8, " --set parallel.tp=4 --set parallel.etp=2 --set parallel.ep=2"
                                                          " --set train.micro_batch=4 --set cluster.nodes.0.slots=8"
                                                          " --set train.steps=2 --set runtime.deterministic=false --set routing.capacity_factor=0");
  ASSERT_EQ(run.rc, 0) << run.err;
  const moe::Plan plan = plan_of(run);
  ASSERT_GT(plan.time.etp_copy_bytes, 0);
  for (const auto& s : run.of("step")) {
    EXPECT_EQ(s["grad_bytes"]["etp_copies"].get<int64_t>(), static_cast<int64_t>(plan.time.etp_copy_bytes)) << s.dump();
    EXPECT_EQ(s["grad_bytes"]["tp"].get<int64_t>(), static_cast<int64_t>(plan.time.tp_grad_bytes)) << s.dump();
    EXPECT_EQ(s["grad_bytes"]["dense_dp"].get<int64_t>(), static_cast<int64_t>(plan.time.dense_dp_bytes)) << s.dump();
    EXPECT_EQ(s["tp_bytes"].get<int64_t>(), static_cast<int64_t>(plan.time.tp_bytes)) << s.dump();
    int64_t rows = 0;
    for (const auto& a : run.of("a2a"))
      if (a["step"] == s["step"] && a["phase"] == "dispatch" && a["pass"] == "fwd")
        rows += a["rank_rows"][0].get<int64_t>() + a["rank_rows"][1].get<int64_t>();
    EXPECT_GT(rows, 0);
    EXPECT_EQ(s["etp_bytes"].get<int64_t>(), 4 * rows * 128 * 4) << s.dump();
  }
}

// ep 2 with 5 slots per rank for 8 experts: 2 spare slots, each holding a replica of one expert,
// whose gradients are summed over the EP group: the cost model's replica_bytes.
TEST(GroupBytes, ReplicaSumsEqualTheCostModel) {
  const TrainRun run = train("group_bytes_replicas", 2, " --set parallel.ep=2 --set train.micro_batch=4 --set train.steps=3"
                                                        " --set runtime.deterministic=false --set placement.strategy=replicate"
                                                        " --set placement.slots_per_rank=5");
  ASSERT_EQ(run.rc, 0) << run.err;
  const moe::Plan plan = plan_of(run);
  ASSERT_GT(plan.time.replica_bytes, 0);
  for (const auto& s : run.of("step"))
    EXPECT_EQ(s["grad_bytes"].value("replicas", int64_t{-1}), static_cast<int64_t>(plan.time.replica_bytes)) << "step " << s["step"];
}

// ep 4 alone: the experts have no replica to sum with (the cost model says 0 too), and the
// deterministic arithmetic sums its exact integers (runtime/ops/exact_sum.h): two int64 limbs per
// float and one "bad" counter per tensor, 4× the float payload plus 8 bytes a tensor.
TEST(GroupBytes, DeterministicSumsCarryTheExactLimbs) {
  const TrainRun run = train("group_bytes_ep4", 4, " --set parallel.ep=4 --set train.micro_batch=2 --set train.steps=2");
  ASSERT_EQ(run.rc, 0) << run.err;
  const moe::Plan plan = plan_of(run);
  EXPECT_EQ(plan.time.expert_dp_bytes, 0);
  for (const auto& s : run.of("step")) {
    EXPECT_FALSE(s["grad_bytes"].contains("expert_dp"));
    const int64_t dense = s["grad_bytes"]["dense_dp"], planned = static_cast<int64_t>(plan.time.dense_dp_bytes);
    const int64_t counters = dense - 4 * planned;
    EXPECT_GT(counters, 0) << dense << " vs " << planned;
    EXPECT_EQ(counters % 8, 0) << dense << " vs " << planned;
    EXPECT_LT(counters, 8 * 64) << "one counter per dense tensor (tiny-cpu here has 17)";
  }
}

}  // namespace
