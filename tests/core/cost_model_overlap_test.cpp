// Cost model: FP8 GEMMs, interleaved pipeline stages (parallel.vpp) and batch-level all-to-all
// overlap (parallel.batch_overlap) against the formulas of docs/cost-model.md §6, worked from the
// plan's own FLOP and byte breakdowns.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cost_model.h"
#include "hardware_profile.h"
#include "job_spec.h"
#include "spec_validation.h"

using namespace moe;

namespace {

HardwareProfile gpu(double fp8_peak = 2e15, double sms = 0) {
  HardwareProfile h;
  h.name = "test-gpu";
  h.memory_bytes = 80.0 * 1024 * 1024 * 1024;
  h.peak_flops_bf16 = 1e15;
  h.peak_flops_fp32 = 1e14;
  h.peak_flops_fp8 = fp8_peak;
  h.sms = sms;
  h.intra_node_bw = 400e9;
  h.inter_node_bw = 50e9;
  h.efficiency = 0.5;
  h.comm_efficiency = 1.0;
  return h;
}

Plan plan(const std::vector<std::string>& overrides, const HardwareProfile& hw = gpu()) {
  return plan_job(parse_spec("{}", overrides), hw);
}

}  // namespace

// One GPU: the linear layers' FLOPs (attention projections, experts, shared experts) at the FP8
// rate, the attention scores, the routers and the head at the bf16 rate; MFU stays against bf16.
TEST(Fp8, LinearLayersRunAtTheFp8Peak) {
  const std::vector<std::string> bf16 = {"runtime.dtype=bf16", "model.moe.shared_experts=1"};
  std::vector<std::string> fp8 = bf16;
  fp8.push_back("runtime.fp8=hybrid");
  const Plan b = plan(bf16), f = plan(fp8);
  const JobSpec s = parse_spec("{}", fp8);
  const double tokens = f.tokens_per_step;
  const double router = 3 * tokens * double(s.model.moe_layers()) * 2 * double(s.model.d_model * s.model.moe.num_experts);
  const double linear = f.flops.dense_matmul - router + f.flops.expert_matmul;
  const double other = f.flops.attention + f.flops.head + router;
  EXPECT_NEAR(b.time.compute, (linear + other) / (1e15 * 0.5), 1e-12 * b.time.compute);
  EXPECT_NEAR(f.time.compute, linear / (2e15 * 0.5) + other / (1e15 * 0.5), 1e-12 * f.time.compute);
  EXPECT_LT(f.time.compute, b.time.compute);
  EXPECT_GT(f.time.compute, b.time.compute / 2);  // the bf16 part stays
  EXPECT_NEAR(f.time.mfu, f.flops.per_step / (f.time.step * 1e15), 1e-12);
  EXPECT_EQ(f.memory.peak, b.memory.peak);  // bf16 weights, fp32 master copies: unchanged
  // Hardware without FP8: the plan keeps the bf16 rate, and validation against it says why.
  EXPECT_EQ(plan(fp8, gpu(0)).time.compute, b.time.compute);
  HardwareProfile old = gpu(0);
  old.name = "old-gpu";
  bool named = false;
  for (const Diagnostic& d : validate_spec(s, &old))
    named |= d.severity == Severity::error && d.path == "runtime.fp8" && d.message.find("old-gpu has no FP8") != std::string::npos;
  EXPECT_TRUE(named);
}

