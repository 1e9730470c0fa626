// Host-side logic of the CUDA MoE layer (runtime/cuda/moe_layer_plan.h), no GPU needed:
//   - the routing-mode plan agrees with MoeConfig and the buffer plan;
//   - the losses from the device's reduced terms equal Router::compute_losses, and the router
//     backward's coefficients are the derivatives of those formulas;
//   - the layer's data flow — padded capacity layout, token-major combine, per-assignment dots,
//     masked combine backward, token-major dispatch backward — emulated here in float64 with the
//     CPU routing ops gives MoeCompute<double>'s output and gradients in every routing mode.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "error.h"
#include "moe_compute.h"
#include "moe_layer_plan.h"
#include "router.h"
#include "routing_ops.h"
#include "swiglu_experts.h"

namespace moe::rt::cuda {
namespace {

MoeConfig base_config() {
  MoeConfig c;
  c.d_model = 12, c.num_experts = 6, c.top_k = 2, c.d_expert = 10;
  c.aux_loss_coef = 0.01, c.z_loss_coef = 0.001;
  return c;
}

TEST(MoeLayerPlan, ModesRowsAndOffsets) {
  MoeConfig c = base_config();
  auto p = plan_moe_layer(c, 50, false, 4);
  EXPECT_EQ(p.mode, LayerMode::dropless);
  EXPECT_EQ(p.assignments, 100);
  EXPECT_EQ(p.expert_rows, 100);
  EXPECT_TRUE(p.fixed_offsets.empty());
  EXPECT_GT(plan_moe_buffers(p.shape).total, 0u);

  c.capacity_factor = 1.25;
  p = plan_moe_layer(c, 50, false, 2);
  EXPECT_EQ(p.mode, LayerMode::capacity);
  EXPECT_EQ(p.capacity, c.capacity(50));
  EXPECT_EQ(p.assignments, 100);
  EXPECT_EQ(p.expert_rows, 6 * c.capacity(50));
  ASSERT_EQ(p.fixed_offsets.size(), 7u);
  for (int64_t e = 0; e <= 6; ++e) EXPECT_EQ(p.fixed_offsets[e], e * p.capacity);
  EXPECT_EQ(plan_moe_buffers(p.shape).bytes_of("expert_in"), static_cast<size_t>(p.expert_rows * 12 * 2));
  // Eval's force_dropless turns the capacity off for token choice only.
  EXPECT_EQ(plan_moe_layer(c, 50, true, 4).mode, LayerMode::dropless);

  c.type = RoutingType::expert_choice;
  p = plan_moe_layer(c, 50, true, 4);
  EXPECT_EQ(p.mode, LayerMode::expert_choice);
  EXPECT_EQ(p.assignments, 6 * c.capacity(50));
  EXPECT_EQ(routing_counts(p, std::vector<int64_t>(6, 0)), std::vector<int64_t>(6, p.capacity));

  EXPECT_THROW(plan_moe_layer(c, 0, false, 4), Error);
  c.num_experts = 0;
  EXPECT_THROW(plan_moe_layer(c, 10, false, 4), Error);
}

// Σ lse² and the column sums of p from the CPU router's logits, then the layer's formulas.
TEST(MoeLayerPlan, LossesFromTermsMatchTheCpuRouter) {
  for (ScoreFn fn : {ScoreFn::softmax, ScoreFn::sigmoid}) {
    MoeConfig c = base_config();
    c.score = fn;
    const int64_t T = 37, E = c.num_experts, d = c.d_model;
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    std::vector<double> x(T * d), w(E * d);
    for (auto& v : x) v = normal(rng);
    for (auto& v : w) v = 0.5 * normal(rng);
    Router<double> r(c);
    r.forward(w.data(), x.data(), T, false, rng);
    std::vector<int64_t> counts(E);
    for (auto& v : counts) v = static_cast<int64_t>(rng() % 40);
    r.compute_losses(counts);
    std::vector<float> sum_p(E, 0.0f);
    double lse2 = 0;
    for (int64_t t = 0; t < T; ++t) {
      const double* l = r.logits() + t * E;
      double m = l[0], z = 0, norm = 0;
      for (int64_t e = 1; e < E; ++e) m = std::max(m, l[e]);
      for (int64_t e = 0; e < E; ++e) z += std::exp(l[e] - m), norm += r.scores()[t * E + e];
      lse2 += (m + std::log(z)) * (m + std::log(z));
      for (int64_t e = 0; e < E; ++e)
        sum_p[e] += static_cast<float>(r.scores()[t * E + e] / (fn == ScoreFn::sigmoid ? norm : 1.0));
    }
    const auto share = load_share(counts);
    EXPECT_NEAR(aux_loss_from_terms(c, share, sum_p, T), r.aux_loss(), 1e-6 * std::abs(r.aux_loss()));
    EXPECT_NEAR(z_loss_from_terms(c, lse2, T), r.z_loss(), 1e-6 * std::abs(r.z_loss()));
    // The backward coefficients are the derivatives: ∂aux/∂P_i·(1/T) and ∂z/∂lse_t / lse_t.
    const double scale = 0.25;
    const auto coefs = router_backward_coefs(c, T, scale);
    for (int64_t e = 0; e < E; ++e) {
      auto bumped = sum_p;
      bumped[e] += 1.0f;
      const double slope = aux_loss_from_terms(c, share, bumped, T) - aux_loss_from_terms(c, share, sum_p, T);
      EXPECT_NEAR(coefs.aux * share[e], scale * slope, 1e-6 * std::abs(scale * slope) + 1e-12);
    }
    const double lse_t = 1.7, h = 1e-4;
    const double dz = (z_loss_from_terms(c, lse2 + (lse_t + h) * (lse_t + h) - lse_t * lse_t, T) -
                       z_loss_from_terms(c, lse2 + (lse_t - h) * (lse_t - h) - lse_t * lse_t, T)) / (2 * h);
    EXPECT_NEAR(coefs.z * lse_t, scale * dz, 1e-6);
  }
  EXPECT_EQ(load_share({0, 0, 0}), std::vector<float>(3, 0.0f));
}

// The CUDA layer's data flow on the host, float64. The selection itself (tested kernel by kernel
// against select_tokens on the GPU) is taken from the CPU layer.
struct Emulated {
  std::vector<double> y, dx, dgate;
  std::vector<std::vector<double>> dw1, dw2, dw3;
  int64_t unrouted = 0;
};

Emulated emulate_cuda_layer(const MoeConfig& c, const MoeCompute<double>& ref, const std::vector<double>& x,
                            const std::vector<double>& gate, const MoeWeights<double>& w, const std::vector<double>& dy,
                            int64_t T) {
  const int64_t E = c.num_experts, d = c.d_model, f = c.d_expert, k = c.top_k;
  const Assignments& asg = ref.assignments();
  const std::vector<double>& weight = ref.gate_weights();
  const MoeLayerPlan plan = plan_moe_layer(c, T, false, 4);
  const int64_t A = plan.assignments, R = plan.expert_rows;
  EXPECT_EQ(asg.size(), A);
  // Offsets: the scan of the counts (dropless) or the plan's fixed slots; then the stable sort.
  std::vector<int64_t> offsets = plan.fixed_offsets, cursor(E);
  if (plan.mode == LayerMode::dropless) {
    std::vector<int64_t> counts(E);
    offsets.resize(E + 1);
    expert_histogram(asg.route.data(), A, E, counts.data());
    exclusive_scan(counts.data(), E, offsets.data());
  }
  std::vector<int32_t> row_assignment(R, -1), row_token(R, -1), assignment_row(A);
  sort_by_expert(asg.route.data(), A, offsets.data(), E, cursor.data(), row_assignment.data(), assignment_row.data());
  for (int64_t r = 0; r < R; ++r)
    if (row_assignment[r] >= 0) row_token[r] = asg.token[row_assignment[r]];
  // gather_rows_masked → experts on the plan's rows → combine.
  std::vector<double> in(R * d, 0.0), out(R * d);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < d && row_token[r] >= 0; ++i) in[r * d + i] = x[row_token[r] * d + i];
  SwigluExperts<double> bank(d, f);
  bank.forward(w.experts, in.data(), offsets, out.data());
  Emulated em;
  em.y.assign(T * d, 0.0);
  if (plan.expert_choice()) {  // scatter_add_rows_masked with weights
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < d && row_token[r] >= 0; ++i)
        em.y[row_token[r] * d + i] += weight[row_assignment[r]] * out[r * d + i];
  } else {  // combine_token_major
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < d && assignment_row[t * k + j] >= 0; ++i)
          em.y[t * d + i] += weight[t * k + j] * out[assignment_row[t * k + j] * d + i];
  }
  std::vector<int32_t> token_of(asg.token.begin(), asg.token.end());
  em.unrouted = count_unrouted_tokens(token_of, assignment_row, T);
  // Backward: assignment_dots, combine_backward_rows, experts, dispatch backward.
  std::vector<double> dweight(A, 0.0), dout(R * d, 0.0), din(R * d);
  for (int64_t a = 0; a < A; ++a)
    for (int64_t i = 0; i < d && assignment_row[a] >= 0; ++i)
      dweight[a] += out[assignment_row[a] * d + i] * dy[asg.token[a] * d + i];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < d && row_token[r] >= 0; ++i)
      dout[r * d + i] = weight[row_assignment[r]] * dy[row_token[r] * d + i];
  em.dw1.assign(E, std::vector<double>(f * d, 0.0)), em.dw2.assign(E, std::vector<double>(d * f, 0.0));
  em.dw3.assign(E, std::vector<double>(f * d, 0.0));
  ExpertGrads<double> g;
  for (int64_t e = 0; e < E; ++e) g.w1.push_back(em.dw1[e].data()), g.w2.push_back(em.dw2[e].data()), g.w3.push_back(em.dw3[e].data());
  bank.backward(w.experts, g, dout.data(), din.data(), false);
  em.dx.assign(T * d, 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < d && row_token[r] >= 0; ++i) em.dx[row_token[r] * d + i] += din[r * d + i];
  // Router: selection backward, then the router with the aux/z gradients (no jitter).
  std::vector<double> dscores(T * E, 0.0);
  select_tokens_backward(c, ref.router().scores(), asg, dweight.data(), dscores.data());
  Router<double> router(c);
  std::mt19937_64 unused(1);
  router.forward(gate.data(), x.data(), T, false, unused);
  router.compute_losses(asg.counts);
  em.dgate.assign(E * d, 0.0);
  router.backward(gate.data(), x.data(), dscores.data(), 1.0, em.dgate.data(), em.dx.data());
  return em;
}

