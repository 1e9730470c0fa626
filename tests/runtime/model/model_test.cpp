// The decoder's structure: Hugging Face names and shapes, deterministic init, refusals, the
// initial loss of a near-zero model, and that a few AdamW steps fit one batch.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "error.h"
#include "gemm.h"
#include "model.h"
#include "optimizer.h"
#include "tiny_spec.h"

using namespace moe;
using namespace moe::rt;

namespace {

std::vector<int32_t> random_tokens(int64_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

}  // namespace

TEST(Model, ParamsHaveHuggingFaceNamesAndShapes) {
  JobSpec spec = test::tiny_spec();
  spec.model.moe.first_dense_layers = 1;
  spec.model.d_ff = 24;
  spec.model.moe.shared_experts = 1;
  spec.model.moe.d_shared_expert = 8;
  MixtralModel model(spec);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (Param* p : model.named_params()) {
    EXPECT_TRUE(shapes.emplace(p->name, p->shape).second) << "duplicate " << p->name;
    EXPECT_EQ(static_cast<int64_t>(p->value.size()), p->numel());
  }
  using S = std::vector<int64_t>;
  EXPECT_EQ(shapes.at("model.embed_tokens.weight"), (S{32, 16}));
  EXPECT_EQ(shapes.at("model.layers.0.input_layernorm.weight"), (S{16}));
  EXPECT_EQ(shapes.at("model.layers.0.self_attn.q_proj.weight"), (S{16, 16}));
  EXPECT_EQ(shapes.at("model.layers.0.self_attn.k_proj.weight"), (S{8, 16}));  // 2 kv heads × 4
  EXPECT_EQ(shapes.at("model.layers.0.self_attn.v_proj.weight"), (S{8, 16}));
  EXPECT_EQ(shapes.at("model.layers.0.self_attn.o_proj.weight"), (S{16, 16}));
  EXPECT_EQ(shapes.at("model.layers.0.post_attention_layernorm.weight"), (S{16}));
  EXPECT_EQ(shapes.at("model.layers.0.mlp.gate_proj.weight"), (S{24, 16}));
  EXPECT_EQ(shapes.at("model.layers.0.mlp.up_proj.weight"), (S{24, 16}));
  EXPECT_EQ(shapes.at("model.layers.0.mlp.down_proj.weight"), (S{16, 24}));
  EXPECT_EQ(shapes.count("model.layers.1.mlp.gate_proj.weight"), 0u);
  EXPECT_EQ(shapes.at("model.layers.1.block_sparse_moe.gate.weight"), (S{4, 16}));
  EXPECT_EQ(shapes.at("model.layers.1.block_sparse_moe.experts.3.w1.weight"), (S{8, 16}));
  EXPECT_EQ(shapes.at("model.layers.1.block_sparse_moe.experts.3.w2.weight"), (S{16, 8}));
  EXPECT_EQ(shapes.at("model.layers.1.block_sparse_moe.experts.3.w3.weight"), (S{8, 16}));
  EXPECT_EQ(shapes.at("model.layers.1.block_sparse_moe.shared_expert.w1.weight"), (S{8, 16}));
  EXPECT_EQ(shapes.at("model.norm.weight"), (S{16}));
  EXPECT_EQ(shapes.at("lm_head.weight"), (S{32, 16}));
  EXPECT_EQ(model.moe_layer_indices(), (std::vector<int64_t>{1}));
  EXPECT_EQ(model.moe_layers().size(), 1u);

  // The order is stable across instances and starts/ends as documented.
  MixtralModel again(spec);
  auto a = model.named_params(), b = again.named_params();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]->name, b[i]->name);
  EXPECT_EQ(a.front()->name, "model.embed_tokens.weight");
  EXPECT_EQ(a.back()->name, "lm_head.weight");
}

TEST(Model, TiedEmbeddingsHaveNoLmHead) {
  JobSpec spec = test::tiny_spec();
  spec.model.tie_embeddings = true;
  MixtralModel model(spec);
  for (Param* p : model.named_params()) EXPECT_NE(p->name, "lm_head.weight");
  EXPECT_EQ(model.named_params().back()->name, "model.norm.weight");
}

