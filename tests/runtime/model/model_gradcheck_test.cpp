// The whole tiny model's gradient against central differences, under every routing mode.
//
// The model runs in float (the MoE block is float), so each tensor is checked along one
// direction u (unit norm, half along the analytic gradient g and half random) rather than per
// element: the directional derivative ⟨g, u⟩ is then as large as the tensor's gradient, well
// above the float noise of a difference quotient. The numeric value is the Richardson combination
// (4·D(ε/2) − D(ε)) / 3 of central differences D at ε = 4e-3 and 2e-3, which cancels the O(ε²)
// truncation (the embedding's is ≈ 4e-2 at ε = 1e-2). What remains is float rounding of the loss
// (≈ 1e-6 relative on a loss of ≈ 3.5, divided by 2ε): measured over all 344 tensors of the nine
// cases, the largest |numeric − analytic| is 1.3e-4. The tolerance 5e-4 + 0.5% · |⟨g, u⟩| sits ≈ 4×
// above that; a 1/(d+1) instead of 1/d in one RMSNorm backward term fails all nine cases.
// Routing is piecewise constant in the parameters: the check also asserts that the perturbed
// runs chose the same number of tokens per expert (and drops) as the unperturbed one, and a switch
// the counts can't see (expert choice keeps them fixed) shows up as D(ε) ≠ D(ε/2) and fails the
// check, so a pass never comes from a difference across a routing switch. Seeds are fixed so CI is
// deterministic (set MOE_GRADCHECK_DEBUG=1 to print every tensor's numbers).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>

#include "model.h"
#include "tiny_spec.h"

using namespace moe;
using namespace moe::rt;

