// Token selection kernels: top-k with groups and renormalisation, capacity limits, expert choice,
// and the gate weights' backward (see kernels.h; CPU twin runtime/moe/token_selection.cpp). Ties
// are broken by index exactly as the CPU twin does, so both choose the same assignments.
#include <cub/block/block_scan.cuh>

#include "kernel_util.cuh"
#include "kernels.h"
#include "error.h"

namespace moe::rt::cuda {

namespace {

constexpr int kMaxExperts = 256;

// One thread per token (E ≤ 256: the selection values live in local memory).
__global__ void topk_kernel(int32_t* token, int32_t* expert, float* weight, const float* scores, const float* bias,
                            int64_t tokens, SelectionConfig c) {
  MOE_GRID_LOOP(t, tokens) {
    const int64_t E = c.num_experts, k = c.top_k, G = c.n_group, size = E / G;
    const float* s = scores + t * E;
    double sel[kMaxExperts];
    bool allowed[kMaxExperts];
    for (int64_t e = 0; e < E; ++e) sel[e] = static_cast<double>(s[e]) + static_cast<double>(bias[e]), allowed[e] = true;
    if (G > 1) {
      // Group score = sum of its top two (top one for groups of one); keep the best topk_group
      // groups, ties to the lower group (stable sort in the CPU twin).
      double gs[kMaxExperts];
      for (int64_t g = 0; g < G; ++g) {
        double first = -INFINITY, second = -INFINITY;
        for (int64_t i = 0; i < size; ++i) {
          const double v = sel[g * size + i];
          if (v > first) second = first, first = v;
          else if (v > second) second = v;
        }
        gs[g] = size >= 2 ? first + second : first;
      }
      for (int64_t g = 0; g < G; ++g) {
        int64_t better = 0;
        for (int64_t h = 0; h < G; ++h) better += gs[h] > gs[g] || (gs[h] == gs[g] && h < g);
        for (int64_t i = 0; i < size; ++i) allowed[g * size + i] = better < c.topk_group;
      }
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e)
        if (allowed[e] && (best < 0 || sel[e] > sel[best])) best = e;
      allowed[best] = false;  // taken
      token[t * k + j] = static_cast<int32_t>(t);
      expert[t * k + j] = static_cast<int32_t>(best);
      weight[t * k + j] = s[best];
      sum += s[best];
    }
    const float scale = c.routed_scaling_factor / (c.norm_topk_prob ? sum : 1.0f);
    for (int64_t j = 0; j < k; ++j) weight[t * k + j] *= scale;
  }
}

// One block per expert walks the assignments in order; a block scan gives each of the expert's
// assignments its position (position policy) — or, for the probability policy, its rank by
// weight (larger first, ties to the earlier assignment).
constexpr int kScanThreads = 256;
__global__ void capacity_kernel(int32_t* route, int64_t* counts, int64_t* dropped, const int32_t* expert,
                                const float* weight, int64_t A, int64_t C, bool probability) {
  using Scan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  const int e = blockIdx.x;
  int64_t base = 0, drops = 0;
  for (int64_t start = 0; start < A; start += kScanThreads) {
    const int64_t a = start + threadIdx.x;
    const int mine = a < A && expert[a] == e;
    int prefix = 0, total = 0;
    Scan(temp).ExclusiveSum(mine, prefix, total);
    __syncthreads();
    if (mine) {
      int64_t rank = base + prefix;
      if (probability) {
        rank = 0;
        const float w = weight[a];
        for (int64_t b = 0; b < A; ++b)
          rank += expert[b] == e && (weight[b] > w || (weight[b] == w && b < a));
      }
      const bool keep = C <= 0 || rank < C;
      route[a] = keep ? e : -1;
      drops += !keep;
    }
    base += total;
  }
  const float d = block_sum(static_cast<float>(drops));
  if (threadIdx.x == 0) counts[e] = base, dropped[e] = static_cast<int64_t>(d + 0.5f);
}

// One thread per (expert, token): its rank in the expert's column (larger score first, ties to
// the earlier token); the top C become assignments e·C + rank.
__global__ void expert_choice_kernel(int32_t* token, int32_t* expert, float* weight, const float* scores,
                                     int64_t tokens, int64_t E, int64_t C, float scaling) {
  MOE_GRID_LOOP(i, E * tokens) {
    const int64_t e = i / tokens, t = i % tokens;
    const float v = scores[t * E + e];
    int64_t rank = 0;
    for (int64_t u = 0; u < tokens && rank < C; ++u) {
      const float w = scores[u * E + e];
      rank += w > v || (w == v && u < t);
    }
    if (rank < C) {
      token[e * C + rank] = static_cast<int32_t>(t);
      expert[e * C + rank] = static_cast<int32_t>(e);
      weight[e * C + rank] = v * scaling;
    }
  }
}

__global__ void select_bwd_plain_kernel(float* dscores, const int32_t* token, const int32_t* expert,
                                        const float* dweight, int64_t A, int64_t E, float scale) {
  // A (token, expert) pair occurs at most once, so the adds never collide.
  MOE_GRID_LOOP(a, A) dscores[static_cast<int64_t>(token[a]) * E + expert[a]] += scale * dweight[a];
}

__global__ void select_bwd_norm_kernel(float* dscores, const float* scores, const int32_t* expert,
                                       const float* dweight, int64_t tokens, int64_t E, int64_t k, float scale) {
  MOE_GRID_LOOP(t, tokens) {
    float z = 0.0f, dot = 0.0f;
    for (int64_t j = 0; j < k; ++j) {
      const float s = scores[t * E + expert[t * k + j]];
      z += s;
      dot += dweight[t * k + j] * s;
    }
    for (int64_t j = 0; j < k; ++j) dscores[t * E + expert[t * k + j]] += scale * (dweight[t * k + j] - dot / z) / z;
  }
}

}  // namespace