TEST(Model, InitIsDeterministicPerSeedAndName) {
  JobSpec spec = test::tiny_spec();
  spec.model.init_std = 0.02;
  MixtralModel a(spec), b(spec);
  spec.train.seed = 8;
  MixtralModel c(spec);
  auto pa = a.named_params(), pb = b.named_params(), pc = c.named_params();
  double sum_sq = 0;
  int64_t count = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i]->value, pb[i]->value) << pa[i]->name;
    if (pa[i]->shape.size() == 1) {
      for (float v : pa[i]->value) EXPECT_EQ(v, 1.0f) << pa[i]->name;
      continue;
    }
    EXPECT_NE(pa[i]->value, pc[i]->value) << pa[i]->name;
    for (float v : pa[i]->value) sum_sq += v * v, ++count;
  }
  EXPECT_NEAR(std::sqrt(sum_sq / count), 0.02, 0.002);
  // Two experts of one layer get different draws (the stream depends on the name).
  MixtralModel d(spec);
  const auto* e0 = d.moe_layers()[0]->params()[1];
  const auto* e1 = d.moe_layers()[0]->params()[4];
  EXPECT_NE(e0->name, e1->name);
  EXPECT_NE(e0->value, e1->value);
}

TEST(Model, RefusesWhatTheCpuRuntimeCannotDo) {
  auto message = [](auto mutate) {
    JobSpec spec = test::tiny_spec();
    mutate(spec);
    try {
      MixtralModel model(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([](JobSpec& s) { s.model.attention = "mla"; }).find("model.attention"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.parallel.tp = 2; }).find("parallel.tp"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.parallel.pp = 2; }).find("parallel.pp"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.parallel.ep = 2; }).find("parallel.ep"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.runtime.dtype = "bf16"; }).find("runtime.dtype"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.model.n_kv_heads = 3; }).find("model.n_kv_heads"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.model.head_dim = 5; }).find("model.head_dim"), std::string::npos);
  EXPECT_NE(message([](JobSpec& s) { s.model.moe.first_dense_layers = 1; s.model.d_ff = 0; }).find("model.d_ff"),
            std::string::npos);
  EXPECT_EQ(message([](JobSpec&) {}), "no error");
}

TEST(Model, RejectsTokensOutsideTheVocabulary) {
  MixtralModel model(test::tiny_spec());
  std::vector<int32_t> tokens(6, 1), targets(6, 1);
  tokens[3] = 32;
  std::mt19937_64 rng(1);
  EXPECT_THROW(model.forward(tokens.data(), targets.data(), 1, {}, rng), Error);
}

TEST(Model, NearZeroModelPredictsUniformly) {
  JobSpec spec = test::tiny_spec();
  spec.model.init_std = 1e-4;
  spec.routing.aux_loss_coef = 0.0;
  spec.routing.z_loss_coef = 0.0;
  MixtralModel model(spec);
  const auto tokens = random_tokens(2 * 6, 32, 3), targets = random_tokens(2 * 6, 32, 4);
  std::mt19937_64 rng(1);
  const ForwardResult r = model.forward(tokens.data(), targets.data(), 2, {}, rng);
  EXPECT_NEAR(r.lm_loss, std::log(32.0), 1e-3);
  EXPECT_EQ(r.loss, r.lm_loss);
  ASSERT_EQ(r.routing.size(), 2u);
  int64_t pairs = 0;
  for (int64_t c : r.routing[0].stats.counts) pairs += c;
  EXPECT_EQ(pairs, 2 * 6 * 2);  // every token picks top_k = 2 experts
}

