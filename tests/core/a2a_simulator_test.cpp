// The all-to-all simulator against the cost model's closed forms (uniform routing), against the
// exact per-routing accounting that the runtime's measured bytes are tested against
// (a2a_bytes_for_routing), and its behaviour under skew and at scale. Tolerances are the sampling
// error: 4 standard deviations of an estimate from `samples` token routes.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "a2a_simulator.h"
#include "cost_model.h"
#include "error.h"
#include "hardware_profile.h"
#include "job_spec.h"

using namespace moe;

namespace {

// 64 experts top-4, d 256 bf16, T = 512 tokens per GPU, 8 GPUs per node.
JobSpec sim_spec(int64_t ep, bool hierarchical) {
  return parse_spec("{}", {"model.d_model=256", "model.seq_len=512", "model.n_heads=4", "model.moe.num_experts=64",
                           "model.moe.top_k=4", "routing.capacity_factor=0", "parallel.ep=" + std::to_string(ep),
                           "parallel.gpus_per_node=8", std::string("parallel.hierarchical_a2a=") + (hierarchical ? "true" : "false"),
                           "train.micro_batch=1", "train.grad_accum=1",
                           "cluster.nodes.0.slots=" + std::to_string(ep), "runtime.dtype=bf16"});
}

const HardwareProfile& h100() { return find_hardware(builtin_hardware_profiles(), "H100-SXM"); }

// 4σ of a share q estimated from n Bernoulli trials, relative to q.
double rel_tol(double q, double n) { return 4 * std::sqrt((1 - q) / (q * n)); }

}  // namespace

TEST(A2aSimulator, UniformFlatAndHierarchicalBytesAreTheCostModelsClosedForms) {
  for (int64_t ep : {16, 32, 64}) {
    SCOPED_TRACE(ep);
    const JobSpec flat_spec = sim_spec(ep, false);
    const Plan plan = plan_job(flat_spec, h100());
    // The plan's figures are per step over four exchanges; one dispatch is a quarter.
    const double flat_inter = plan.a2a.flat_inter / 4, flat_intra = plan.a2a.flat_intra / 4;
    const double hier_inter = plan.a2a.hier_inter / 4, hier_intra = plan.a2a.hier_intra / 4;
    A2aSimulator sim(flat_spec, h100());
    const A2aSimResult f = sim.run({ep, 0.0, false});
    const A2aSimResult h = sim.run({ep, 0.0, true});
    EXPECT_EQ(f.ep, ep);
    EXPECT_EQ(f.nodes, ep / 8);
    const double S = double(sim.samples());
    const double off_node = 1.0 - 8.0 / double(ep);
    EXPECT_NEAR(f.send_inter, flat_inter, flat_inter * rel_tol(off_node, S * 4));
    EXPECT_NEAR(f.send_intra, flat_intra, flat_intra * rel_tol(7.0 / double(ep), S * 4));
    EXPECT_NEAR(h.send_inter, hier_inter, hier_inter * rel_tol(0.3, S));
    EXPECT_NEAR(h.send_intra, hier_intra, hier_intra * rel_tol(7.0 / double(ep), S * 4));
    EXPECT_LT(h.send_inter, f.send_inter) << "a token crosses to a node once, not once per expert there";
    EXPECT_NEAR(f.load_max_over_mean, 1.0, 0.05);
  }
}

// The exact bytes of sampled routings (a2a_bytes_for_routing: what the runtime's dispatcher
// measures, tests/runtime/ep) average to the simulator's expectation.
TEST(A2aSimulator, ExpectationMatchesTheExactAccountingOfSampledRoutings) {
  const int64_t ep = 8, E = 16, T = 2048;
  JobSpec s = parse_spec("{}", {"model.d_model=16", "model.seq_len=2048", "model.moe.num_experts=16",
                                "model.moe.top_k=2", "routing.capacity_factor=0", "parallel.ep=8",
                                "parallel.gpus_per_node=4", "train.micro_batch=1", "train.grad_accum=1",
                                "cluster.nodes.0.slots=8", "runtime.dtype=fp32"});
  std::mt19937_64 rng(7);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> kept(ep);
  for (int64_t m = 0; m < ep; ++m)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t a = int64_t(rng() % E);
      int64_t b = int64_t(rng() % (E - 1));
      if (b >= a) ++b;  // two distinct experts, uniformly
      kept[size_t(m)].push_back({t, a});
      kept[size_t(m)].push_back({t, b});
    }
  std::vector<int64_t> node_of = {0, 0, 0, 0, 1, 1, 1, 1};
  const A2aRouting routing = a2a_routing_from_copies(E, node_of, kept);
  A2aSimulator sim(s, h100());
  for (bool hierarchical : {false, true}) {
    SCOPED_TRACE(hierarchical);
    s.parallel.hierarchical_a2a = hierarchical;
    double exact_inter = 0;
    for (int64_t m = 0; m < ep; ++m) exact_inter += a2a_bytes_for_routing(s, routing, m)[0].inter;
    exact_inter /= double(ep);
    const A2aSimResult r = sim.run({ep, 0.0, hierarchical});
    // Both estimate one expectation: the exact side from ep·T tokens, the simulator from its samples.
    const double q = hierarchical ? 1 - (12.0 / 16) * (11.0 / 15) : 0.5;
    const double tol = 4 * std::sqrt((1 - q) / (q * double(ep * T))) + rel_tol(q, double(sim.samples()));
    EXPECT_NEAR(r.mean_send_inter, exact_inter, exact_inter * tol);
  }
}

