// Dense ops: each op's float output against an independent float64 reference written here with
// plain loops, and each op's backward (run in float64) against central differences of the
// scalar L = Σ out ⊙ R for a random R. Inputs are fresh random numbers on every run; the seed is
// printed on failure so a failing case can be replayed (MOE_TEST_SEED=...).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "attention.h"
#include "cross_entropy.h"
#include "embedding.h"
#include "gemm.h"
#include "linear.h"
#include "rmsnorm.h"
#include "rope.h"
#include "swiglu.h"
#include "vocab_parallel_cross_entropy.h"

using namespace moe::rt;
using Vec = std::vector<double>;

namespace {

uint64_t test_seed() {
  if (const char* s = std::getenv("MOE_TEST_SEED")) return std::stoull(s);
  return std::random_device{}();
}

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = test_seed();
    rng_.seed(seed_);
  }
  Vec randn(int64_t n, double scale = 1.0) {
    std::normal_distribution<double> dist(0.0, scale);
    Vec v(n);
    for (auto& x : v) x = dist(rng_);
    return v;
  }
  std::vector<int32_t> rand_tokens(int64_t n, int32_t vocab) {
    std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = dist(rng_);
    return t;
  }
  std::string trace() const { return "MOE_TEST_SEED=" + std::to_string(seed_); }

  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
};

std::vector<float> to_float(const Vec& v) { return std::vector<float>(v.begin(), v.end()); }

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central-difference gradient of f with respect to every element of x (perturbed in place).
Vec numeric_grad(Vec& x, const std::function<double()>& f, double eps = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + eps;
    const double up = f();
    x[i] = keep - eps;
    const double down = f();
    x[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

// |a − b| ≤ atol + rtol · |b| elementwise, reporting the first mismatch.
void expect_close(const Vec& a, const Vec& b, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) {
      ADD_FAILURE() << what << ": element " << i << " is " << a[i] << ", expected " << b[i];
      return;
    }
}

void expect_close(const std::vector<float>& a, const Vec& b, double rtol, double atol,
                  const std::string& what) {
  expect_close(Vec(a.begin(), a.end()), b, rtol, atol, what);
}

// Float64 gradient checks are exact up to O(eps²) truncation and ~1e-10 rounding.
constexpr double kGradRtol = 1e-6, kGradAtol = 1e-8;
// Float ops against float64 references: a few ulps of float accumulated over short sums.
constexpr double kFloatRtol = 1e-4, kFloatAtol = 1e-5;

}  // namespace

TEST_F(OpsTest, GemmDoubleOverloadMatchesReference) {
  SCOPED_TRACE(trace());
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const int64_t M = 7, N = 5, K = 9;
      Vec A = randn(M * K), B = randn(K * N), C = randn(M * N), R = C;
      gemm(ta, tb, M, N, K, 0.5, A.data(), ta ? M : K, B.data(), tb ? K : N, 2.0, C.data(), N);
      gemm_reference(ta, tb, M, N, K, 0.5, A.data(), ta ? M : K, B.data(), tb ? K : N, 2.0, R.data(), N);
      expect_close(C, R, 1e-12, 1e-12, "gemm double");
    }
}

