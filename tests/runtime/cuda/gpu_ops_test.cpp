// Every dense kernel against its CPU twin (runtime/ops, runtime/model/optimizer) on fresh random
// inputs, in fp32 (rel err ≤ 1e-5) and bf16 (≤ 1e-2), outputs poisoned first. Label gpu.
#include <cmath>

#include "cross_entropy.h"
#include "embedding.h"
#include "gpu_test_util.h"
#include "optimizer.h"
#include "rmsnorm.h"
#include "rope.h"
#include "swiglu.h"
#include "attention.h"
#include "cuda_attention.h"

namespace moe::rt::cuda::test {
namespace {

template <typename T>
class GpuOps : public ::testing::Test {};
using Types = ::testing::Types<float, bf16>;
TYPED_TEST_SUITE(GpuOps, Types);

TYPED_TEST(GpuOps, Embedding) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  const int64_t V = 50, d = 33, rows = 70;
  auto table = randn(V * d), dout = randn(rows * d);
  auto tokens = randint(rows, V);
  auto dt = upload<T>(table);
  auto ddo = upload<T>(dout);
  auto dtok = upload_raw(tokens);
  auto out = poisoned<T>(rows * d);
  embedding_forward(out.data(), dtok.data(), dt.data(), rows, d, nullptr);
  std::vector<float> ref(rows * d);
  moe::rt::embedding_forward(ref.data(), tokens.data(), table.data(), rows, d);
  EXPECT_LE(rel_err(download(out.data(), ref.size()), ref), tolerance<T>());
  std::vector<float> g0 = randn(V * d), gref = g0;
  auto dg = upload<float>(g0);
  gref = g0;
  embedding_backward(dg.data(), ddo.data(), dtok.data(), rows, d, nullptr);
  moe::rt::embedding_backward(gref.data(), dout.data(), tokens.data(), rows, d);
  EXPECT_LE(rel_err(download(dg.data(), gref.size()), gref), tolerance<T>());
}

TYPED_TEST(GpuOps, RmsNorm) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  const int64_t rows = 37, d = 300;
  auto x = randn(rows * d), w = randn(d), dy = randn(rows * d), dx0 = randn(rows * d), dw0 = randn(d);
  auto dx_ = upload<T>(x);
  auto dw_ = upload<T>(w);
  auto ddy = upload<T>(dy);
  auto ddx = upload<T>(dx0);
  auto ddw = upload<float>(dw0);
  auto y = poisoned<T>(rows * d);
  auto rstd = poisoned<float>(rows);
  rmsnorm_forward(y.data(), rstd.data(), dx_.data(), dw_.data(), rows, d, 1e-5, nullptr);
  std::vector<float> ry(rows * d), rr(rows), rdx = dx0, rdw = dw0;
  moe::rt::rmsnorm_forward(ry.data(), rr.data(), x.data(), w.data(), rows, d, 1e-5);
  EXPECT_LE(rel_err(download(y.data(), ry.size()), ry), tolerance<T>());
  EXPECT_LE(rel_err(download(rstd.data(), rows), rr), tolerance<T>());
  rmsnorm_backward(ddx.data(), ddw.data(), ddy.data(), dx_.data(), dw_.data(), rstd.data(), rows, d, nullptr);
  moe::rt::rmsnorm_backward(rdx.data(), rdw.data(), dy.data(), x.data(), w.data(), rr.data(), rows, d);
  EXPECT_LE(rel_err(download(ddx.data(), rdx.size()), rdx), tolerance<T>());
  EXPECT_LE(rel_err(download(ddw.data(), rdw.size()), rdw), tolerance<T>());
}

TYPED_TEST(GpuOps, Rope) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  const int64_t B = 2, S = 17, H = 3, hd = 16;
  auto x = randn(B * S * H * hd);
  auto d = upload<T>(x);
  auto ref = x;
  rope_forward(d.data(), B, S, H, hd, 10000.0, nullptr);
  moe::rt::rope_forward(ref.data(), B, S, H, hd, 10000.0);
  EXPECT_LE(rel_err(download(d.data(), ref.size()), ref), tolerance<T>());
  rope_backward(d.data(), B, S, H, hd, 10000.0, nullptr);
  moe::rt::rope_backward(ref.data(), B, S, H, hd, 10000.0);
  EXPECT_LE(rel_err(download(d.data(), ref.size()), ref), tolerance<T>());
}

TYPED_TEST(GpuOps, SwiGlu) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  const int64_t n = 10007;
  auto a = randn(n), b = randn(n), g = randn(n);
  auto da = upload<T>(a);
  auto db = upload<T>(b);
  auto dg = upload<T>(g);
  auto out = poisoned<T>(n), ga = poisoned<T>(n), gb = poisoned<T>(n);
  swiglu_forward(out.data(), da.data(), db.data(), n, nullptr);
  swiglu_backward(ga.data(), gb.data(), dg.data(), da.data(), db.data(), n, nullptr);
  std::vector<float> ro(n), ra(n), rb(n);
  moe::rt::swiglu_forward(ro.data(), a.data(), b.data(), n);
  moe::rt::swiglu_backward(ra.data(), rb.data(), g.data(), a.data(), b.data(), n);
  EXPECT_LE(rel_err(download(out.data(), n), ro), tolerance<T>());
  EXPECT_LE(rel_err(download(ga.data(), n), ra), tolerance<T>());
  EXPECT_LE(rel_err(download(gb.data(), n), rb), tolerance<T>());
}