double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

void check_emulation(const MoeConfig& c, int64_t T, bool expect_drops) {
  const int64_t E = c.num_experts, d = c.d_model, f = c.d_expert;
  std::mt19937_64 rng(std::random_device{}());
  std::normal_distribution<double> normal;
  auto randv = [&](int64_t n, double s) {
    std::vector<double> v(n);
    for (auto& a : v) a = s * normal(rng);
    return v;
  };
  const auto x = randv(T * d, 1.0), dy = randv(T * d, 1.0), gate = randv(E * d, 0.7);
  std::vector<std::vector<double>> w1(E), w2(E), w3(E);
  MoeWeights<double> w;
  w.gate = gate.data();
  for (int64_t e = 0; e < E; ++e) {
    w1[e] = randv(f * d, 0.4), w2[e] = randv(d * f, 0.4), w3[e] = randv(f * d, 0.4);
    w.experts.w1.push_back(w1[e].data()), w.experts.w2.push_back(w2[e].data()), w.experts.w3.push_back(w3[e].data());
  }
  std::vector<std::vector<double>> g1(E, std::vector<double>(f * d, 0.0)), g2(E, std::vector<double>(d * f, 0.0)),
      g3(E, std::vector<double>(f * d, 0.0));
  std::vector<double> ggate(E * d, 0.0);
  MoeGrads<double> g;
  g.gate = ggate.data();
  for (int64_t e = 0; e < E; ++e) g.experts.w1.push_back(g1[e].data()), g.experts.w2.push_back(g2[e].data()), g.experts.w3.push_back(g3[e].data());
  MoeCompute<double> ref(c);
  std::vector<double> y(T * d), dx(T * d);
  std::vector<float> bias(E, 0.0f);
  std::mt19937_64 unused(1);
  MoeLayerOptions opt;
  opt.training = false;
  ref.forward(w, x.data(), y.data(), T, opt, bias.data(), unused);
  int64_t drops = 0;
  for (int64_t v : ref.stats().dropped) drops += v;
  EXPECT_EQ(drops > 0, expect_drops);
  ref.backward(w, g, dy.data(), dx.data());

  const Emulated em = emulate_cuda_layer(c, ref, x, gate, w, dy, T);
  EXPECT_LE(rel(em.y, y), 1e-12);
  EXPECT_LE(rel(em.dx, dx), 1e-12);
  EXPECT_LE(rel(em.dgate, ggate), 1e-12);
  for (int64_t e = 0; e < E; ++e) {
    EXPECT_LE(rel(em.dw1[e], g1[e]), 1e-12) << "expert " << e;
    EXPECT_LE(rel(em.dw2[e], g2[e]), 1e-12) << "expert " << e;
    EXPECT_LE(rel(em.dw3[e], g3[e]), 1e-12) << "expert " << e;
  }
  EXPECT_EQ(em.unrouted, ref.stats().tokens_without_expert);
}

TEST(MoeLayerEmulation, DroplessTopK) { check_emulation(base_config(), 41, false); }

TEST(MoeLayerEmulation, CapacityPositionAndProbabilityPadded) {
  MoeConfig c = base_config();
  c.capacity_factor = 0.6;
  check_emulation(c, 53, true);
  c.drop_policy = DropPolicy::probability;
  c.score = ScoreFn::sigmoid;
  check_emulation(c, 53, true);
}

TEST(MoeLayerEmulation, SwitchTopOneAndGroupLimited) {
  MoeConfig c = base_config();
  c.top_k = 1, c.capacity_factor = 1.0;
  check_emulation(c, 60, true);
  c = base_config();
  c.n_group = 3, c.topk_group = 2, c.top_k = 3, c.routed_scaling_factor = 2.0, c.score = ScoreFn::sigmoid;
  check_emulation(c, 33, false);
}

TEST(MoeLayerEmulation, ExpertChoice) {
  MoeConfig c = base_config();
  c.type = RoutingType::expert_choice, c.capacity_factor = 1.0, c.routed_scaling_factor = 1.5;
  check_emulation(c, 29, false);
}

}  // namespace
}  // namespace moe::rt::cuda