TEST(A2aSimulator, SkewLoadsOneGpuAndSlowsTheExchange) {
  const JobSpec s = sim_spec(64, false);
  A2aSimulator sim(s, h100());
  const A2aSimResult uniform = sim.run({64, 0.0, false});
  const A2aSimResult mild = sim.run({64, 0.8, false});
  const A2aSimResult hot = sim.run({64, 1.2, false});
  EXPECT_GT(mild.load_max_over_mean, uniform.load_max_over_mean + 0.3);
  EXPECT_GT(hot.load_max_over_mean, mild.load_max_over_mean);
  EXPECT_GT(hot.recv_inter, uniform.recv_inter * 1.5) << "the hot GPU receives more";
  EXPECT_GT(hot.seconds, uniform.seconds);
  // The senders' side does not change much: every GPU still sends T·k copies.
  EXPECT_NEAR(hot.mean_send_inter, uniform.mean_send_inter, uniform.mean_send_inter * 0.1);
}

TEST(A2aSimulator, SweepFrom8To8192Gpus) {
  const JobSpec s = load_spec(std::string(MOE_SOURCE_DIR) + "/resources/presets/deepseek-v3.json");
  const auto rows = simulate_a2a_sweep(s, h100(), {0.0});
  ASSERT_EQ(rows.size(), 22u);  // 8 … 8192: 11 sizes, flat and hierarchical
  EXPECT_EQ(rows.front().c.gpus, 8);
  EXPECT_EQ(rows.back().c.gpus, 8192);
  for (const auto& r : rows) {
    EXPECT_LE(r.ep, 256) << "the EP group never exceeds the experts";
    EXPECT_GT(r.seconds, 0.0);
  }
  // DeepSeek-V3 at tp 4 (the preset), 8 GPUs a node: 8 GPUs hold 2 EP members in one node; from
  // 64 GPUs the group spans nodes and the hierarchical exchange sends fewer inter-node bytes.
  for (size_t i = 0; i + 1 < rows.size(); i += 2) {
    const A2aSimResult& flat = rows[i];
    const A2aSimResult& hier = rows[i + 1];
    if (flat.nodes > 1) {
      EXPECT_LT(hier.send_inter, flat.send_inter) << flat.c.gpus;
    }
  }
  // Past E GPUs the group stops growing: the per-GPU exchange is the same at 4096 and 8192.
  EXPECT_EQ(rows[18].ep, rows[20].ep);
  EXPECT_DOUBLE_EQ(rows[18].seconds, rows[20].seconds);
}

TEST(A2aSimulator, LatenciesComeFromTheProfile) {
  HardwareProfile hw = h100();
  const JobSpec s = sim_spec(16, false);
  A2aSimulator a(s, hw);
  const double base = a.run({16, 0.0, true}).seconds;
  hw.inter_node_latency += 1e-3;
  A2aSimulator b(s, hw);
  EXPECT_NEAR(b.run({16, 0.0, true}).seconds - base, 1e-3, 1e-9);
  // A profile may set them; a bad value is refused naming the field.
  const auto doc = nlohmann::json::parse(R"({"profiles": {"X": {"memory_gib": 80, "peak_tflops_bf16": 1,
      "peak_tflops_fp32": 1, "intra_node_gb_s": 1, "inter_node_gb_s": 1, "inter_node_latency_us": -1}}})");
  EXPECT_THROW(parse_hardware_profiles(doc, "hw.json"), Error);
}