TYPED_TEST(GpuOps, Attention) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  AttentionDims s{2, 19, 4, 2, 8};
  const int64_t nq = s.batch * s.seq * s.heads * s.head_dim, nk = s.batch * s.seq * s.kv_heads * s.head_dim,
                np = s.batch * s.heads * s.seq * s.seq;
  auto q = randn(nq), k = randn(nk), v = randn(nk), dout = randn(nq);
  auto dq_ = upload<T>(q);
  auto dk_ = upload<T>(k);
  auto dv_ = upload<T>(v);
  auto ddo = upload<T>(dout);
  auto out = poisoned<T>(nq), probs = poisoned<T>(np), gq = poisoned<T>(nq), gk = poisoned<T>(nk),
       gv = poisoned<T>(nk), scratch = poisoned<T>(np);
  Blas blas;
  attention_forward(blas, out.data(), probs.data(), dq_.data(), dk_.data(), dv_.data(), s);
  attention_backward(blas, gq.data(), gk.data(), gv.data(), scratch.data(), ddo.data(), probs.data(), dq_.data(),
                     dk_.data(), dv_.data(), s);
  moe::rt::AttentionShape cs{s.batch, s.seq, s.heads, s.kv_heads, s.head_dim};
  std::vector<float> ro(nq), rp(np), rq(nq), rk(nk), rv(nk);
  moe::rt::attention_forward(ro.data(), rp.data(), q.data(), k.data(), v.data(), cs);
  moe::rt::attention_backward(rq.data(), rk.data(), rv.data(), dout.data(), rp.data(), q.data(), k.data(), v.data(), cs);
  EXPECT_LE(rel_err(download(out.data(), nq), ro), tolerance<T>());
  EXPECT_LE(rel_err(download(probs.data(), np), rp), tolerance<T>());
  EXPECT_LE(rel_err(download(gq.data(), nq), rq), tolerance<T>());
  EXPECT_LE(rel_err(download(gk.data(), nk), rk), tolerance<T>());
  EXPECT_LE(rel_err(download(gv.data(), nk), rv), tolerance<T>());
}

TYPED_TEST(GpuOps, CrossEntropy) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  const int64_t rows = 45, V = 300;
  auto logits = randn(rows * V, 2.0f);
  auto targets = randint(rows, V);
  auto dl = upload<T>(logits);
  auto dt = upload_raw(targets);
  auto probs = poisoned<float>(rows * V), loss = poisoned<float>(rows), total = poisoned<float>(1);
  auto grad = poisoned<T>(rows * V);
  cross_entropy_forward(probs.data(), loss.data(), dl.data(), dt.data(), rows, V, nullptr);
  sum_reduce(total.data(), loss.data(), rows, nullptr);
  cross_entropy_backward(grad.data(), probs.data(), dt.data(), rows, V, 0.7f, nullptr);
  std::vector<float> rp(rows * V), rg(rows * V);
  const double ref_loss = moe::rt::cross_entropy_forward(rp.data(), logits.data(), targets.data(), rows, V);
  moe::rt::cross_entropy_backward(rg.data(), rp.data(), targets.data(), rows, V, 0.7);
  const double got = download(total.data(), 1)[0] / static_cast<double>(rows);
  EXPECT_LE(std::abs(got - ref_loss) / std::abs(ref_loss), tolerance<T>());
  EXPECT_LE(rel_err(download(probs.data(), rp.size()), rp), tolerance<T>());
  EXPECT_LE(rel_err(download(grad.data(), rg.size()), rg), tolerance<T>());
}

TYPED_TEST(GpuOps, AdamW) {
  using T = TypeParam;
  MOE_REQUIRE_GPU();
  const int64_t n = 4099;
  Param p("w", {n / 1, 1});
  p.shape = {n};  // 1-D keeps the CPU twin's decay off; the GPU is told the same
  p.value = randn(n);
  AdamWConfig cfg;
  AdamW cpu({&p}, cfg);
  auto dp = upload<float>(p.value);
  DeviceBuffer<float> m(n), v(n);
  fill(m.data(), 0.0f, n, nullptr);
  fill(v.data(), 0.0f, n, nullptr);
  auto copy = poisoned<T>(n);
  for (int step = 1; step <= 3; ++step) {
    p.grad = randn(n);
    auto dg = upload<float>(p.grad);
    AdamWStep a;
    a.lr = 1e-2, a.beta1 = cfg.beta1, a.beta2 = cfg.beta2, a.eps = cfg.eps, a.weight_decay = 0.0, a.step = step;
    adamw_step(dp.data(), m.data(), v.data(), dg.data(), copy.data(), n, a, nullptr);
    cpu.step(1e-2);
  }
  EXPECT_LE(rel_err(download(dp.data(), n), p.value), 1e-5);
  EXPECT_LE(rel_err(download(m.data(), n), cpu.exp_avg()[0]), 1e-5);
  EXPECT_LE(rel_err(download(v.data(), n), cpu.exp_avg_sq()[0]), 1e-5);
  EXPECT_LE(rel_err(download(copy.data(), n), p.value), tolerance<T>());
}

}  // namespace
}  // namespace moe::rt::cuda::test