TEST_F(OpsTest, LinearMatchesReferenceAndGradients) {
  SCOPED_TRACE(trace());
  const int64_t rows = 6, in = 5, out = 4;
  Vec x = randn(rows * in), w = randn(out * in), R = randn(rows * out);
  auto reference = [&]() {
    Vec y(rows * out, 0.0);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i) y[t * out + o] += x[t * in + i] * w[o * in + i];
    return y;
  };
  std::vector<float> xf = to_float(x), wf = to_float(w), yf(rows * out);
  linear_forward(yf.data(), xf.data(), wf.data(), rows, in, out);
  expect_close(yf, reference(), kFloatRtol, kFloatAtol, "linear forward");

  auto loss = [&]() {
    Vec y(rows * out);
    linear_forward(y.data(), x.data(), w.data(), rows, in, out);
    return dot(y, R);
  };
  Vec dx(rows * in, 0.0), dw(out * in, 0.0);
  linear_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rows, in, out);
  expect_close(dx, numeric_grad(x, loss), kGradRtol, kGradAtol, "linear dx");
  expect_close(dw, numeric_grad(w, loss), kGradRtol, kGradAtol, "linear dw");

  // dW accumulates; dx overwrites unless asked to accumulate.
  Vec dx2 = dx, dw2 = dw;
  linear_backward(dx2.data(), dw2.data(), R.data(), x.data(), w.data(), rows, in, out);
  for (size_t i = 0; i < dw.size(); ++i) EXPECT_NEAR(dw2[i], 2 * dw[i], 1e-12);
  expect_close(dx2, dx, 1e-12, 1e-12, "linear dx overwritten");
  linear_backward(dx2.data(), static_cast<double*>(nullptr), R.data(), x.data(), w.data(), rows, in, out,
                  true);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx2[i], 2 * dx[i], 1e-12);
}

TEST_F(OpsTest, SwigluMatchesReferenceAndGradients) {
  SCOPED_TRACE(trace());
  const int64_t n = 50;
  Vec a = randn(n, 3.0), b = randn(n), R = randn(n);
  Vec ref(n);
  for (int64_t i = 0; i < n; ++i) ref[i] = a[i] / (1 + std::exp(-a[i])) * b[i];
  std::vector<float> af = to_float(a), bf = to_float(b), of(n);
  swiglu_forward(of.data(), af.data(), bf.data(), n);
  expect_close(of, ref, kFloatRtol, kFloatAtol, "swiglu forward");

  auto loss = [&]() {
    Vec o(n);
    swiglu_forward(o.data(), a.data(), b.data(), n);
    return dot(o, R);
  };
  Vec da(n), db(n);
  swiglu_backward(da.data(), db.data(), R.data(), a.data(), b.data(), n);
  expect_close(da, numeric_grad(a, loss), kGradRtol, kGradAtol, "swiglu da");
  expect_close(db, numeric_grad(b, loss), kGradRtol, kGradAtol, "swiglu db");
}

TEST_F(OpsTest, EmbeddingGathersRowsAndScatterAddsGradients) {
  SCOPED_TRACE(trace());
  const int64_t vocab = 7, d = 3, rows = 20;  // 20 tokens over 7 ids: repeats are certain
  Vec table = randn(vocab * d), R = randn(rows * d);
  const auto tokens = rand_tokens(rows, vocab);
  Vec out(rows * d);
  embedding_forward(out.data(), tokens.data(), table.data(), rows, d);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t i = 0; i < d; ++i) EXPECT_EQ(out[t * d + i], table[tokens[t] * d + i]);
  auto loss = [&]() {
    Vec o(rows * d);
    embedding_forward(o.data(), tokens.data(), table.data(), rows, d);
    return dot(o, R);
  };
  Vec dtable(vocab * d, 0.0);
  embedding_backward(dtable.data(), R.data(), tokens.data(), rows, d);
  expect_close(dtable, numeric_grad(table, loss), kGradRtol, kGradAtol, "embedding dtable");
}