// Interleaving: vpp chunks per rank divide the bubble by vpp (Narayanan et al. 2021), send vpp
// times the activations (overlapped with the next chunk's computation), and keep
// pp + (pp − 1)/vpp micro-batches of activations on the first stage.
TEST(Interleaving, DividesTheBubbleAndMultipliesTheTransfers) {
  // A one-token vocabulary: the head costs next to nothing, so the stages (and chunks) are equal
  // and the bubble is the formula's (uneven stages: Time.PipelineBubbleAndOverlap, Recompute.*).
  const std::vector<std::string> base = {"parallel.pp=4", "model.n_layers=8", "cluster.nodes.0.slots=4",
                                         "parallel.gpus_per_node=1", "train.grad_accum=8", "model.vocab_size=1"};
  std::vector<std::string> v2 = base;
  v2.push_back("parallel.vpp=2");
  const Plan one = plan(base), two = plan(v2);
  EXPECT_EQ(two.time.pp_bytes, 2 * one.time.pp_bytes);
  EXPECT_EQ(one.time.pp_p2p_exposed, one.time.pp_p2p);
  EXPECT_EQ(two.time.pp_p2p_exposed, std::max(0.0, two.time.pp_p2p - two.time.compute));
  const auto pipelined = [](const TimeBreakdown& t) { return t.compute + t.a2a_exposed + t.tp + t.pp_p2p_exposed; };
  // (Within 1e-3: the one-token head still adds 2·d FLOPs per token to the last chunk.)
  EXPECT_NEAR(one.time.bubble / pipelined(one.time), 3.0 / 8, 1e-3);
  EXPECT_NEAR(two.time.bubble / pipelined(two.time), 3.0 / (2 * 8), 1e-3);
  EXPECT_NEAR(one.time.pp_idle_share, 3.0 / (8 + 3), 1e-3);
  EXPECT_NEAR(two.time.pp_idle_share, 3.0 / (2 * 8 + 3), 1e-3);
  EXPECT_LT(two.time.step, one.time.step);
  EXPECT_EQ(one.memory.stage, 0);
  EXPECT_EQ(one.memory.micro_batches_in_flight, 4);
  EXPECT_EQ(two.memory.stage, 0);
  EXPECT_EQ(two.memory.micro_batches_in_flight, 4 + 3.0 / 2);
  // Fewer micro-batches than the warm-up needs: all of them, no more.
  std::vector<std::string> few = v2;
  few.push_back("train.grad_accum=2");
  EXPECT_EQ(plan(few).memory.micro_batches_in_flight, 2);
}

// Batch-level overlap: of the m·vpp chunks, all but the warm-up (pp − 1; interleaved
// 2(pp − 1) + (vpp − 1)·pp) and the one after it have a partner; each pair hides its all-to-all
// behind the partner's computation, which runs on the SMs the all-to-all kernels leave (20).
TEST(BatchOverlap, HidesTheAllToAllBehindPairedComputation) {
  const std::vector<std::string> base = {"parallel.ep=4", "cluster.nodes.0.slots=4", "parallel.gpus_per_node=1",
                                         "train.grad_accum=8", "model.d_model=1024", "model.moe.d_expert=256"};
  std::vector<std::string> on = base;
  on.push_back("parallel.batch_overlap=true");
  const HardwareProfile hw = gpu(2e15, 132);
  const Plan off = plan(base, hw), ov = plan(on, hw);
  ASSERT_GT(off.time.a2a, 0);
  EXPECT_EQ(ov.time.overlap_paired, 7.0 / 8);
  const double compute = off.time.compute * (1 + 7.0 / 8 * 20 / 112);
  EXPECT_NEAR(ov.time.compute, compute, 1e-12 * compute);
  EXPECT_NEAR(ov.time.a2a_batch_hidden, 7.0 / 8 * std::min(off.time.a2a, compute), 1e-15);
  EXPECT_NEAR(ov.time.a2a_exposed, off.time.a2a - ov.time.a2a_batch_hidden, 1e-15);
  EXPECT_EQ(ov.time.a2a, off.time.a2a);
  // Unknown SM count: no slowdown.
  EXPECT_EQ(plan(on, gpu(2e15, 0)).time.compute, off.time.compute);
  // Interleaved pipeline: pp 2 × vpp 2 × 8 micro-batches = 16 chunks, warm-up 2·1 + 1·2 = 4.
  std::vector<std::string> piped = on;
  for (const char* o : {"parallel.pp=2", "parallel.vpp=2", "cluster.nodes.0.slots=8"}) piped.push_back(o);
  EXPECT_EQ(plan(piped, hw).time.overlap_paired, (16.0 - 4 - 1) / 16);
  // One micro-batch and no pipeline: nothing to pair with, the step is unchanged.
  std::vector<std::string> single = {"parallel.ep=4", "cluster.nodes.0.slots=4", "parallel.gpus_per_node=1",
                                     "parallel.batch_overlap=true"};
  const Plan lone = plan(single, hw);
  EXPECT_EQ(lone.time.overlap_paired, 0);
  EXPECT_EQ(lone.time.a2a_exposed, lone.time.a2a);
}