void topk_select(int32_t* token, int32_t* expert, float* weight, const float* scores, const float* bias,
                 int64_t tokens, const SelectionConfig& c, cudaStream_t s) {
  if (c.num_experts > kMaxExperts)
    throw Error("routing: the CUDA top-k supports at most " + std::to_string(kMaxExperts) + " experts, got " +
                std::to_string(c.num_experts));
  if (tokens <= 0) return;
  topk_kernel<<<grid_for(tokens, 128), 128, 0, s>>>(token, expert, weight, scores, bias, tokens, c);
  MOE_KERNEL_CHECK();
}

void capacity_limit(int32_t* route, int64_t* counts, int64_t* dropped, const int32_t* expert, const float* weight,
                    int64_t assignments, int64_t E, int64_t capacity, bool probability, cudaStream_t s) {
  if (E <= 0) return;
  capacity_kernel<<<E, kScanThreads, 0, s>>>(route, counts, dropped, expert, weight, assignments, capacity,
                                             probability);
  MOE_KERNEL_CHECK();
}

void expert_choice_select(int32_t* token, int32_t* expert, float* weight, const float* scores, int64_t tokens,
                          int64_t E, int64_t C, float scaling, cudaStream_t s) {
  if (E * tokens <= 0) return;
  expert_choice_kernel<<<grid_for(E * tokens, 256), 256, 0, s>>>(token, expert, weight, scores, tokens, E, C, scaling);
  MOE_KERNEL_CHECK();
}

void select_backward(float* dscores, const float* scores, const int32_t* token, const int32_t* expert,
                     const float* dweight, int64_t assignments, int64_t tokens, int64_t E, int64_t top_k,
                     bool norm_topk_prob, float scaling, cudaStream_t s) {
  if (top_k == 0 || !norm_topk_prob) {
    if (assignments <= 0) return;
    select_bwd_plain_kernel<<<grid_for(assignments, 256), 256, 0, s>>>(dscores, token, expert, dweight, assignments,
                                                                        E, scaling);
  } else {
    if (tokens <= 0) return;
    select_bwd_norm_kernel<<<grid_for(tokens, 128), 128, 0, s>>>(dscores, scores, expert, dweight, tokens, E, top_k,
                                                                  scaling);
  }
  MOE_KERNEL_CHECK();
}

}  // namespace moe::rt::cuda