// A vocabulary split into 3 shards (tensor parallelism): the shards' rows summed are the whole
// table's lookup, and each shard's gradient is the whole gradient's rows of its ids.
TEST_F(OpsTest, EmbeddingShardsSumToTheWholeLookup) {
  SCOPED_TRACE(trace());
  const int64_t vocab = 9, d = 4, rows = 25, shards = 3, n = vocab / shards;
  Vec table = randn(vocab * d), R = randn(rows * d);
  const auto tokens = rand_tokens(rows, static_cast<int32_t>(vocab));
  Vec whole(rows * d), summed(rows * d, 0.0), dwhole(vocab * d, 0.0);
  embedding_forward(whole.data(), tokens.data(), table.data(), rows, d);
  embedding_backward(dwhole.data(), R.data(), tokens.data(), rows, d);
  for (int64_t s = 0; s < shards; ++s) {
    const VocabRange range{s * n, n};
    Vec part(rows * d), dpart(n * d, 0.0);
    embedding_forward(part.data(), tokens.data(), table.data() + s * n * d, rows, d, range);
    for (int64_t i = 0; i < rows * d; ++i) summed[i] += part[i];
    embedding_backward(dpart.data(), R.data(), tokens.data(), rows, d, range);
    for (int64_t i = 0; i < n * d; ++i) EXPECT_EQ(dpart[i], dwhole[s * n * d + i]) << "shard " << s << ", element " << i;
  }
  for (int64_t i = 0; i < rows * d; ++i) EXPECT_EQ(summed[i], whole[i]) << "element " << i;
}

// Megatron's vocab-parallel cross-entropy over 3 shards, combined as the tp group combines them
// (each shard's log-sum-exp in its slot, the target logits summed): the loss and dlogits of the
// whole vocabulary's cross_entropy_forward/backward, in float64.
TEST_F(OpsTest, VocabParallelCrossEntropyMatchesTheWholeVocabulary) {
  SCOPED_TRACE(trace());
  const int64_t rows = 7, vocab = 12, shards = 3, n = vocab / shards;
  Vec logits = randn(rows * vocab, 3.0);
  const auto targets = rand_tokens(rows, static_cast<int32_t>(vocab));
  Vec probs(rows * vocab), dl(rows * vocab);
  const double whole = cross_entropy_forward(probs.data(), logits.data(), targets.data(), rows, vocab);
  cross_entropy_backward(dl.data(), probs.data(), targets.data(), rows, vocab, 0.5, 2 * rows);
  std::vector<double> stats(static_cast<size_t>((shards + 1) * rows), 0.0);  // the all-reduce's sum
  std::vector<Vec> shard_logits(shards, Vec(rows * n));
  for (int64_t s = 0; s < shards; ++s) {
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t i = 0; i < n; ++i) shard_logits[s][t * n + i] = logits[t * vocab + s * n + i];
    std::vector<double> target(static_cast<size_t>(rows));
    shard_statistics(shard_logits[s].data(), targets.data(), rows, n, s * n, stats.data() + s * rows, target.data());
    for (int64_t t = 0; t < rows; ++t) stats[shards * rows + t] += target[t];
  }
  std::vector<double> lse(static_cast<size_t>(rows));
  combine_shard_lse(stats.data(), shards, rows, lse.data());
  for (int64_t s = 0; s < shards; ++s) {
    Vec p(rows * n), g(rows * n);
    const double loss = shard_softmax(p.data(), shard_logits[s].data(), lse.data(), stats.data() + shards * rows, rows, n);
    EXPECT_NEAR(loss, whole, 1e-12 * whole) << "shard " << s;
    const std::vector<int32_t> mine = shard_targets(targets.data(), rows, n, s * n);
    cross_entropy_backward(g.data(), p.data(), mine.data(), rows, n, 0.5, 2 * rows);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(g[t * n + i], dl[t * vocab + s * n + i], 1e-14) << "shard " << s << ", row " << t << ", column " << i;
  }
}