namespace {

struct Case {
  std::string name;
  std::function<void(JobSpec&)> configure;
  std::function<void(MixtralModel&)> prepare = {};
  ModelOptions options = {};
};

constexpr double kEps = 4e-3, kAtol = 5e-4, kRtol = 5e-3;

std::vector<int32_t> random_tokens(int64_t n, int32_t vocab, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> d(0, vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

std::vector<std::vector<int64_t>> routing_signature(const ForwardResult& r) {
  std::vector<std::vector<int64_t>> sig;
  for (const auto& l : r.routing) {
    sig.push_back(l.stats.counts);
    sig.push_back(l.stats.dropped);
    sig.push_back({l.stats.tokens_without_expert});
  }
  return sig;
}

// Returns the routing of the unperturbed forward, for the caller's mode-specific checks.
ForwardResult check_gradients(const Case& c, uint64_t seed) {
  JobSpec spec = test::tiny_spec();
  spec.train.seed = static_cast<int64_t>(seed);
  c.configure(spec);
  MixtralModel model(spec, c.options);
  if (c.prepare) c.prepare(model);
  std::mt19937_64 data_rng(seed * 31 + 1);
  const int64_t batch = 2, T = batch * spec.model.seq_len;
  const auto tokens = random_tokens(T, 32, data_rng), targets = random_tokens(T, 32, data_rng);
  auto run = [&]() {
    std::mt19937_64 rng(5);
    return model.forward(tokens.data(), targets.data(), batch, MoeLayerOptions{}, rng);
  };
  model.zero_grad();
  const ForwardResult base = run();
  model.backward();
  EXPECT_TRUE(std::isfinite(base.loss));
  if (spec.routing.aux_loss_coef > 0 && !base.routing.empty()) {
    EXPECT_GT(base.aux_loss, 0.0);
  }
  if (spec.routing.z_loss_coef > 0 && !base.routing.empty()) {
    EXPECT_GT(base.z_loss, 0.0);
  }

  std::mt19937_64 dir_rng(seed + 99);
  std::normal_distribution<double> normal;
  for (Param* p : model.named_params()) {
    const int64_t n = p->numel();
    std::vector<double> g(p->grad.begin(), p->grad.end()), r(n), u(n);
    double gn = 0, rn = 0;
    for (int64_t i = 0; i < n; ++i) r[i] = normal(dir_rng), gn += g[i] * g[i], rn += r[i] * r[i];
    gn = std::sqrt(gn), rn = std::sqrt(rn);
    double un = 0;
    for (int64_t i = 0; i < n; ++i) {
      u[i] = (gn > 0 ? 0.5 * g[i] / gn : 0.0) + 0.5 * r[i] / rn;
      un += u[i] * u[i];
    }
    un = std::sqrt(un);
    double analytic = 0;
    for (int64_t i = 0; i < n; ++i) analytic += g[i] * (u[i] /= un);

    const std::vector<float> keep = p->value;
    auto difference = [&](double e) {  // (L(p + e·u) − L(p − e·u)) / 2e, checking the routing held
      for (int64_t i = 0; i < n; ++i) p->value[i] = static_cast<float>(keep[i] + e * u[i]);
      const ForwardResult up = run();
      for (int64_t i = 0; i < n; ++i) p->value[i] = static_cast<float>(keep[i] - e * u[i]);
      const ForwardResult down = run();
      p->value = keep;
      const bool same = routing_signature(up) == routing_signature(base) &&
                        routing_signature(down) == routing_signature(base);
      EXPECT_TRUE(same) << c.name << ": " << p->name << ": routing changed under ±" << e << ", pick another seed";
      return (up.loss - down.loss) / (2 * e);
    };
    const double d1 = difference(kEps), d2 = difference(kEps / 2);
    const double numeric = (4 * d2 - d1) / 3;  // Richardson: cancels the O(eps²) term
    if (std::getenv("MOE_GRADCHECK_DEBUG"))
      std::fprintf(stderr, "%-55s d(eps) %.6f d(eps/2) %.6f richardson %.6f analytic %.6f err %.2e\n",
                   p->name.c_str(), d1, d2, numeric, analytic, numeric - analytic);
    EXPECT_NEAR(numeric, analytic, kAtol + kRtol * std::abs(analytic))
        << c.name << ": " << p->name << " (|g| = " << gn << ")";
  }
  return base;
}

int64_t total(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

void random_bias(MixtralModel& model) {
  std::mt19937_64 rng(17);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  for (MoeLayer* layer : model.moe_layers())
    for (float& b : layer->balancing_bias()) b = normal(rng);
}

}  // namespace

TEST(ModelGradcheck, AllDenseWithTiedEmbeddings) {
  Case c{"all dense, tied", [](JobSpec& s) { s.model.tie_embeddings = true; s.model.d_ff = 12; }};
  c.options.all_dense = true;
  const ForwardResult r = check_gradients(c, 1);
  EXPECT_TRUE(r.routing.empty());
}

TEST(ModelGradcheck, DenseFirstLayerThenMoe) {
  const ForwardResult r = check_gradients(
      {"dense first", [](JobSpec& s) { s.model.moe.first_dense_layers = 1; s.model.d_ff = 12; }}, 2);
  ASSERT_EQ(r.routing.size(), 1u);
  EXPECT_EQ(r.routing[0].layer, 1);
}

TEST(ModelGradcheck, Top1SwitchDropless) {
  const ForwardResult r = check_gradients({"top-1", [](JobSpec& s) { s.model.moe.top_k = 1; }}, 3);
  EXPECT_EQ(total(r.routing[0].stats.counts), 12);
}

TEST(ModelGradcheck, Top2Dropless) {
  const ForwardResult r = check_gradients({"top-2", [](JobSpec&) {}}, 4);
  EXPECT_EQ(total(r.routing[0].stats.counts), 24);
  EXPECT_EQ(total(r.routing[0].stats.dropped), 0);
}

TEST(ModelGradcheck, ExpertChoice) {
  const ForwardResult r = check_gradients({"expert choice", [](JobSpec& s) {
                                             s.routing.type = "expert_choice";
                                             s.routing.capacity_factor = 1.0;
                                           }},
                                          5);
  ASSERT_EQ(r.routing.size(), 2u);
}

TEST(ModelGradcheck, SigmoidScoresWithBiasBalancing) {
  check_gradients({"sigmoid + bias",
                   [](JobSpec& s) {
                     s.routing.score = "sigmoid";
                     s.routing.bias_balancing.enabled = true;
                     s.routing.aux_loss_coef = 0.0;
                   },
                   random_bias},
                  6);
}

TEST(ModelGradcheck, SharedExpert) {
  check_gradients({"shared expert", [](JobSpec& s) {
                     s.model.moe.shared_experts = 1;
                     s.model.moe.d_shared_expert = 8;
                   }},
                  11);
}

TEST(ModelGradcheck, CapacityDropsByPosition) {
  const ForwardResult r = check_gradients({"capacity position", [](JobSpec& s) {
                                             s.routing.capacity_factor = 0.5;
                                             s.routing.drop_policy = "position";
                                           }},
                                          8);
  EXPECT_GT(total(r.routing[0].stats.dropped) + total(r.routing[1].stats.dropped), 0);
}

TEST(ModelGradcheck, CapacityDropsByProbability) {
  const ForwardResult r = check_gradients({"capacity probability", [](JobSpec& s) {
                                             s.routing.capacity_factor = 0.5;
                                             s.routing.drop_policy = "probability";
                                           }},
                                          9);
  EXPECT_GT(total(r.routing[0].stats.dropped) + total(r.routing[1].stats.dropped), 0);
}
