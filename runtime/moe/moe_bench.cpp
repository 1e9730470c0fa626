// The MoE layer micro-benchmark (see moe_bench.h).
#include "moe_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <time.h>

#include "error.h"
#include "gemm.h"
#include "moe_config.h"
#include "moe_layer.h"

namespace moe::rt {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU seconds of all this process's threads: on a shared, oversubscribed machine the work done is
// steadier than the wall time (which counts the time other jobs held the cores).
double process_cpu_seconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void fill_normal(std::vector<float>& v, std::mt19937_64& rng, double std) {
  std::normal_distribution<float> normal(0.0f, static_cast<float>(std));
  for (float& x : v) x = normal(rng);
}

// The nine GEMMs one SwiGLU expert runs on n rows (3 forward, 6 backward; as in
// swiglu_experts.cpp via linear.h), on plain buffers. Returns their FLOPs.
struct PlainExpertGemms {
  int64_t d, f, n_max;
  std::vector<float> x, w1, w2, w3, h1, h3, act, y, dy, dh, dx, gw1, gw2, gw3;
  PlainExpertGemms(int64_t d_, int64_t f_, int64_t n, std::mt19937_64& rng) : d(d_), f(f_), n_max(std::max<int64_t>(n, 1)) {
    for (auto* v : {&x, &y, &dy, &dx}) v->resize(n_max * d);
    for (auto* v : {&h1, &h3, &act, &dh}) v->resize(n_max * f);
    for (auto* v : {&w1, &w2, &w3, &gw1, &gw2, &gw3}) v->resize(f * d);
    for (auto* v : {&x, &dy, &w1, &w2, &w3, &h1, &h3, &act, &dh}) fill_normal(*v, rng, 0.1);
  }
  double run(int64_t n) {
    if (n == 0) return 0.0;
    gemm(false, true, n, f, d, 1.0f, x.data(), d, w1.data(), d, 0.0f, h1.data(), f);
    gemm(false, true, n, f, d, 1.0f, x.data(), d, w3.data(), d, 0.0f, h3.data(), f);
    gemm(false, true, n, d, f, 1.0f, act.data(), f, w2.data(), f, 0.0f, y.data(), d);
    gemm(false, false, n, f, d, 1.0f, dy.data(), d, w2.data(), f, 0.0f, dh.data(), f);
    gemm(true, false, d, f, n, 1.0f, dy.data(), d, act.data(), f, 1.0f, gw2.data(), f);
    gemm(false, false, n, d, f, 1.0f, dh.data(), f, w1.data(), d, 0.0f, dx.data(), d);
    gemm(true, false, f, d, n, 1.0f, dh.data(), f, x.data(), d, 1.0f, gw1.data(), d);
    gemm(false, false, n, d, f, 1.0f, h3.data(), f, w3.data(), d, 1.0f, dx.data(), d);
    gemm(true, false, f, d, n, 1.0f, h3.data(), f, x.data(), d, 1.0f, gw3.data(), d);
    return 18.0 * static_cast<double>(n) * static_cast<double>(d) * static_cast<double>(f);
  }
};

double square_sgemm_gflops(int repeats) {
  const int64_t n = 2048;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n, 0.0f);
  gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace

MoeBenchResult run_moe_layer_bench(const JobSpec& spec, int64_t tokens, double skew, int threads, int iterations) {
  if (tokens < 1) throw Error("bench: --tokens must be >= 1, got " + std::to_string(tokens));
  if (iterations < 1) throw Error("bench: iterations must be >= 1");
  if (!std::isfinite(skew) || skew < 0) throw Error("bench: --skew must be a finite number >= 0");
  if (threads > 0) set_gemm_threads(threads);
  const MoeConfig config = MoeConfig::from_spec(spec);
  const int64_t d = config.d_model, E = config.num_experts;

  MoeLayer layer(spec, 0);
  std::mt19937_64 rng(static_cast<uint64_t>(spec.train.seed));
  layer.init_params(rng, spec.model.init_std);
  // Zipf-skewed routing by the Gumbel-max trick: logit[t,e] = −S·ln(e+1) + G[t,e], G ~ Gumbel,
  // so a token's first choice is expert e with probability ∝ (e+1)^−S. Feature 0 of every token
  // is 1 (gate weight −S·ln(e+1)); features 1..E carry G (gate weight 1 on feature 1+e).
  if (d < E + 1) throw Error("bench: model.d_model must be > num_experts for the skewed router");
  Param* gate = layer.params()[0];
  std::fill(gate->value.begin(), gate->value.end(), 0.0f);
  for (int64_t e = 0; e < E; ++e) {
    gate->value[e * d] = static_cast<float>(-skew * std::log(double(e + 1)));
    gate->value[e * d + 1 + e] = 1.0f;
  }
  std::vector<float> x(tokens * d), dy(tokens * d), y(tokens * d), dx(tokens * d);
  fill_normal(x, rng, 1.0);
  fill_normal(dy, rng, 1.0);
  std::uniform_real_distribution<double> uniform(1e-12, 1.0);
  for (int64_t t = 0; t < tokens; ++t) {
    x[t * d] = 1.0f;
    for (int64_t e = 0; e < E; ++e) x[t * d + 1 + e] = static_cast<float>(-std::log(-std::log(uniform(rng))));
  }

  MoeLayerOptions options;
  options.training = true;
  auto pass = [&] {
    layer.forward(x.data(), y.data(), tokens, options, rng);
    layer.backward(dy.data(), dx.data());
  };
  pass();  // warm-up: buffers allocated and touched
  layer.reset_phase_times();
  // Best iteration for the rates (the least disturbed on a shared machine), mean for the split.
  double layer_s = 1e300, experts_s = 1e300, experts_flops = 0;
  const double cpu0 = process_cpu_seconds();
  for (int i = 0; i < iterations; ++i) {
    const MoeLayer::PhaseTimes before = layer.phase_times();
    const auto start = Clock::now();
    pass();
    layer_s = std::min(layer_s, seconds_since(start));
    const MoeLayer::PhaseTimes after = layer.phase_times();
    if (after.experts - before.experts < experts_s) {
      experts_s = after.experts - before.experts;
      experts_flops = after.expert_flops - before.expert_flops;
    }
  }
  const double cpu_s = (process_cpu_seconds() - cpu0) / iterations;
  const MoeLayer::PhaseTimes times = layer.phase_times();

  MoeBenchResult r;
  r.tokens = tokens;
  r.d_model = d;
  r.d_expert = config.d_expert;
  r.num_experts = E;
  r.top_k = config.top_k;
  r.skew = skew;
  r.threads = gemm_threads();
  r.iterations = iterations;
  r.layer_seconds = layer_s;
  r.tokens_per_s = static_cast<double>(tokens) / layer_s;
  r.layer_cpu_seconds = cpu_s;
  r.expert_gflops = experts_s > 0 ? experts_flops / experts_s / 1e9 : 0.0;
  r.router_s = times.router / iterations;
  r.permute_s = times.permute / iterations;
  r.experts_s = times.experts / iterations;
  r.combine_s = times.combine / iterations;
  r.shared_s = times.shared / iterations;
  r.counts = layer.stats().counts;
  r.dropped = layer.stats().dropped;

  // Plain sgemm on the same per-expert shapes (rows each expert computed in the last pass).
  std::vector<int64_t> rows(E);
  int64_t n_max = 0;
  for (int64_t e = 0; e < E; ++e) {
    rows[e] = r.counts[e] - r.dropped[e];
    n_max = std::max(n_max, rows[e]);
  }
  PlainExpertGemms plain(d, config.d_expert, n_max, rng);
  for (int64_t e = 0; e < E; ++e) plain.run(rows[e]);  // warm-up
  double best_plain = 0;
  for (int i = 0; i < iterations; ++i) {
    double flops = 0;
    const auto start = Clock::now();
    for (int64_t e = 0; e < E; ++e) flops += plain.run(rows[e]);
    best_plain = std::max(best_plain, flops / seconds_since(start) / 1e9);
  }
  r.sgemm_same_shapes_gflops = best_plain;
  r.sgemm_square_gflops = square_sgemm_gflops(3);
  r.ratio_same_shapes = r.sgemm_same_shapes_gflops > 0 ? r.expert_gflops / r.sgemm_same_shapes_gflops : 0.0;
  r.ratio_square = r.sgemm_square_gflops > 0 ? r.expert_gflops / r.sgemm_square_gflops : 0.0;
  return r;
}

std::string MoeBenchResult::table() const {
  std::string out;
  char line[256];
  auto add = [&](const char* name, const std::string& value) {
    std::snprintf(line, sizeof line, "%-34s %s\n", name, value.c_str());
    out += line;
  };
  auto num = [](double v, const char* fmt) {
    char b[64];
    std::snprintf(b, sizeof b, fmt, v);
    return std::string(b);
  };
  std::snprintf(line, sizeof line, "moe layer bench: tokens %lld, d_model %lld, d_expert %lld, experts %lld, top_k %lld, skew %.2f, threads %d, iterations %d\n",
                (long long)tokens, (long long)d_model, (long long)d_expert, (long long)num_experts, (long long)top_k,
                skew, threads, iterations);
  out += line;
  add("metric", "value");
  add("layer fwd+bwd (ms)", num(layer_seconds * 1e3, "%.1f"));
  add("tokens/s (fwd+bwd)", num(tokens_per_s, "%.0f"));
  add("layer fwd+bwd CPU time (ms)", num(layer_cpu_seconds * 1e3, "%.1f"));
  add("expert GEMMs GFLOP/s", num(expert_gflops, "%.1f"));
  add("sgemm same shapes GFLOP/s", num(sgemm_same_shapes_gflops, "%.1f"));
  add("ratio experts / same shapes", num(ratio_same_shapes, "%.3f"));
  add("sgemm 2048^3 GFLOP/s", num(sgemm_square_gflops, "%.1f"));
  add("ratio experts / 2048^3", num(ratio_square, "%.3f"));
  const double total = router_s + permute_s + experts_s + combine_s + shared_s;
  auto phase = [&](const char* name, double s) {
    add(name, num(s * 1e3, "%.1f") + " ms (" + num(total > 0 ? 100.0 * s / total : 0.0, "%.1f") + "%)");
  };
  phase("time router", router_s);
  phase("time permute", permute_s);
  phase("time experts", experts_s);
  phase("time combine", combine_s);
  if (shared_s > 0) phase("time shared expert", shared_s);
  std::string counts_s, dropped_s;
  int64_t max_c = 0, sum_c = 0;
  for (size_t e = 0; e < counts.size(); ++e) {
    if (e > 0) counts_s += ' ', dropped_s += ' ';
    counts_s += std::to_string(counts[e]);
    dropped_s += std::to_string(dropped[e]);
    max_c = std::max(max_c, counts[e]);
    sum_c += counts[e];
  }
  add("expert counts", counts_s);
  add("expert dropped", dropped_s);
  add("load max/mean", num(sum_c > 0 ? double(max_c) * counts.size() / sum_c : 0.0, "%.2f"));
  return out;
}

}  // namespace moe::rt