TEST_F(OpsTest, RmsnormMatchesReferenceAndGradients) {
  SCOPED_TRACE(trace());
  const int64_t rows = 5, d = 16;
  const double eps = 1e-5;
  Vec x = randn(rows * d, 2.0), w = randn(d), R = randn(rows * d);
  Vec ref(rows * d);
  for (int64_t r = 0; r < rows; ++r) {
    double ms = 0;
    for (int64_t i = 0; i < d; ++i) ms += x[r * d + i] * x[r * d + i] / d;
    for (int64_t i = 0; i < d; ++i) ref[r * d + i] = w[i] * x[r * d + i] / std::sqrt(ms + eps);
  }
  std::vector<float> xf = to_float(x), wf = to_float(w), yf(rows * d), rstdf(rows);
  rmsnorm_forward(yf.data(), rstdf.data(), xf.data(), wf.data(), rows, d, eps);
  expect_close(yf, ref, kFloatRtol, kFloatAtol, "rmsnorm forward");

  Vec rstd(rows);
  auto loss = [&]() {
    Vec y(rows * d), s(rows);
    rmsnorm_forward(y.data(), s.data(), x.data(), w.data(), rows, d, eps);
    return dot(y, R);
  };
  Vec y(rows * d);
  rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), rows, d, eps);
  Vec dx(rows * d, 0.0), dw(d, 0.0);
  rmsnorm_backward(dx.data(), dw.data(), R.data(), x.data(), w.data(), rstd.data(), rows, d);
  expect_close(dx, numeric_grad(x, loss), kGradRtol, kGradAtol, "rmsnorm dx");
  expect_close(dw, numeric_grad(w, loss), kGradRtol, kGradAtol, "rmsnorm dw");
}

TEST_F(OpsTest, RopeMatchesRotateHalfReferenceAndGradients) {
  SCOPED_TRACE(trace());
  const int64_t B = 2, S = 6, H = 3, hd = 8;
  const double theta = 500.0;
  Vec x = randn(B * S * H * hd), R = randn(B * S * H * hd);
  // Hugging Face: emb = cat(freqs, freqs); x·cos(emb) + rotate_half(x)·sin(emb), rotate_half = [−x2, x1].
  Vec ref(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < S; ++p)
      for (int64_t h = 0; h < H; ++h) {
        const double* v = x.data() + ((b * S + p) * H + h) * hd;
        double* o = ref.data() + ((b * S + p) * H + h) * hd;
        for (int64_t j = 0; j < hd; ++j) {
          const int64_t i = j % (hd / 2);
          const double angle = p / std::pow(theta, 2.0 * i / hd);
          const double rotated = j < hd / 2 ? -v[j + hd / 2] : v[j - hd / 2];
          o[j] = v[j] * std::cos(angle) + rotated * std::sin(angle);
        }
      }
  std::vector<float> xf = to_float(x);
  rope_forward(xf.data(), B, S, H, hd, theta);
  expect_close(xf, ref, kFloatRtol, kFloatAtol, "rope forward");

  auto loss = [&]() {
    Vec y = x;
    rope_forward(y.data(), B, S, H, hd, theta);
    return dot(y, R);
  };
  Vec dx = R;
  rope_backward(dx.data(), B, S, H, hd, theta);
  expect_close(dx, numeric_grad(x, loss), kGradRtol, kGradAtol, "rope dx");
}

TEST_F(OpsTest, RopeScoresDependOnlyOnRelativePosition) {
  SCOPED_TRACE(trace());
  const int64_t S = 12, hd = 8;
  Vec qv = randn(hd), kv = randn(hd);
  Vec q(S * hd), k(S * hd);
  for (int64_t p = 0; p < S; ++p)
    for (int64_t j = 0; j < hd; ++j) q[p * hd + j] = qv[j], k[p * hd + j] = kv[j];
  rope_forward(q.data(), 1, S, 1, hd, 10000.0);
  rope_forward(k.data(), 1, S, 1, hd, 10000.0);
  auto score = [&](int64_t m, int64_t n) {
    double s = 0;
    for (int64_t j = 0; j < hd; ++j) s += q[m * hd + j] * k[n * hd + j];
    return s;
  };
  EXPECT_NEAR(score(5, 2), score(9, 6), 1e-10);
  EXPECT_NEAR(score(3, 3), score(11, 11), 1e-10);
  EXPECT_GT(std::abs(score(5, 2) - score(5, 4)), 1e-6);  // and it does depend on the offset
}

