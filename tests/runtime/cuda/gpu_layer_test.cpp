// The whole CUDA MoE layer (runtime/cuda/cuda_moe_layer.h) against the CPU layer (MoeCompute<float>)
// on the same fresh random inputs, one tiny layer per routing mode: top-k dropless, Switch top-1
// with capacity, capacity with position and probability drops, group-limited sigmoid with a
// selection bias, expert choice, shared experts, training jitter; forward (y, routing decisions, counts, drops,
// aux and z losses) and backward (dx, the gate's and every expert's weight gradients).
// fp32 within 1e-4 relative (different summation orders; typically ~1e-6); bf16 (inputs and
// weights rounded to bf16 for both sides, activations bf16 on the GPU) within 3e-2. Label gpu.
#include <algorithm>
#include <numeric>

#include "cuda_moe_layer.h"
#include "gpu_test_util.h"
#include "moe_compute.h"

namespace moe::rt::cuda::test {
namespace {

MoeConfig layer_config() {
  MoeConfig c;
  c.d_model = 32, c.num_experts = 8, c.top_k = 2, c.d_expert = 48;
  c.aux_loss_coef = 0.01, c.z_loss_coef = 0.001;
  return c;
}

template <typename T>
void check_layer(const MoeConfig& c, int64_t T_, bool with_bias) {
  const int64_t E = c.num_experts, d = c.d_model, f = c.d_expert, s = c.d_shared;
  const double tol = std::is_same_v<T, float> ? 1e-4 : 3e-2;
  // Host data; upload<T> rounds it to what the GPU sees, so both sides start equal.
  auto x = randn(T_ * d), dy = randn(T_ * d), gate = randn(E * d, 0.5f);
  auto w1 = randn(E * f * d, 0.3f), w2 = randn(E * d * f, 0.3f), w3 = randn(E * f * d, 0.3f);
  auto s1 = randn(std::max<int64_t>(s, 1) * d, 0.3f), s2 = randn(d * std::max<int64_t>(s, 1), 0.3f),
       s3 = randn(std::max<int64_t>(s, 1) * d, 0.3f);
  std::vector<float> bias(E, 0.0f);
  if (with_bias) bias = randn(E, 0.05f);
  auto dx_in = upload<T>(x);
  auto ddy = upload<T>(dy);
  auto dgate = upload<T>(gate);
  auto dw1 = upload<T>(w1);
  auto dw2 = upload<T>(w2);
  auto dw3 = upload<T>(w3);
  auto ds1 = upload<T>(s1);
  auto ds2 = upload<T>(s2);
  auto ds3 = upload<T>(s3);
  auto dbias = upload<float>(bias);

  // CPU reference.
  MoeWeights<float> cw;
  cw.gate = gate.data();
  for (int64_t e = 0; e < E; ++e) {
    cw.experts.w1.push_back(w1.data() + e * f * d);
    cw.experts.w2.push_back(w2.data() + e * d * f);
    cw.experts.w3.push_back(w3.data() + e * f * d);
  }
  if (s > 0) cw.shared = {{s1.data()}, {s2.data()}, {s3.data()}};
  std::vector<float> gg(E * d, 0.0f), g1(E * f * d, 0.0f), g2(E * d * f, 0.0f), g3(E * f * d, 0.0f);
  std::vector<float> gs1(s1.size(), 0.0f), gs2(s2.size(), 0.0f), gs3(s3.size(), 0.0f);
  MoeGrads<float> cg;
  cg.gate = gg.data();
  for (int64_t e = 0; e < E; ++e) {
    cg.experts.w1.push_back(g1.data() + e * f * d);
    cg.experts.w2.push_back(g2.data() + e * d * f);
    cg.experts.w3.push_back(g3.data() + e * f * d);
  }
  if (s > 0) cg.shared = {{gs1.data()}, {gs2.data()}, {gs3.data()}};
  MoeCompute<float> ref(c);
  std::vector<float> y(T_ * d), dx(T_ * d);
  MoeLayerOptions opt;
  opt.training = c.jitter > 0;  // jitter: the CPU router draws its key from the rng, the GPU gets it
  opt.loss_scale = 0.5;
  std::mt19937_64 cpu_rng(rng()());
  std::mt19937_64 key_rng = cpu_rng;  // the same stream: its first draw is the CPU router's key
  ref.forward(cw, x.data(), y.data(), T_, opt, bias.data(), cpu_rng);
  ref.backward(cw, cg, dy.data(), dx.data(), 0.5f);

  // GPU.
  Blas blas;
  CudaMoeLayer<T> layer(c, blas);
  CudaMoeWeights<T> gw{dgate.data(), {dw1.data(), dw2.data(), dw3.data(), d, f}, {ds1.data(), ds2.data(), ds3.data(), d, s}};
  DeviceBuffer<float> ggd(E * d), g1d(E * f * d), g2d(E * d * f), g3d(E * f * d), gs1d(s1.size()), gs2d(s2.size()),
      gs3d(s3.size());
  for (auto* b : {&ggd, &g1d, &g2d, &g3d, &gs1d, &gs2d, &gs3d}) fill(b->data(), 0.0f, static_cast<int64_t>(b->size()), nullptr);
  CudaMoeGrads gg_dev{ggd.data(), {g1d.data(), g2d.data(), g3d.data()}, {gs1d.data(), gs2d.data(), gs3d.data()}};
  auto gy = poisoned<T>(T_ * d), gdx = poisoned<T>(T_ * d);
  CudaMoeOptions go;
  go.training = c.jitter > 0, go.loss_scale = 0.5, go.jitter_seed = key_rng();
  layer.forward(gw, dx_in.data(), gy.data(), T_, go, with_bias ? dbias.data() : nullptr);
  layer.backward(gw, gg_dev, ddy.data(), gdx.data());
  MOE_CUDA_CHECK(cudaDeviceSynchronize());

  const std::string mode = layer_mode_name(layer.plan().mode);
  const int64_t A = layer.plan().assignments;
  if constexpr (std::is_same_v<T, float>) {  // same decisions (bf16 logits may flip near-ties)
    EXPECT_EQ(download_raw(layer.assignment_expert(), A), ref.assignments().expert) << mode;
    EXPECT_EQ(download_raw(layer.assignment_route(), A), ref.assignments().route) << mode;
    EXPECT_LE(rel_err(download(layer.gate_weights(), A), ref.gate_weights()), 1e-5) << mode;
    const RoutingStats& st = layer.stats();
    EXPECT_EQ(st.counts, ref.stats().counts) << mode;
    EXPECT_EQ(st.dropped, ref.stats().dropped) << mode;
    EXPECT_EQ(st.tokens_without_expert, ref.stats().tokens_without_expert) << mode;
    EXPECT_NEAR(st.aux_loss, ref.stats().aux_loss, 1e-5 * std::abs(ref.stats().aux_loss)) << mode;
    EXPECT_NEAR(st.z_loss, ref.stats().z_loss, 1e-5 * std::abs(ref.stats().z_loss)) << mode;
  }
  EXPECT_LE(rel_err(download(gy.data(), T_ * d), y), tol) << mode << " y";
  EXPECT_LE(rel_err(download(gdx.data(), T_ * d), dx), tol) << mode << " dx";
  EXPECT_LE(rel_err(download(ggd.data(), E * d), gg), tol) << mode << " dgate";
  EXPECT_LE(rel_err(download(g1d.data(), g1.size()), g1), tol) << mode << " dw1";
  EXPECT_LE(rel_err(download(g2d.data(), g2.size()), g2), tol) << mode << " dw2";
  EXPECT_LE(rel_err(download(g3d.data(), g3.size()), g3), tol) << mode << " dw3";
  if (s > 0) {
    EXPECT_LE(rel_err(download(gs1d.data(), gs1.size()), gs1), tol) << mode << " shared dw1";
    EXPECT_LE(rel_err(download(gs2d.data(), gs2.size()), gs2), tol) << mode << " shared dw2";
    EXPECT_LE(rel_err(download(gs3d.data(), gs3.size()), gs3), tol) << mode << " shared dw3";
  }
}

template <typename T>
void all_modes() {
  MoeConfig c = layer_config();
  check_layer<T>(c, 97, false);  // top-2 dropless (grouped GEMM)
  c.top_k = 1, c.capacity_factor = 1.0;
  check_layer<T>(c, 120, false);  // Switch top-1 with capacity (strided-batched)
  c = layer_config();
  c.capacity_factor = 0.7;
  check_layer<T>(c, 131, false);  // capacity, position drops
  c.drop_policy = DropPolicy::probability;
  check_layer<T>(c, 131, false);  // capacity, probability drops
  c = layer_config();
  c.score = ScoreFn::sigmoid, c.n_group = 4, c.topk_group = 2, c.top_k = 3, c.routed_scaling_factor = 2.5;
  c.bias_balancing = true, c.bias_update_rate = 0.001;
  check_layer<T>(c, 77, true);  // DeepSeek-V3 style: sigmoid, groups, bias, scaling
  c = layer_config();
  c.type = RoutingType::expert_choice, c.capacity_factor = 1.25;
  check_layer<T>(c, 64, false);  // expert choice
  c = layer_config();
  c.d_shared = 40;
  check_layer<T>(c, 50, false);  // shared expert beside top-2
  c = layer_config();
  c.jitter = 0.05, c.capacity_factor = 1.0;
  check_layer<T>(c, 88, false);  // training jitter (same counter hash and key as the CPU router)
}

TEST(GpuMoeLayer, EveryRoutingModeMatchesTheCpuLayerFp32) {
  MOE_REQUIRE_GPU();
  all_modes<float>();
}

TEST(GpuMoeLayer, EveryRoutingModeMatchesTheCpuLayerBf16) {
  MOE_REQUIRE_GPU();
  all_modes<bf16>();
}

// Jitter: training noise changes the router's input only; y stays finite and the counts still
// add up to T·k (dropless), and the same seed gives the same routing.
TEST(GpuMoeLayer, JitterIsSeededAndKeepsTheLayerWhole) {
  MOE_REQUIRE_GPU();
  MoeConfig c = layer_config();
  c.jitter = 0.1;
  const int64_t T_ = 90, d = c.d_model, E = c.num_experts, f = c.d_expert;
  auto x = randn(T_ * d), gate = randn(E * d, 0.5f), w1 = randn(E * f * d, 0.3f), w2 = randn(E * d * f, 0.3f),
       w3 = randn(E * f * d, 0.3f);
  auto dx_in = upload<float>(x);
  auto dgate = upload<float>(gate);
  auto dw1 = upload<float>(w1);
  auto dw2 = upload<float>(w2);
  auto dw3 = upload<float>(w3);
  Blas blas;
  CudaMoeLayer<float> layer(c, blas);
  CudaMoeWeights<float> gw{dgate.data(), {dw1.data(), dw2.data(), dw3.data(), d, f}, {}};
  auto y1 = poisoned<float>(T_ * d), y2 = poisoned<float>(T_ * d);
  CudaMoeOptions o;
  o.jitter_seed = 1234;
  layer.forward(gw, dx_in.data(), y1.data(), T_, o);
  const auto e1 = download_raw(layer.assignment_expert(), T_ * 2);
  const auto counts = layer.stats().counts;
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), T_ * 2);
  layer.forward(gw, dx_in.data(), y2.data(), T_, o);
  EXPECT_EQ(download_raw(layer.assignment_expert(), T_ * 2), e1);
  const auto a = download(y1.data(), T_ * d), b = download(y2.data(), T_ * d);
  EXPECT_LE(rel_err(a, b), 1e-6);
}

}  // namespace
}  // namespace moe::rt::cuda::test
