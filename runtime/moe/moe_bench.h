#pragma once
// The MoE layer micro-benchmark behind `moe-runtime bench SPEC [--tokens N] [--skew S]`:
// forward+backward of one MoeLayer (the real one) on synthetic tokens x ~ N(0, 1), with the
// routing skewed towards low-numbered experts by a Zipf exponent S: the router's logits are
// −S · ln(e + 1) plus Gumbel noise (set up through its weights and three kinds of input feature),
// so each token's first choice is expert e with probability ∝ (e + 1)^−S (Gumbel-max trick);
// S = 0 is uniform. In the same run it times plain gemm() (cblas_sgemm) calls of exactly the
// expert GEMMs' shapes on separate buffers, and a 2048³ sgemm, so the ratios are measured together.
#include <cstdint>
#include <string>
#include <vector>

#include "job_spec.h"

namespace moe::rt {

struct MoeBenchResult {
  int64_t tokens = 0, d_model = 0, d_expert = 0, num_experts = 0, top_k = 0;
  double skew = 0;
  int threads = 0, iterations = 0;
  // Rates come from the best iteration (least disturbed on a shared machine); the time split is
  // the mean over iterations.
  double layer_seconds = 0;         // forward + backward, best iteration
  double tokens_per_s = 0;
  double layer_cpu_seconds = 0;     // CPU time of all threads per iteration (mean)
  double expert_gflops = 0;         // routed experts' GEMM FLOPs / their phase time (incl. SwiGLU)
  double sgemm_same_shapes_gflops = 0;  // plain gemm() on the same shapes, same run
  double sgemm_square_gflops = 0;   // plain 2048³ sgemm, same run
  double ratio_same_shapes = 0;     // expert_gflops / sgemm_same_shapes_gflops
  double ratio_square = 0;          // expert_gflops / sgemm_square_gflops
  // Per-iteration seconds by phase (forward + backward).
  double router_s = 0, permute_s = 0, experts_s = 0, combine_s = 0, shared_s = 0;
  std::vector<int64_t> counts, dropped;  // last iteration's expert_load

  std::string table() const;  // a printable table, one metric per line
};

// Runs the benchmark (1 warm-up + `iterations` timed passes). `threads` sets the GEMM threads
// (0: leave as is). Throws moe::Error for a spec the layer refuses or tokens < 1.
MoeBenchResult run_moe_layer_bench(const JobSpec& spec, int64_t tokens, double skew, int threads,
                                   int iterations = 3);

}  // namespace moe::rt