namespace {

// Plain-loop causal GQA attention in float64.
Vec attention_reference(const Vec& q, const Vec& k, const Vec& v, const AttentionShape& s) {
  const int64_t S = s.seq, hd = s.head_dim, group = s.heads / s.kv_heads;
  Vec out(s.batch * S * s.heads * hd, 0.0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / group;
      for (int64_t i = 0; i < S; ++i) {
        Vec sc(i + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double d = 0;
          for (int64_t c = 0; c < hd; ++c)
            d += q[((b * S + i) * s.heads + h) * hd + c] * k[((b * S + j) * s.kv_heads + g) * hd + c];
          sc[j] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (auto& x : sc) sum += (x = std::exp(x - mx));
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t c = 0; c < hd; ++c)
            out[((b * S + i) * s.heads + h) * hd + c] += sc[j] / sum * v[((b * S + j) * s.kv_heads + g) * hd + c];
      }
    }
  return out;
}

}  // namespace

TEST_F(OpsTest, AttentionMatchesReferenceAndGradients) {
  SCOPED_TRACE(trace());
  for (const auto& s : {AttentionShape{2, 5, 4, 2, 4}, AttentionShape{1, 4, 3, 3, 2}, AttentionShape{1, 6, 4, 1, 4}}) {
    SCOPED_TRACE("heads " + std::to_string(s.heads) + " kv_heads " + std::to_string(s.kv_heads));
    const int64_t nq = s.batch * s.seq * s.heads * s.head_dim, nkv = s.batch * s.seq * s.kv_heads * s.head_dim;
    Vec q = randn(nq), k = randn(nkv), v = randn(nkv), R = randn(nq);
    std::vector<float> qf = to_float(q), kf = to_float(k), vf = to_float(v), of(nq),
                       pf(s.batch * s.heads * s.seq * s.seq);
    attention_forward(of.data(), pf.data(), qf.data(), kf.data(), vf.data(), s);
    expect_close(of, attention_reference(q, k, v, s), kFloatRtol, kFloatAtol, "attention forward");

    Vec probs(pf.size());
    auto loss = [&]() {
      Vec o(nq);
      attention_forward(o.data(), probs.data(), q.data(), k.data(), v.data(), s);
      return dot(o, R);
    };
    loss();
    Vec dq(nq), dk(nkv, 7.0), dv(nkv, 7.0);  // garbage in dk/dv: backward must overwrite
    attention_backward(dq.data(), dk.data(), dv.data(), R.data(), probs.data(), q.data(), k.data(),
                       v.data(), s);
    expect_close(dq, numeric_grad(q, loss), kGradRtol, kGradAtol, "attention dq");
    expect_close(dk, numeric_grad(k, loss), kGradRtol, kGradAtol, "attention dk");
    expect_close(dv, numeric_grad(v, loss), kGradRtol, kGradAtol, "attention dv");
  }
}

TEST_F(OpsTest, AttentionThreadedPathMatchesReference) {
  SCOPED_TRACE(trace());
  // Large enough that the work is split over threads (attention.cpp: ≥ 4 MFLOP).
  set_gemm_threads(2);
  const AttentionShape s{2, 96, 4, 2, 32};
  const int64_t nq = s.batch * s.seq * s.heads * s.head_dim, nkv = s.batch * s.seq * s.kv_heads * s.head_dim;
  Vec q = randn(nq), k = randn(nkv), v = randn(nkv), R = randn(nq);
  std::vector<float> qf = to_float(q), kf = to_float(k), vf = to_float(v), of(nq),
                     pf(s.batch * s.heads * s.seq * s.seq);
  attention_forward(of.data(), pf.data(), qf.data(), kf.data(), vf.data(), s);
  expect_close(of, attention_reference(q, k, v, s), kFloatRtol, kFloatAtol, "attention forward");
  // Backward in float against the same code in double (itself checked by differences above).
  Vec probs(pf.size()), o(nq), dq(nq), dk(nkv), dv(nkv);
  attention_forward(o.data(), probs.data(), q.data(), k.data(), v.data(), s);
  attention_backward(dq.data(), dk.data(), dv.data(), R.data(), probs.data(), q.data(), k.data(), v.data(), s);
  std::vector<float> Rf = to_float(R), dqf(nq), dkf(nkv), dvf(nkv);
  attention_backward(dqf.data(), dkf.data(), dvf.data(), Rf.data(), pf.data(), qf.data(), kf.data(),
                     vf.data(), s);
  expect_close(dqf, dq, 1e-3, 1e-4, "attention dq float");
  expect_close(dkf, dk, 1e-3, 1e-4, "attention dk float");
  expect_close(dvf, dv, 1e-3, 1e-4, "attention dv float");
  EXPECT_EQ(gemm_threads(), 2);  // the workers' single-thread GEMM setting is undone
}

