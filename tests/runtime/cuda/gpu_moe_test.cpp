// The MoE kernels against their CPU twins (runtime/moe) on fresh random inputs, outputs poisoned:
// router scores and backward, jitter, top-k (with groups), capacity (both policies), expert
// choice, the selection backward, histogram → scan → sort, the row ops, bias balancing, and the
// expert bank's cuBLAS GEMMs (grouped in dropless mode, strided-batched in capacity mode). Label gpu.
#include <algorithm>
#include <numeric>

#include "cuda_check.h"
#include "expert_ffn.h"
#include "gpu_test_util.h"
#include "jitter_hash.h"
#include "router.h"
#include "routing_ops.h"
#include "swiglu_experts.h"
#include "token_selection.h"

namespace moe::rt::cuda::test {
namespace {

MoeConfig config(int64_t E, int64_t k) {
  MoeConfig c;
  c.d_model = 24, c.num_experts = E, c.top_k = k, c.d_expert = 16;
  c.aux_loss_coef = 0.01, c.z_loss_coef = 0.001;
  return c;
}

TEST(GpuRouter, ScoresLossTermsAndBackward) {
  MOE_REQUIRE_GPU();
  for (bool sigmoid : {false, true}) {
    MoeConfig c = config(8, 2);
    c.score = sigmoid ? ScoreFn::sigmoid : ScoreFn::softmax;
    const int64_t T = 77, E = c.num_experts, d = c.d_model;
    auto w = randn(E * d, 0.3f), x = randn(T * d);
    Router<float> r(c);
    std::mt19937_64 unused(1);
    r.forward(w.data(), x.data(), T, false, unused);
    std::vector<float> logits(r.logits(), r.logits() + T * E);
    auto dl = upload<float>(logits);
    auto scores = poisoned<float>(T * E), lse = poisoned<float>(T);
    router_scores(scores.data(), lse.data(), dl.data(), T, E, sigmoid, nullptr);
    EXPECT_LE(rel_err(download(scores.data(), T * E), std::vector<float>(r.scores(), r.scores() + T * E)), 1e-5);
    // Loss terms → the same aux and z as compute_losses.
    std::vector<int64_t> counts(E);
    for (auto& v : counts) v = static_cast<int64_t>(rng()() % 50);
    r.compute_losses(counts);
    auto terms = poisoned<float>(1), mean_p = poisoned<float>(E);
    router_loss_terms(terms.data(), mean_p.data(), scores.data(), lse.data(), T, E, sigmoid, nullptr);
    const auto hp = download(mean_p.data(), E);
    const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
    double aux = 0;
    std::vector<float> share(E);
    for (int64_t e = 0; e < E; ++e) share[e] = static_cast<float>(counts[e] / total), aux += share[e] * hp[e] / T;
    aux *= c.aux_loss_coef * E;
    const double z = c.z_loss_coef * download(terms.data(), 1)[0] / T;
    EXPECT_NEAR(aux, r.aux_loss(), 1e-5 * std::abs(r.aux_loss()));
    EXPECT_NEAR(z, r.z_loss(), 1e-5 * std::abs(r.z_loss()));
    // Backward: dlogits on the GPU vs the CPU router's dx via dW (compare dW = dlogitsᵀ·x).
    auto ds = randn(T * E);
    auto dds = upload<float>(ds);
    auto dshare = upload<float>(share);
    auto dlog = poisoned<float>(T * E);
    const float scale = 0.5f;
    router_backward(dlog.data(), dds.data(), scores.data(), dl.data(), lse.data(), dshare.data(), T, E, sigmoid,
                    static_cast<float>(scale * c.aux_loss_coef * E / T), static_cast<float>(scale * 2 * c.z_loss_coef / T),
                    nullptr);
    std::vector<float> dw(E * d, 0.0f), dx(T * d, 0.0f), ds_cpu = ds;
    r.backward(w.data(), x.data(), ds_cpu.data(), scale, dw.data(), dx.data());
    const auto g = download(dlog.data(), T * E);
    std::vector<float> dw_gpu(E * d, 0.0f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e)
        for (int64_t i = 0; i < d; ++i) dw_gpu[e * d + i] += g[t * E + e] * x[t * d + i];
    EXPECT_LE(rel_err(dw_gpu, dw), 1e-5) << (sigmoid ? "sigmoid" : "softmax");
  }
}

TEST(GpuRouter, JitterMatchesTheHostHash) {
  MOE_REQUIRE_GPU();
  const int64_t n = 5000;
  auto x = randn(n);
  auto dx = upload<float>(x);
  auto noisy = poisoned<float>(n), noise = poisoned<float>(n);
  const uint64_t seed = rng()();
  router_jitter(noisy.data(), noise.data(), dx.data(), n, 0.05, seed, nullptr);
  std::vector<float> ref(n), refu(n);
  for (int64_t i = 0; i < n; ++i) refu[i] = jitter_noise(seed, i, 0.05f), ref[i] = x[i] * refu[i];
  EXPECT_LE(rel_err(download(noise.data(), n), refu), 1e-6);
  EXPECT_LE(rel_err(download(noisy.data(), n), ref), 1e-6);
}

void check_selection(MoeConfig c, int64_t T, bool with_bias) {
  const int64_t E = c.num_experts;
  auto scores = randn(T * E);
  for (auto& s : scores) s = 1.0f / (1.0f + std::exp(-s));
  std::vector<float> bias(E, 0.0f);
  if (with_bias) bias = randn(E, 0.05f);
  Assignments asg;
  std::vector<float> weight;
  select_tokens(c, scores.data(), bias.data(), T, true, asg, weight);
  const int64_t A = asg.size();
  auto ds = upload<float>(scores);
  auto db = upload<float>(bias);
  auto tok = poisoned<int32_t>(A), exp = poisoned<int32_t>(A), route = poisoned<int32_t>(A);
  auto w = poisoned<float>(A);
  DeviceBuffer<int64_t> counts(E), dropped(E);
  if (c.type == RoutingType::expert_choice) {
    expert_choice_select(tok.data(), exp.data(), w.data(), ds.data(), T, E, c.capacity(T),
                         static_cast<float>(c.routed_scaling_factor), nullptr);
  } else {
    SelectionConfig sc{E, c.top_k, c.n_group, c.topk_group, c.norm_topk_prob,
                       static_cast<float>(c.routed_scaling_factor), c.drop_policy == DropPolicy::probability};
    topk_select(tok.data(), exp.data(), w.data(), ds.data(), db.data(), T, sc, nullptr);
    capacity_limit(route.data(), counts.data(), dropped.data(), exp.data(), w.data(), A, E,
                   c.dropless() ? 0 : c.capacity(T), sc.probability_drop, nullptr);
    EXPECT_EQ(download_raw(route.data(), A), asg.route);
    EXPECT_EQ(download_raw(counts.data(), E), asg.counts);
    EXPECT_EQ(download_raw(dropped.data(), E), asg.dropped);
  }
  EXPECT_EQ(download_raw(tok.data(), A), asg.token);
  EXPECT_EQ(download_raw(exp.data(), A), asg.expert);
  EXPECT_LE(rel_err(download(w.data(), A), weight), 1e-6);
  // Backward of the gate weights.
  auto dw = randn(A);
  auto ddw = upload<float>(dw);
  auto g0 = randn(T * E);
  auto dg = upload<float>(g0);
  select_backward(dg.data(), ds.data(), tok.data(), exp.data(), ddw.data(), A, T, E, asg.top_k, c.norm_topk_prob,
                  static_cast<float>(c.routed_scaling_factor), nullptr);
  select_tokens_backward(c, scores.data(), asg, dw.data(), g0.data());
  EXPECT_LE(rel_err(download(dg.data(), T * E), g0), 1e-5);
}

TEST(GpuSelection, TopKDroplessWithGroupsAndBias) {
  MOE_REQUIRE_GPU();
  MoeConfig c = config(8, 2);
  check_selection(c, 301, true);
  c.n_group = 4, c.topk_group = 2, c.top_k = 3, c.routed_scaling_factor = 2.5;
  check_selection(c, 257, true);
  c.norm_topk_prob = false;
  check_selection(c, 64, false);
}

TEST(GpuSelection, CapacityPositionAndProbability) {
  MOE_REQUIRE_GPU();
  MoeConfig c = config(6, 2);
  c.capacity_factor = 0.8;
  check_selection(c, 500, false);
  c.drop_policy = DropPolicy::probability;
  check_selection(c, 500, true);
}

TEST(GpuSelection, ExpertChoice) {
  MOE_REQUIRE_GPU();
  MoeConfig c = config(5, 0);
  c.type = RoutingType::expert_choice, c.capacity_factor = 1.25, c.top_k = 2, c.routed_scaling_factor = 1.5;
  check_selection(c, 203, false);
}

TEST(GpuRouting, HistogramScanSortAndRowOps) {
  MOE_REQUIRE_GPU();
  const int64_t E = 7, A = 900, T = 450, d = 40;
  std::vector<int32_t> route(A), token(A);
  for (int64_t a = 0; a < A; ++a) route[a] = rng()() % 5 == 0 ? -1 : static_cast<int32_t>(rng()() % E), token[a] = a / 2;
  std::vector<int64_t> counts(E), offsets(E + 1), cursor(E);
  moe::rt::expert_histogram(route.data(), A, E, counts.data());
  moe::rt::exclusive_scan(counts.data(), E, offsets.data());
  const int64_t R = offsets[E];
  std::vector<int32_t> row_asg(R), asg_row(A);
  moe::rt::sort_by_expert(route.data(), A, offsets.data(), E, cursor.data(), row_asg.data(), asg_row.data());
  auto droute = upload_raw(route);
  auto dtoken = upload_raw(token);
  DeviceBuffer<int64_t> dcounts(E), doffsets(E + 1);
  auto drow_asg = poisoned<int32_t>(R), dasg_row = poisoned<int32_t>(A), drow_tok = poisoned<int32_t>(R);
  moe::rt::cuda::expert_histogram(dcounts.data(), droute.data(), A, E, nullptr);
  moe::rt::cuda::exclusive_scan(doffsets.data(), dcounts.data(), E, nullptr);
  moe::rt::cuda::sort_by_expert(drow_asg.data(), dasg_row.data(), drow_tok.data(), droute.data(), dtoken.data(), A,
                                doffsets.data(), E, nullptr);
  EXPECT_EQ(download_raw(dcounts.data(), E), counts);
  EXPECT_EQ(download_raw(doffsets.data(), E + 1), offsets);
  EXPECT_EQ(download_raw(drow_asg.data(), R), row_asg);
  EXPECT_EQ(download_raw(dasg_row.data(), A), asg_row);
  std::vector<int32_t> row_tok(R);
  for (int64_t r = 0; r < R; ++r) row_tok[r] = token[row_asg[r]];
  EXPECT_EQ(download_raw(drow_tok.data(), R), row_tok);

  // Row ops on the same permutation.
  auto x = randn(T * d), rows = randn(R * d), wr = randn(R), y0 = randn(T * d);
  auto dx = upload<float>(x);
  auto drows = upload<float>(rows);
  auto dwr = upload<float>(wr);
  auto didx = upload_raw(row_tok);
  auto g = poisoned<float>(R * d);
  moe::rt::cuda::gather_rows(g.data(), dx.data(), didx.data(), R, d, nullptr);
  std::vector<float> rg(R * d);
  moe::rt::gather_rows(rg.data(), x.data(), row_tok.data(), R, d);
  EXPECT_LE(rel_err(download(g.data(), R * d), rg), 1e-6);
  auto y = upload<float>(y0);
  auto ry = y0;
  moe::rt::cuda::weighted_scatter_add_rows(y.data(), drows.data(), didx.data(), dwr.data(), R, d, nullptr);
  moe::rt::weighted_scatter_add_rows(ry.data(), rows.data(), row_tok.data(), wr.data(), R, d);
  EXPECT_LE(rel_err(download(y.data(), T * d), ry), 1e-5);
  auto y2 = upload<float>(y0);
  auto ry2 = y0;
  moe::rt::cuda::scatter_add_rows(y2.data(), drows.data(), didx.data(), R, d, nullptr);
  moe::rt::scatter_add_rows(ry2.data(), rows.data(), row_tok.data(), R, d);
  EXPECT_LE(rel_err(download(y2.data(), T * d), ry2), 1e-5);
  auto wg = poisoned<float>(R * d);
  moe::rt::cuda::weighted_gather_rows(wg.data(), dx.data(), didx.data(), dwr.data(), R, d, nullptr);
  std::vector<float> rwg(R * d);
  moe::rt::weighted_gather_rows(rwg.data(), x.data(), row_tok.data(), wr.data(), R, d);
  EXPECT_LE(rel_err(download(wg.data(), R * d), rwg), 1e-6);
  auto dots = poisoned<float>(R);
  moe::rt::cuda::row_dots(dots.data(), drows.data(), dx.data(), didx.data(), R, d, nullptr);
  std::vector<float> rdots(R);
  moe::rt::row_dots(rdots.data(), rows.data(), x.data(), row_tok.data(), R, d);
  EXPECT_LE(rel_err(download(dots.data(), R), rdots), 1e-5);
  // Token-major combine (token choice, k = 2: assignment a = 2t + j) equals the weighted scatter-add.
  std::vector<float> wa(A, 0.0f);
  for (int64_t r = 0; r < R; ++r) wa[row_asg[r]] = wr[r];
  auto dwa = upload<float>(wa);
  auto y3 = upload<float>(y0);
  moe::rt::cuda::combine_token_major(y3.data(), drows.data(), dasg_row.data(), dwa.data(), T, 2, d, nullptr);
  EXPECT_LE(rel_err(download(y3.data(), T * d), ry), 1e-5);
}

TEST(GpuRouting, BiasBalancing) {
  MOE_REQUIRE_GPU();
  const int64_t E = 9;
  std::vector<int64_t> load(E);
  for (auto& l : load) l = static_cast<int64_t>(rng()() % 100);
  auto bias = randn(E, 0.1f), ref = bias;
  auto db = upload<float>(bias);
  auto dl = upload_raw(load);
  bias_balancing_update(db.data(), dl.data(), E, 0.001f, nullptr);
  const double mean = std::accumulate(load.begin(), load.end(), 0.0) / E;
  for (int64_t e = 0; e < E; ++e) ref[e] += 0.001f * static_cast<float>((mean > load[e]) - (mean < load[e]));
  EXPECT_LE(rel_err(download(db.data(), E), ref), 1e-6);
}

template <typename T>
void check_expert_bank(const std::vector<int64_t>& offsets, bool expect_uniform) {
  const int64_t E = static_cast<int64_t>(offsets.size()) - 1, R = offsets.back(), d = 48, f = 80;
  auto w1 = randn(E * f * d, 0.2f), w2 = randn(E * d * f, 0.2f), w3 = randn(E * f * d, 0.2f);
  auto x = randn(R * d), dy = randn(R * d);
  auto dw1 = upload<T>(w1);
  auto dw2 = upload<T>(w2);
  auto dw3 = upload<T>(w3);
  auto dx_in = upload<T>(x);
  auto ddy = upload<T>(dy);
  auto h1 = poisoned<T>(R * f), h3 = poisoned<T>(R * f), act = poisoned<T>(R * f), dact = poisoned<T>(R * f);
  auto y = poisoned<T>(R * d), dx = poisoned<T>(R * d);
  std::vector<float> g1 = randn(E * f * d), g2 = randn(E * d * f), g3 = randn(E * f * d);
  auto dg1 = upload<float>(g1);
  auto dg2 = upload<float>(g2);
  auto dg3 = upload<float>(g3);
  Blas blas;
  ExpertBank<T> bank{dw1.data(), dw2.data(), dw3.data(), d, f};
  ExpertActivations<T> a{h1.data(), h3.data(), act.data()};
  const auto pf = expert_ffn_forward(blas, bank, dx_in.data(), offsets, a, y.data());
  const auto pb = expert_ffn_backward(blas, bank, {dg1.data(), dg2.data(), dg3.data()}, dx_in.data(), offsets, a,
                                      ddy.data(), dact.data(), dx.data());
  EXPECT_EQ(pf.forward, expect_uniform ? GroupedPath::strided_batched : GroupedPath::grouped_batched);
  ExpertWeights<float> cw;
  ExpertGrads<float> cg;
  for (int64_t i = 0; i < E; ++i) {
    cw.w1.push_back(w1.data() + i * f * d), cw.w2.push_back(w2.data() + i * d * f), cw.w3.push_back(w3.data() + i * f * d);
    cg.w1.push_back(g1.data() + i * f * d), cg.w2.push_back(g2.data() + i * d * f), cg.w3.push_back(g3.data() + i * f * d);
  }
  SwigluExperts<float> cpu(d, f);
  std::vector<float> ry(R * d), rdx(R * d);
  cpu.forward(cw, x.data(), offsets, ry.data());
  cpu.backward(cw, cg, dy.data(), rdx.data(), false);
  EXPECT_LE(rel_err(download(y.data(), R * d), ry), tolerance<T>());
  EXPECT_LE(rel_err(download(dx.data(), R * d), rdx), tolerance<T>());
  EXPECT_LE(rel_err(download(dg1.data(), g1.size()), g1), tolerance<T>());
  EXPECT_LE(rel_err(download(dg2.data(), g2.size()), g2), tolerance<T>());
  EXPECT_LE(rel_err(download(dg3.data(), g3.size()), g3), tolerance<T>());
  (void)pb;
}

TEST(GpuExperts, DroplessGroupedGemmFp32AndBf16) {
  MOE_REQUIRE_GPU();
  check_expert_bank<float>({0, 13, 13, 40, 41, 90}, false);  // expert 1 empty
  check_expert_bank<bf16>({0, 13, 13, 40, 41, 90}, false);
}

TEST(GpuExperts, CapacityStridedBatchedFp32AndBf16) {
  MOE_REQUIRE_GPU();
  check_expert_bank<float>({0, 16, 32, 48, 64}, true);
  check_expert_bank<bf16>({0, 16, 32, 48, 64}, true);
}

}  // namespace
}  // namespace moe::rt::cuda::test