TEST(Model, AdamWStepsFitOneBatch) {
  JobSpec spec = test::tiny_spec();
  spec.model.init_std = 0.02;
  MixtralModel model(spec);
  const auto tokens = random_tokens(4 * 6, 32, 5), targets = random_tokens(4 * 6, 32, 6);
  AdamW opt(model.named_params(), AdamWConfig{0.9, 0.95, 1e-8, 0.0});
  std::mt19937_64 rng(1);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    model.zero_grad();
    const ForwardResult r = model.forward(tokens.data(), targets.data(), 4, {}, rng);
    if (step == 0) first = r.lm_loss;
    last = r.lm_loss;
    model.backward();
    clip_grad_norm(model.named_params(), 1.0);
    opt.step(1e-2);
  }
  EXPECT_LT(last, 0.25 * first) << "first " << first << " last " << last;
}

TEST(Model, LossScaleScalesEveryGradient) {
  JobSpec spec = test::tiny_spec();
  MixtralModel model(spec);
  const auto tokens = random_tokens(2 * 6, 32, 5), targets = random_tokens(2 * 6, 32, 6);
  std::mt19937_64 rng(1);
  model.forward(tokens.data(), targets.data(), 2, {}, rng);
  model.backward();
  std::vector<std::vector<float>> full;
  for (Param* p : model.named_params()) full.push_back(p->grad);
  model.zero_grad();
  MoeLayerOptions half;
  half.loss_scale = 0.5;
  model.forward(tokens.data(), targets.data(), 2, half, rng);
  model.backward();
  auto params = model.named_params();
  for (size_t i = 0; i < params.size(); ++i)
    for (size_t j = 0; j < full[i].size(); ++j)
      ASSERT_NEAR(params[i]->grad[j], 0.5f * full[i][j], 1e-6f + 1e-5f * std::abs(full[i][j])) << params[i]->name;
}

// Deterministic arithmetic computes the same gradients as the BLAS path (which the float64
// gradient checks cover), up to float rounding: every parameter's gradient reaches the exact sums
// (a missed one would stay zero), over two micro-batches, in each routing family.
TEST(Model, DeterministicGradientsEqualTheBlasGradients) {
  struct Case {
    const char* name;
    void (*shape)(JobSpec&);
  };
  const Case cases[] = {
      {"top-2, shared expert, dense first layer, tied embeddings",
       [](JobSpec& s) {
         s.model.moe.first_dense_layers = 1, s.model.d_ff = 24, s.model.moe.shared_experts = 1;
         s.model.moe.d_shared_expert = 8, s.model.tie_embeddings = true;
       }},
      {"expert choice", [](JobSpec& s) { s.routing.type = "expert_choice", s.routing.capacity_factor = 1.0; }},
      {"capacity drops, sigmoid, jitter",
       [](JobSpec& s) { s.routing.capacity_factor = 0.5, s.routing.score = "sigmoid", s.routing.jitter = 0.1; }},
  };
  const auto tokens = random_tokens(3 * 6, 32, 5), targets = random_tokens(3 * 6, 32, 6);
  for (const Case& c : cases) {
    JobSpec spec = test::tiny_spec();
    c.shape(spec);
    auto grads = [&](bool deterministic) {
      set_deterministic(deterministic);
      MixtralModel model(spec);
      if (deterministic) model.use_exact_grads();
      model.zero_grad();
      std::mt19937_64 rng(3);
      MoeLayerOptions half;
      half.loss_scale = 0.5;
      for (int micro = 0; micro < 2; ++micro) {
        model.forward(tokens.data(), targets.data(), 3, half, rng);
        model.backward();
      }
      if (deterministic) model.round_exact_grads();
      std::map<std::string, std::vector<float>> out;
      for (Param* p : model.named_params()) out[p->name] = p->grad;
      set_deterministic(false);
      return out;
    };
    const auto blas = grads(false), exact = grads(true);
    ASSERT_EQ(blas.size(), exact.size());
    for (const auto& [name, g] : blas) {
      const auto& e = exact.at(name);
      float scale = 0, diff = 0;
      for (size_t j = 0; j < g.size(); ++j) scale = std::max(scale, std::abs(g[j])), diff = std::max(diff, std::abs(g[j] - e[j]));
      EXPECT_GT(scale, 0.0f) << c.name << ": " << name << " has no gradient";
      EXPECT_LE(diff, 1e-4f * scale) << c.name << ": " << name;
    }
  }
}