TEST_F(OpsTest, CrossEntropyMatchesReferenceAndGradients) {
  SCOPED_TRACE(trace());
  const int64_t rows = 6, vocab = 9;
  Vec logits = randn(rows * vocab, 3.0);
  const auto targets = rand_tokens(rows, static_cast<int32_t>(vocab));
  double ref = 0;
  for (int64_t t = 0; t < rows; ++t) {
    double z = 0;
    for (int64_t i = 0; i < vocab; ++i) z += std::exp(logits[t * vocab + i]);
    ref += (std::log(z) - logits[t * vocab + targets[t]]) / rows;
  }
  std::vector<float> lf = to_float(logits), pf(rows * vocab);
  EXPECT_NEAR(cross_entropy_forward(pf.data(), lf.data(), targets.data(), rows, vocab), ref, 1e-5 * ref);

  auto loss = [&]() {
    Vec p(rows * vocab);
    return cross_entropy_forward(p.data(), logits.data(), targets.data(), rows, vocab);
  };
  Vec probs(rows * vocab), dl(rows * vocab);
  cross_entropy_forward(probs.data(), logits.data(), targets.data(), rows, vocab);
  cross_entropy_backward(dl.data(), probs.data(), targets.data(), rows, vocab, 1.0);
  expect_close(dl, numeric_grad(logits, loss), kGradRtol, kGradAtol, "cross-entropy dlogits");

  // In place: probs and dlogits may alias the logits buffer.
  std::vector<float> inplace = to_float(logits);
  cross_entropy_forward(inplace.data(), inplace.data(), targets.data(), rows, vocab);
  cross_entropy_backward(inplace.data(), inplace.data(), targets.data(), rows, vocab, 1.0);
  expect_close(inplace, dl, 1e-4, 1e-6, "cross-entropy in place");
}

TEST_F(OpsTest, CrossEntropyStaysFiniteForHugeLogits) {
  std::vector<float> logits = {1000.f, -1000.f, 0.f, 999.f}, probs(4);
  const std::vector<int32_t> targets = {1};
  const double loss = cross_entropy_forward(probs.data(), logits.data(), targets.data(), 1, 4);
  // −log softmax[1] = 2000 + log(1 + e^{−1}) up to e^{−1000} terms
  EXPECT_NEAR(loss, 2000.0 + std::log1p(std::exp(-1.0)), 1e-3);
  EXPECT_NEAR(probs[0] + probs[3], 1.0, 1e-6);
}

TEST(Gemm, CoretypeOverrideOnlyReplacesAFallbackCore) {
  const std::string backend = gemm_backend();
  EXPECT_FALSE(backend.empty());
  if (const char* core = blas_coretype_override()) {
    // Suggested only when the loaded kernels are older than the CPU, and never what is loaded.
    EXPECT_EQ(backend.find(core), std::string::npos) << backend << " vs " << core;
    EXPECT_TRUE(std::string(core) == "SkylakeX" || std::string(core) == "Haswell") << core;
  }
  // An explicit choice is never overridden.
  setenv("OPENBLAS_CORETYPE", "Prescott", 1);
  EXPECT_EQ(blas_coretype_override(), nullptr);
  unsetenv("OPENBLAS_CORETYPE");
}
