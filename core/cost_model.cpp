// The cost model (see cost_model.h; formulas and sources in docs/cost-model.md).
#include "cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cpu_runtime_limits.h"
#include "error.h"
#include "hardware_profile.h"
#include "pipeline_schedule.h"
#include "pipeline_timing.h"
#include "rank_layout.h"
#include "spec_choices.h"

namespace moe {

namespace {

using json = nlohmann::json;

double dtype_bytes(const std::string& dtype) { return dtype == "bf16" ? 2.0 : 4.0; }

// Parameters of one layer's parts (whole, before sharding).
struct LayerParams {
  double attn_matmul = 0;  // projections only (FLOPs count these)
  double attn_norms = 0;   // MLA's q_a / kv_a RMSNorms
  double norms = 0;        // input + post-attention RMSNorm
  double dense_ffn = 0;    // one dense SwiGLU FFN
  double router = 0;
  double shared = 0;       // all shared experts of one layer
  double expert = 0;       // one routed expert
};

LayerParams layer_params(const ModelSpec& m) {
  LayerParams p;
  const double d = double(m.d_model), H = double(m.n_heads);
  if (m.attention == "mla") {
    const MlaSpec& a = m.mla;
    const double qk = double(a.qk_nope_head_dim + a.qk_rope_head_dim);
    double q = a.q_lora_rank > 0 ? d * a.q_lora_rank + double(a.q_lora_rank) * H * qk : d * H * qk;
    double kv = d * double(a.kv_lora_rank + a.qk_rope_head_dim) +
                double(a.kv_lora_rank) * H * double(a.qk_nope_head_dim + a.v_head_dim);
    double o = H * double(a.v_head_dim) * d;
    p.attn_matmul = q + kv + o;
    p.attn_norms = double(a.q_lora_rank) + double(a.kv_lora_rank);
  } else {
    const double hd = double(m.resolved_head_dim()), kvh = double(m.n_kv_heads);
    p.attn_matmul = 2 * d * H * hd + 2 * d * kvh * hd;  // q, o; k, v
  }
  p.norms = 2 * d;
  p.dense_ffn = 3 * d * double(m.d_ff);
  p.router = d * double(m.moe.num_experts);
  p.shared = double(m.moe.shared_experts) * 3 * d * double(m.moe.d_shared_expert);
  p.expert = 3 * d * double(m.moe.d_expert);
  return p;
}

// Activation bytes stored for backward per token per layer (no recomputation, flash attention).
struct LayerActivations {
  double attention = 0, dense_ffn = 0, moe = 0;
  double residual = 0;  // of each block's: its residual input and normed copy (whole on every TP rank without SP)
};

LayerActivations layer_activations(const JobSpec& s, double copies_per_token) {
  const ModelSpec& m = s.model;
  const double B = dtype_bytes(s.runtime.dtype), d = double(m.d_model), H = double(m.n_heads);
  LayerActivations a;
  a.residual = 2 * d * B;
  double elems = 2 * d;  // the residual input and its normed copy
  if (m.attention == "mla") {
    const MlaSpec& l = m.mla;
    const double qk = double(l.qk_nope_head_dim + l.qk_rope_head_dim), v = double(l.v_head_dim);
    if (l.q_lora_rank > 0) elems += 2 * double(l.q_lora_rank);          // q_a output and its norm
    elems += double(l.kv_lora_rank + l.qk_rope_head_dim) + double(l.kv_lora_rank);  // kv_a and norm
    elems += 2 * H * qk + 2 * H * v;                                     // q, k, v, attention output
  } else {
    const double hd = double(m.resolved_head_dim()), kvh = double(m.n_kv_heads);
    elems += 2 * H * hd + 2 * kvh * hd;  // q, attention output; k, v
  }
  a.attention = elems * B + 4 * H;  // + fp32 log-sum-exp per head (flash attention)
  a.dense_ffn = (2 * d + 3 * double(m.d_ff)) * B;
  const double f = double(m.moe.d_expert), fs = double(m.moe.d_shared_expert);
  a.moe = (2 * d + copies_per_token * (2 * d + 3 * f) + double(m.moe.shared_experts) * 3 * fs) * B +
          4 * double(m.moe.num_experts);  // fp32 router probabilities
  return a;
}

struct Stage {
  int64_t layers = 0, dense_layers = 0, moe_layers = 0;
  bool first = false, last = false;
};

std::vector<Stage> make_stages(const ModelSpec& m, int64_t pp, const std::vector<int64_t>& split) {
  std::vector<Stage> out(pp);
  for (int64_t s = 0; s < pp; ++s) {
    const auto [begin, end] = stage_layers(m.n_layers, pp, s, split);
    Stage& st = out[s];
    st.layers = end - begin;
    st.dense_layers = std::max<int64_t>(0, std::min(end, m.moe.first_dense_layers) - begin);
    st.moe_layers = st.layers - st.dense_layers;
    st.first = s == 0;
    st.last = s == pp - 1;
  }
  return out;
}

// Probability that none of a token's copies on a set of G of the E experts is kept, when its k
// distinct experts are uniform and each copy is kept with probability f (independently: the
// capacity approximation). With f = 1: the probability that the token misses the set.
double no_kept_copy_probability(double E, double G, double k, double f) {
  auto log_choose = [](double n, double r) { return std::lgamma(n + 1) - std::lgamma(r + 1) - std::lgamma(n - r + 1); };
  double p = 0;
  for (int64_t j = 0; j <= int64_t(k); ++j) {  // j of the k experts are in the set (hypergeometric)
    const double jd = double(j);
    if (jd > G || k - jd > E - G) continue;
    const double pj = std::exp(log_choose(G, jd) + log_choose(E - G, k - jd) - log_choose(E, k));
    p += pj * std::pow(1 - f, jd);
  }
  return p;
}

// Expected share of a token-choice expert's assignments that fit its capacity C when B pooled
// tokens route uniformly: the load L ~ Binomial(B, k/E), share = E[min(L, C)] / E[L].
double expected_kept_share(double B, double k, double E, double C) {
  const double q = k / E, mean = B * q;
  if (mean <= 0) return 1;
  if (q >= 1) return std::min(1.0, C / B);
  const double sd = std::sqrt(B * q * (1 - q));
  if (sd > 30) {  // large batches: the normal tail, E[(L − C)+] = σ·φ(z) + (μ − C)·(1 − Φ(z))
    const double z = (C - mean) / sd;
    const double over = sd * std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI) + (mean - C) * 0.5 * std::erfc(z / std::sqrt(2.0));
    return 1 - over / mean;
  }
  // Σ_{l>C} (l − C)·P(L = l), the pmf in log space, up to far past the mean.
  double over = 0;
  const double end = std::min(B, std::max(C, mean) + 40 * sd + 50);
  for (double l = C + 1; l <= end; ++l) {
    const double log_pmf = std::lgamma(B + 1) - std::lgamma(l + 1) - std::lgamma(B - l + 1) + l * std::log(q) +
                           (B - l) * std::log1p(-q);
    over += (l - C) * std::exp(log_pmf);
  }
  return 1 - over / mean;
}

double ring_allreduce_bytes(double bytes, double n) { return n <= 1 ? 0 : 2 * (n - 1) / n * bytes; }

// The EP groups as the rank layout defines them; finds the rank with the fewest EP peers on its
// node (the most inter-node traffic) and the member count of every node its group spans.
struct EpNodeSplit {
  int64_t own = 1;               // EP members on the worst rank's node (itself included)
  std::vector<int64_t> remote;   // EP members on each other node of its group
};

EpNodeSplit ep_node_split(const ParallelSpec& p) {
  RankLayout shape;  // only the sizes: rank_of is the contract's formula
  shape.tp = p.tp, shape.ep = p.ep, shape.dp = p.dp, shape.pp = p.pp, shape.gpus_per_node = p.gpus_per_node;
  EpNodeSplit best;
  best.own = p.ep + 1;
  std::vector<int64_t> counts;
  for (int64_t pp_i = 0; pp_i < p.pp; ++pp_i)
    for (int64_t dp_i = 0; dp_i < p.dp; ++dp_i)
      for (int64_t tp_i = 0; tp_i < p.tp; ++tp_i) {
        counts.clear();
        int64_t last_node = -1;
        for (int64_t e = 0; e < p.ep; ++e) {  // ascending ranks: nodes are nondecreasing
          int64_t node = shape.rank_of(tp_i, e, dp_i, pp_i) / p.gpus_per_node;
          if (node != last_node) counts.push_back(0), last_node = node;
          ++counts.back();
        }
        for (size_t i = 0; i < counts.size(); ++i)
          if (counts[i] < best.own) {
            best.own = counts[i];
            best.remote.clear();
            for (size_t j = 0; j < counts.size(); ++j)
              if (j != i) best.remote.push_back(counts[j]);
          }
      }
  return best;
}

void plan_a2a(const JobSpec& s, const HardwareProfile& hw, Plan& plan, int64_t moe_layers_stage) {
  const ModelSpec& m = s.model;
  const ParallelSpec& p = s.parallel;
  A2aBreakdown& a = plan.a2a;
  const double E = double(m.moe.num_experts), k = double(m.moe.top_k), ep = double(p.ep);
  a.tokens_per_rank = double(s.train.micro_batch) * double(m.seq_len) / double(p.tp);
  a.bytes_per_copy = a2a_bytes_per_copy(s);
  a.hierarchical = p.hierarchical_a2a;
  const bool capacity = !s.routing.dropless();
  if (capacity) a.capacity_per_expert = std::ceil(s.routing.capacity_factor * a.tokens_per_rank * k / E);
  // Both runtimes send only the kept copies (no padded slots). Expert choice keeps exactly C per
  // expert; token choice with a capacity keeps, in expectation under uniform routing, the share of
  // an expert's load that fits the capacity of the pooled batch (the dp·ep ranks decide drops
  // together, as one process would); dropless keeps every copy.
  if (is_expert_choice(s.routing)) {
    a.kept_share = a.capacity_per_expert / (a.tokens_per_rank * k / E);
  } else if (capacity) {
    const double pooled = a.tokens_per_rank * double(p.dp) * ep;
    a.kept_share = expected_kept_share(pooled, k, E, std::ceil(s.routing.capacity_factor * pooled * k / E - 1e-9));
  }
  // Copies one rank sends to each other EP rank: the expected T·k/ep kept ones.
  const double per_dest = a.tokens_per_rank * k / ep * a.kept_share;
  a.copies_sent = per_dest * (ep - 1);
  a.dispatch_fwd = a.copies_sent * a.bytes_per_copy;
  a.combine_fwd = a.dispatch_fwd;   // the expert outputs go back the same way
  a.dispatch_bwd = a.combine_fwd;   // gradient of combine: same pairs, reverse direction
  a.combine_bwd = a.dispatch_fwd;   // gradient of dispatch
  a.per_layer_micro_batch = a.dispatch_fwd + a.combine_fwd + a.dispatch_bwd + a.combine_bwd;
  const double ga = double(s.train.grad_accum);
  a.per_layer_step = a.per_layer_micro_batch * ga;
  a.per_step = a.per_layer_step * double(moe_layers_stage);

  const EpNodeSplit split = p.ep > 1 ? ep_node_split(p) : EpNodeSplit{};
  a.ep_ranks_per_node = split.own;
  a.ep_nodes = 1 + int64_t(split.remote.size());
  double remote_members = 0;
  for (int64_t c : split.remote) remote_members += double(c);
  const double phases = 4 * ga * a.bytes_per_copy;  // four all-to-alls per layer per micro-batch
  a.flat_intra = per_dest * double(split.own - 1) * phases;
  a.flat_inter = per_dest * remote_members * phases;
  if (!split.remote.empty() && !is_expert_choice(s.routing)) {
    // One copy per token per remote node that holds any of its kept copies, forwarded over NVLink
    // to the expert's rank there (DeepEP-style); own-node copies go directly.
    double nodes_hit = 0;
    for (int64_t c : split.remote) nodes_hit += 1 - no_kept_copy_probability(E, double(c) * E / ep, k, a.kept_share);
    const double T = a.tokens_per_rank, own = double(split.own), kept = k * a.kept_share;
    a.hier_inter = T * nodes_hit * phases;
    a.hier_intra = (T * kept * (own - 1) / ep + T * kept * double(split.remote.size()) * (own - 1) / ep) * phases;
  } else {
    // Expert choice picks (expert, token) pairs, not a token's k experts: no closed form for the
    // distinct tokens per node here; the flat bytes bound the hierarchical ones.
    a.hier_inter = a.flat_inter;
    a.hier_intra = a.flat_intra;
  }
  a.hier_inter_ratio = a.hier_inter > 0 ? a.flat_inter / a.hier_inter : 1.0;

  // Time of all a2a of the stage: flat uses both links at once; hierarchical runs two stages.
  const double bw_intra = hw.intra_node_bw * hw.comm_efficiency, bw_inter = hw.inter_node_bw * hw.comm_efficiency;
  double per_layer_s = a.hierarchical ? a.hier_intra / bw_intra + a.hier_inter / bw_inter
                                      : std::max(a.flat_intra / bw_intra, a.flat_inter / bw_inter);
  plan.time.a2a = per_layer_s * double(moe_layers_stage);
}

// Micro-batches whose activations stage `si` holds at the peak. 1F1B: min(pp − si, m) (the first
// stage warms up with pp − 1 forwards, then holds one more). Interleaved (vpp > 1): Megatron's
// warm-up of 2(pp − si − 1) + (vpp − 1)·pp chunks plus the one running, each chunk 1/vpp of the
// stage — on the first stage pp + (pp − 1)/vpp micro-batches, Korthikanti et al. 2022 §4.2.3's
// (1 + (p − 1)/(p·v)) factor over p.
double micro_batches_in_flight(const ParallelSpec& p, int64_t si, int64_t grad_accum) {
  const double m = double(grad_accum);
  if (p.vpp <= 1) return std::min(double(p.pp - si), m);
  const double chunks = 2.0 * double(p.pp - si - 1) + double(p.vpp - 1) * double(p.pp) + 1;
  return std::min(chunks, m * double(p.vpp)) / double(p.vpp);
}

// Forwards stage `si` recomputes in one step, per chunk (train.recompute; pipeline_timing.h's rule
// on the stage's schedule). Past kMaxPlayedOps ops the closed form of 1F1B: every backward but the
// last stage's last chunk's (stage), every backward (full).
constexpr int64_t kMaxPlayedOps = int64_t{1} << 18;

std::vector<double> recomputed_per_chunk(const ParallelSpec& p, int64_t grad_accum, int64_t si, Recompute mode) {
  std::vector<double> out(static_cast<size_t>(p.vpp), 0.0);
  if (mode == Recompute::none) return out;
  if (grad_accum * p.vpp * p.pp > kMaxPlayedOps) {
    const bool last = si == p.pp - 1;
    for (int64_t c = 0; c < p.vpp; ++c)
      out[static_cast<size_t>(c)] = mode == Recompute::full || !(last && c == p.vpp - 1) ? double(grad_accum) : 0.0;
    return out;
  }
  const std::vector<PipelineOp> ops = interleaved_one_f_one_b(p.pp, si, grad_accum, p.vpp);
  const std::vector<bool> again = recomputed_backwards(ops, mode);
  for (size_t i = 0; i < ops.size(); ++i)
    if (again[i]) out[static_cast<size_t>(ops[i].chunk)] += 1;
  return out;
}

// parallel.batch_overlap: a micro-batch's all-to-alls run during another micro-batch's computation
// (Megatron-Core's combined 1F1B, --overlap-moe-expert-parallel-comm; DeepSeek's DualPipe). Only
// pairs overlap: in the warm-up and cool-down a forward or backward has no partner — 1F1B's warm-up
// of pp − 1 micro-batches (2(pp − 1) + (vpp − 1)·pp chunks interleaved) and the first one after it.
// While they overlap, the all-to-all kernels hold kOverlapCommSms of the GPU's SMs, so the paired
// computation runs on the rest: 20, DeepEP's default (Megatron-LM's --moe-deepep-num-sms default 20)
// and what DeepSeek-V3 gave its communication (report §3.2.2: "only 20 SMs are sufficient";
// §3.5.1: "20 out of the 132 SMs available in the H800 GPU").
constexpr double kOverlapCommSms = 20;

void overlap_batches(const ParallelSpec& p, int64_t grad_accum, const HardwareProfile& hw, TimeBreakdown& tm) {
  const double chunks = double(grad_accum) * double(p.vpp);
  const double warm_up = p.vpp <= 1 ? double(p.pp - 1) : 2.0 * double(p.pp - 1) + double(p.vpp - 1) * double(p.pp);
  tm.overlap_paired = std::max(0.0, chunks - warm_up - 1) / chunks;
  if (hw.sms > kOverlapCommSms) tm.compute *= 1 + tm.overlap_paired * kOverlapCommSms / (hw.sms - kOverlapCommSms);
  tm.a2a_batch_hidden = tm.overlap_paired * std::min(tm.a2a_exposed, tm.compute);
  tm.a2a_exposed -= tm.a2a_batch_hidden;
}

}  // namespace

double a2a_bytes_per_copy(const JobSpec& spec) { return double(spec.model.d_model) * dtype_bytes(spec.runtime.dtype); }

double a2a_bytes_for_copies(const JobSpec& spec, double copies) { return copies * a2a_bytes_per_copy(spec); }

A2aRouting a2a_routing_from_copies(int64_t num_experts, const std::vector<int64_t>& node_of,
                                   const std::vector<std::vector<std::pair<int64_t, int64_t>>>& kept) {
  A2aRouting r;
  r.members = int64_t(node_of.size());
  r.node_of = node_of;
  const int64_t P = r.members, per_member = num_experts / P;
  // Node positions in order of first appearance.
  std::vector<int64_t> nodes;
  for (int64_t n : node_of)
    if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
  const int64_t N = int64_t(nodes.size());
  auto node_pos = [&](int64_t member) {
    return int64_t(std::find(nodes.begin(), nodes.end(), node_of[size_t(member)]) - nodes.begin());
  };
  r.copies.assign(size_t(P * P), 0);
  r.node_tokens.assign(size_t(P * N), 0);
  for (int64_t s = 0; s < P && s < int64_t(kept.size()); ++s) {
    std::vector<std::pair<int64_t, int64_t>> token_node;
    for (const auto& [token, expert] : kept[size_t(s)]) {
      const int64_t q = expert / per_member;
      ++r.copies[size_t(s * P + q)];
      token_node.emplace_back(token, node_pos(q));
    }
    std::sort(token_node.begin(), token_node.end());
    token_node.erase(std::unique(token_node.begin(), token_node.end()), token_node.end());
    for (const auto& tn : token_node) ++r.node_tokens[size_t(s * N + tn.second)];
  }
  return r;
}

std::array<A2aPhaseBytes, 4> a2a_bytes_for_routing(const JobSpec& spec, const A2aRouting& r, int64_t me) {
  const double B = a2a_bytes_per_copy(spec);
  const int64_t P = r.members, N = P > 0 ? int64_t(r.node_tokens.size()) / P : 1;
  auto copies = [&](int64_t s, int64_t q) { return double(r.copies[size_t(s * P + q)]); };
  std::array<A2aPhaseBytes, 4> out{};
  A2aPhaseBytes fwd, rev;  // forward direction (dispatch fwd, combine bwd) and the reverse
  if (!spec.parallel.hierarchical_a2a || N <= 1) {
    for (int64_t q = 0; q < P; ++q) {
      if (q == me) continue;
      const bool same = r.node_of[size_t(q)] == r.node_of[size_t(me)];
      (same ? fwd.intra : fwd.inter) += copies(me, q) * B;
      (same ? rev.intra : rev.inter) += copies(q, me) * B;
    }
  } else {
    const int64_t L = P / N, nm = me / L, lm = me % L;
    auto tokens = [&](int64_t s, int64_t n) { return double(r.node_tokens[size_t(s * N + n)]); };
    for (int64_t n = 0; n < N; ++n) {
      if (n == nm) continue;
      fwd.inter += tokens(me, n) * B;           // once per (token, remote node), to (n, lm)
      rev.inter += tokens(n * L + lm, nm) * B;  // the node sums, back to the sources (n, lm)
    }
    for (int64_t l = 0; l < L; ++l) {
      if (l == lm) continue;
      for (int64_t m = 0; m < N; ++m) {
        fwd.intra += copies(m * L + lm, nm * L + l) * B;  // fan-out of what (m, lm) sent here
        rev.intra += copies(m * L + l, me) * B;           // outputs back to the forwarder (nm, l)
      }
    }
  }
  fwd.sent = fwd.intra + fwd.inter;
  rev.sent = rev.intra + rev.inter;
  out[0] = fwd;  // dispatch fwd
  out[1] = rev;  // combine fwd
  out[2] = fwd;  // combine bwd (dy goes the dispatch way)
  out[3] = rev;  // dispatch bwd
  return out;
}

Plan plan_job(const JobSpec& s, const HardwareProfile& hw) {
  const ModelSpec& m = s.model;
  const ParallelSpec& p = s.parallel;
  const TrainSpec& t = s.train;
  Plan plan;
  plan.hardware = hw.name;
  plan.dtype = s.runtime.dtype;
  plan.world_size = p.world_size();
  plan.nodes = (plan.world_size + p.gpus_per_node - 1) / p.gpus_per_node;
  const double d = double(m.d_model), V = double(m.vocab_size), L = double(m.n_layers);
  const double E = double(m.moe.num_experts), k = double(m.moe.top_k);
  const double moe_layers = double(m.moe_layers()), dense_layers = double(m.moe.first_dense_layers);
  const double tp = double(p.tp), ep = double(p.ep), dp = double(p.dp);
  const double B = dtype_bytes(s.runtime.dtype);
  const double ga = double(t.grad_accum), mb = double(t.micro_batch), seq = double(m.seq_len);
  plan.tokens_per_step = mb * dp * ep * ga * seq;  // in double: the int64 product can overflow

  // --- parameters
  const LayerParams lp = layer_params(m);
  ParamBreakdown& pr = plan.params;
  pr.embedding = V * d;
  pr.head = m.tie_embeddings ? 0 : V * d;
  pr.attention = L * (lp.attn_matmul + lp.attn_norms);
  pr.norms = L * lp.norms + d;
  pr.dense_ffn = dense_layers * lp.dense_ffn;
  pr.router = moe_layers * lp.router;
  pr.shared_experts = moe_layers * lp.shared;
  pr.routed_experts = moe_layers * E * lp.expert;
  pr.expert = lp.expert;
  pr.total = pr.embedding + pr.head + pr.attention + pr.norms + pr.dense_ffn + pr.router + pr.shared_experts +
             pr.routed_experts;
  pr.total_no_embeddings = pr.total - pr.embedding - pr.head;
  pr.active = pr.total - pr.routed_experts + moe_layers * k * lp.expert;
  pr.active_no_embeddings = pr.active - pr.embedding - pr.head;
  pr.active_with_head = pr.active - pr.embedding;

  // Routed copies per token: token choice sends k; expert choice fills cf·k per token on average.
  const double copies_per_token = is_expert_choice(s.routing) ? s.routing.capacity_factor * k : k;
  const LayerActivations la = layer_activations(s, copies_per_token);
  const double head_params_last = m.tie_embeddings ? (p.pp > 1 ? V * d : 0) : V * d;

  // FLOPs per token of the forward pass: 2 per multiply-add.
  const double ctx = (seq + 1) / 2;  // causal: position i attends to i+1 keys
  double score_dims;
  if (m.attention == "mla")
    score_dims = double(m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim + m.mla.v_head_dim);
  else
    score_dims = 2 * double(m.resolved_head_dim());
  const double attn_score_fwd = 2 * double(m.n_heads) * score_dims * ctx;
  const double dense_part_fwd = 2 * (lp.attn_matmul);
  const double dense_ffn_fwd = 2 * lp.dense_ffn;
  const double moe_dense_fwd = 2 * (lp.router + lp.shared);
  const double expert_fwd = 2 * copies_per_token * lp.expert;
  const double head_fwd = 2 * V * d;
  // With runtime.fp8 the linear layers' GEMMs run at the FP8 peak; attention's score and value
  // products, the routers and the head stay in bf16 (DeepSeek-V3 report §3.3: "the embedding
  // module, the output head, MoE gating modules, normalization operators, and attention operators"
  // keep their precision; Transformer Engine's FP8 covers its Linear layers only).
  const double rate = hw.peak_flops(s.runtime.dtype) * hw.efficiency;
  const bool fp8 = s.runtime.fp8 != "off" && hw.peak_flops_fp8 > 0;
  const double gemm_rate = fp8 ? hw.peak_flops_fp8 * hw.efficiency : rate;

  FlopBreakdown& fl = plan.flops;
  fl.per_token_forward = L * (dense_part_fwd + attn_score_fwd) + dense_layers * dense_ffn_fwd +
                         moe_layers * (moe_dense_fwd + expert_fwd) + head_fwd;
  const double tok = plan.tokens_per_step;
  fl.dense_matmul = 3 * tok * (L * dense_part_fwd + dense_layers * dense_ffn_fwd + moe_layers * moe_dense_fwd);
  fl.expert_matmul = 3 * tok * moe_layers * expert_fwd;
  fl.attention = 3 * tok * L * attn_score_fwd;
  fl.head = 3 * tok * head_fwd;
  fl.per_step = 3 * tok * fl.per_token_forward;
  fl.per_gpu = fl.per_step / double(plan.world_size);

  // --- per stage: parameters, memory and compute; memory reports the fullest stage
  const std::vector<Stage> stages = make_stages(m, p.pp, p.pp_layers);
  // The virtual stages (chunk c of stage s is c·pp + s; with vpp 1 the stages themselves) and the
  // time of one micro-batch's forward through each on one GPU: its tokens split over TP, the linear
  // layers' GEMMs at gemm_rate (FP8 when on), the rest at the dtype's rate.
  const std::vector<Stage> chunks = p.vpp > 1 ? make_stages(m, p.pp * p.vpp, {}) : stages;
  auto forward_seconds = [&](const Stage& st) {
    const double gemm = double(st.layers) * dense_part_fwd + double(st.dense_layers) * dense_ffn_fwd +
                        double(st.moe_layers) * (2 * lp.shared + expert_fwd);
    const double other = double(st.layers) * attn_score_fwd + double(st.moe_layers) * 2 * lp.router + (st.last ? head_fwd : 0);
    return mb * seq / tp * (gemm / gemm_rate + other / rate);
  };
  const Recompute recompute = recompute_mode(t);
  std::vector<double> chunk_forward(chunks.size()), stage_compute(static_cast<size_t>(p.pp));
  for (size_t j = 0; j < chunks.size(); ++j) chunk_forward[j] = forward_seconds(chunks[j]);
  double recompute_cs = 0, recomputed_share_cs = 0;
  const double bytes_w = B, bytes_g = B, bytes_opt = s.runtime.dtype == "bf16" ? 12.0 : 8.0;
  // Each TP rank routes its share of the tokens (the MoE blocks, and with sequence parallelism
  // everything else); without sequence parallelism the residual stream is whole on every TP rank.
  const double tokens_mb_gpu = mb * seq / tp;
  const double whole_residual_tokens = p.sequence_parallel ? 0 : mb * seq - tokens_mb_gpu;
  const double capacity =
      s.routing.dropless() ? 0 : std::ceil(s.routing.capacity_factor * tokens_mb_gpu * k / E);
  const double a2a_cap = 2 * E * capacity * d * B;
  const double a2a_exp = 2 * tokens_mb_gpu * k * d * B;
  const double a2a_bound = (tokens_mb_gpu * k + ep * tokens_mb_gpu * std::min(k, E / ep)) * d * B;
  double worst_compute = -1;
  int64_t compute_stage = 0, moe_layers_compute_stage = 0;
  MemoryBreakdown& mem = plan.memory;
  mem.peak = -1;
  for (int64_t si = 0; si < p.pp; ++si) {
    const Stage& st = stages[si];
    double dense = (double(st.layers) * lp.attn_matmul + double(st.dense_layers) * lp.dense_ffn +
                    double(st.moe_layers) * lp.shared) / tp +
                   double(st.layers) * (lp.attn_norms + lp.norms) + double(st.moe_layers) * lp.router;
    if (st.first) dense += pr.embedding / tp;
    if (st.last) dense += head_params_last / tp + d;
    // Expert slots per GPU: E/ep, or placement.slots_per_rank when spare slots hold replicas.
    const double slots = s.placement.slots_per_rank > 0 ? double(s.placement.slots_per_rank) : E / ep;
    const double expert = double(st.moe_layers) * slots * lp.expert / double(p.etp);
    const double params = dense + expert;
    const double in_flight = micro_batches_in_flight(p, si, t.grad_accum);
    const double act_mb = whole_residual_tokens * double(st.layers) * 2 * la.residual +
                          tokens_mb_gpu * (double(st.layers) * la.attention + double(st.dense_layers) * la.dense_ffn +
                                           double(st.moe_layers) * la.moe);
    // What recomputation keeps instead (train.recompute): one input of d values per token (whole on
    // every TP rank without SP) for each chunk in flight and one chunk's activations (stage), or
    // one per layer and micro-batch in flight and one layer's activations (full).
    const double input = (p.sequence_parallel ? tokens_mb_gpu : mb * seq) * d * B;
    double stored = act_mb * in_flight;
    if (recompute == Recompute::stage)
      stored = act_mb / double(p.vpp) + input * in_flight * double(p.vpp);
    else if (recompute == Recompute::full)
      stored = act_mb / double(std::max<int64_t>(st.layers, 1)) + input * in_flight * double(st.layers);
    const double logits = st.last ? tokens_mb_gpu * V * 4 : 0;
    const double buffers = st.moe_layers == 0 ? 0 : (capacity > 0 ? a2a_cap : a2a_exp);
    const double peak = params * (bytes_w + bytes_g + bytes_opt) + stored + logits + buffers;
    if (peak > mem.peak) {
      mem.peak = peak;
      mem.stage = si;
      mem.weights = params * bytes_w;
      mem.gradients = params * bytes_g;
      mem.optimizer = params * bytes_opt;
      mem.activations_per_micro_batch = act_mb;
      mem.micro_batches_in_flight = in_flight;
      mem.activations = stored;
      mem.logits = logits;
      mem.a2a_buffers = buffers;
      pr.dense_per_gpu = dense;
      pr.expert_per_gpu = expert;
      pr.per_gpu = params;
    }
    // Time of this stage's FLOPs on one GPU per step: forward and backward (2×) of every micro-batch
    // through each chunk, and the forwards recomputed.
    const std::vector<double> again = recomputed_per_chunk(p, t.grad_accum, si, recompute);
    double compute = 0, recomputed = 0;
    for (int64_t c = 0; c < p.vpp; ++c) {
      const double f = chunk_forward[static_cast<size_t>(c * p.pp + si)];
      compute += 3 * ga * f;
      recomputed += again[static_cast<size_t>(c)] * f;
    }
    compute += recomputed;
    stage_compute[static_cast<size_t>(si)] = compute;
    if (compute > worst_compute) {
      worst_compute = compute;
      compute_stage = si;
      moe_layers_compute_stage = st.moe_layers;
      recompute_cs = recomputed;
      double count = 0;
      for (double n : again) count += n;
      recomputed_share_cs = count / (ga * double(p.vpp));
    }
  }
  mem.a2a_capacity_buffers = capacity > 0 ? a2a_cap : 0;
  mem.a2a_dropless_expected = a2a_exp;
  mem.a2a_dropless_bound = a2a_bound;
  mem.device = hw.memory_bytes;
  mem.fraction = mem.device > 0 ? mem.peak / mem.device : 0;

  // --- time
  TimeBreakdown& tm = plan.time;
  const double peak_flops = hw.peak_flops(s.runtime.dtype);
  tm.compute = worst_compute;
  tm.recompute = recompute_cs;
  tm.stage_compute = stage_compute;
  plan_a2a(s, hw, plan, moe_layers_compute_stage);
  // A recomputed forward runs its two all-to-alls again (of the four per micro-batch).
  tm.a2a *= 1 + recomputed_share_cs / 2;
  const double expert_compute = 3 * mb * ga * seq * double(moe_layers_compute_stage) * expert_fwd / tp / gemm_rate;
  const double c = double(p.overlap_chunks);
  tm.a2a_exposed = c <= 1 ? tm.a2a : tm.a2a / c + std::max(0.0, (tm.a2a - expert_compute) * (c - 1) / c);
  if (p.batch_overlap) overlap_batches(p, t.grad_accum, hw, tm);

  RankLayout shape;
  shape.tp = p.tp, shape.ep = p.ep, shape.dp = p.dp, shape.pp = p.pp, shape.gpus_per_node = p.gpus_per_node;
  auto node = [&](int64_t r) { return r / p.gpus_per_node; };
  auto link_bw = [&](bool crosses) { return (crosses ? hw.inter_node_bw : hw.intra_node_bw) * hw.comm_efficiency; };
  const int64_t cs = compute_stage;
  const Stage& st = stages[cs];
  // TP, per layer and micro-batch, each collective over the micro-batch's b·s·d activations:
  // without SP 4 all-reduces (attention and the FFN block, forward and backward); with SP an
  // all-gather before and a reduce-scatter after attention and a dense MLP, forward and backward,
  // and nothing around a MoE block, whose tokens are already shared out. The vocab-parallel
  // embedding sums its rows (an all-reduce, or with SP a reduce-scatter and backward an
  // all-gather), the head its input gradient (likewise, and with SP a gather of its input).
  if (p.tp > 1) {
    double reduces = 0, gathers = 0;  // all-reduces; all-gathers and reduce-scatters
    if (p.sequence_parallel)
      gathers = 4 * double(st.layers + st.dense_layers) + (st.first ? 2 : 0) + (st.last ? 2 : 0);
    else
      reduces = 4 * double(st.layers) + (st.first ? 1 : 0) + (st.last ? 1 : 0);
    // Shared experts split over tp run on every rank's token share: gathered, then scattered.
    if (m.moe.shared_experts > 0) gathers += 4 * double(st.moe_layers);
    const double tensor = mb * seq * d * B * ga;
    tm.tp_bytes = tensor * (reduces + gathers);
    const double wire = ring_allreduce_bytes(tensor * reduces, tp) + (tp - 1) / tp * tensor * gathers;
    tm.tp = wire / link_bw(node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(p.tp - 1, 0, 0, cs)));
  }
  // ETP: around each MoE layer's experts, the etp group (etp consecutive tp ranks) all-gathers its
  // ranks' expert rows and reduce-scatters the partial outputs, forward and backward: 4 collectives
  // of the group's routed copies (etp shares × b·s/tp tokens × copies per token, in expectation: a
  // rank's rows depend on the routing).
  const double etp = double(p.etp);
  if (p.etp > 1) {
    tm.etp_bytes = mb * seq * etp / tp * copies_per_token * d * B * 4 * double(st.moe_layers) * ga;
    tm.tp += (etp - 1) / etp * tm.etp_bytes / link_bw(node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(p.etp - 1, 0, 0, cs)));
  }
  tm.tp *= 1 + recomputed_share_cs / 2;  // a recomputed forward's collectives, half of each micro-batch's
  // TP gradients, once a step: what each tp rank computed from its share of the tokens only, the
  // routers (and the whole experts with etp 1) and with SP the norms, summed over tp (Megatron sums
  // the sequence-parallel norms' and the routers' likewise; etp-1 experts in its expert-DP group).
  if (p.tp > 1) {
    const double slots = s.placement.slots_per_rank > 0 ? double(s.placement.slots_per_rank) : E / ep;
    double partial = double(st.moe_layers) * (lp.router + (p.etp == 1 ? slots * lp.expert : 0));
    if (p.sequence_parallel) partial += double(st.layers) * (lp.norms + lp.attn_norms) + (st.last ? d : 0);
    tm.tp_grad_bytes = partial * bytes_g;
    // 1 < etp < tp: each expert slice is held by tp/etp ranks (one per etp group) that computed it
    // from different rows: summed over them.
    if (p.etp > 1 && p.etp < p.tp) tm.etp_copy_bytes = double(st.moe_layers) * slots * lp.expert / etp * bytes_g;
  }
  // DP: dense gradients over dp·ep replicas, expert gradients over dp replicas.
  {
    const double dense_bytes = pr.dense_per_gpu * bytes_g, expert_bytes = pr.expert_per_gpu * bytes_g;
    tm.dense_dp_bytes = dp * ep > 1 ? dense_bytes : 0;
    tm.expert_dp_bytes = dp > 1 ? expert_bytes : 0;
    const bool dense_cross = node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(0, p.ep - 1, p.dp - 1, cs));
    const bool expert_cross = node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(0, 0, p.dp - 1, cs));
    tm.dp = ring_allreduce_bytes(dense_bytes, dp * ep) / link_bw(dense_cross) +
            ring_allreduce_bytes(expert_bytes, dp) / link_bw(expert_cross);
    // Replicas (spare slots): the replicated experts' gradients are summed over the EP group too
    // (runtime/ep/expert_replicas.h: one all-reduce of those experts, members without one add zeros).
    const double spare = double(s.placement.slots_per_rank) * ep - E;
    if (s.placement.slots_per_rank > 0 && spare > 0 && ep > 1) {
      const double per_slot = pr.expert_per_gpu / double(s.placement.slots_per_rank);
      const bool ep_cross = node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(0, p.ep - 1, 0, cs));
      tm.replica_bytes = std::min(spare, E) * per_slot * bytes_g;
      tm.dp += ring_allreduce_bytes(tm.replica_bytes, ep) / link_bw(ep_cross);
    }
    const bool tp_cross = node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(p.tp - 1, 0, 0, cs));
    tm.dp += ring_allreduce_bytes(tm.tp_grad_bytes, tp) / link_bw(tp_cross);
    tm.dp += ring_allreduce_bytes(tm.etp_copy_bytes, tp / etp) / link_bw(tp_cross);
  }
  // PP: each micro-batch's activations forward and their gradients backward across a boundary.
  if (p.pp > 1) {
    const int64_t nb = cs + 1 < p.pp ? cs + 1 : cs - 1;
    const bool cross = node(shape.rank_of(0, 0, 0, cs)) != node(shape.rank_of(0, 0, 0, nb));
    tm.pp_bytes = 2 * ga * double(p.vpp) * (mb * seq * d * B / tp);  // each virtual stage sends its own
    tm.pp_p2p = tm.pp_bytes / link_bw(cross);
  }
  // Megatron's interleaved schedule overlaps each chunk's send/recv with the next chunk's
  // computation (--overlap-p2p-communication, on by default, interleaved only): only what the
  // computation cannot cover is exposed. Plain 1F1B waits for its transfers.
  tm.pp_p2p_exposed = p.vpp > 1 ? std::max(0.0, tm.pp_p2p - tm.compute) : tm.pp_p2p;
  const double pipelined = tm.compute + tm.a2a_exposed + tm.tp + tm.pp_p2p_exposed;
  // The bubble: every stage's schedule played out with its own chunks' times (the compute stage's
  // communication spread over all in proportion to their computation), so uneven stages and
  // recomputed forwards count; where the order cannot be played (too many ops, or an interleaved
  // order that deadlocks), the formula for equal stages, pipelined·(pp − 1)/(vpp·m).
  tm.bubble = pipelined * double(p.pp - 1) / (double(p.vpp) * ga);
  tm.pp_idle_share = bubble_fraction(p.pp, t.grad_accum * p.vpp);
  if (p.pp > 1 && t.grad_accum * p.vpp * p.pp <= kMaxPlayedOps && worst_compute > 0) {
    const double scale = pipelined / worst_compute;  // the compute stage's ops then fill `pipelined` exactly
    std::vector<double> f(chunk_forward.size()), b(chunk_forward.size());
    for (size_t j = 0; j < f.size(); ++j) f[j] = chunk_forward[j] * scale, b[j] = 2 * f[j];
    const PipelineTiming played = time_pipeline(p.pp, p.vpp, t.grad_accum, f, b, recompute);
    if (played.complete) {
      tm.bubble = std::max(0.0, played.makespan - pipelined);  // ≥ 0 but for rounding
      tm.pp_idle_share = played.idle_share();
    }
  }
  tm.step = pipelined + tm.bubble + tm.dp;
  tm.tokens_per_s = tm.step > 0 ? plan.tokens_per_step / tm.step : 0;
  tm.mfu = tm.step > 0 ? fl.per_step / (tm.step * double(plan.world_size) * peak_flops) : 0;
  tm.comm_ratio = tm.compute > 0 ? (tm.a2a + tm.tp + tm.dp + tm.pp_p2p) / tm.compute : 0;
  tm.a2a_ratio = tm.compute > 0 ? tm.a2a / tm.compute : 0;
  tm.comm_ok = tm.comm_ratio < kCommRatioTarget;
  return plan;
}

namespace {

// GiB, or MiB below 1 GiB (small CPU profiles).
std::string gib(double bytes) {
  char buf[64];
  if (bytes >= 1024.0 * 1024.0 * 1024.0 || bytes == 0)
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

void add_memory_rule(const JobSpec& spec, const HardwareProfile& hw, std::vector<Diagnostic>& ds) {
  const Plan plan = plan_job(spec, hw);
  const MemoryBreakdown& m = plan.memory;
  std::string detail = " (stage " + std::to_string(m.stage) + ": weights " + gib(m.weights) + ", gradients " +
                       gib(m.gradients) + ", optimizer " + gib(m.optimizer) + ", activations " +
                       gib(m.activations) + ", logits " + gib(m.logits) + ", all-to-all buffers " +
                       gib(m.a2a_buffers) + ")";
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.0f%%", 100 * m.fraction);
  if (m.peak > m.device)
    ds.push_back({Severity::error, "parallel",
                  "peak memory per GPU " + gib(m.peak) + " exceeds the " + hw.name + "'s " + gib(m.device) + detail +
                      "; raise parallel.ep, pp or tp, or lower train.micro_batch"});
  else if (m.peak > kMemoryWarnFraction * m.device)
    ds.push_back({Severity::warning, "parallel",
                  "peak memory per GPU " + gib(m.peak) + " is " + pct + " of the " + hw.name + "'s " + gib(m.device) +
                      detail + "; little headroom for fragmentation and workspace"});
}

json plan_to_json(const Plan& pl) {
  const ParamBreakdown& p = pl.params;
  const MemoryBreakdown& m = pl.memory;
  const FlopBreakdown& f = pl.flops;
  const A2aBreakdown& a = pl.a2a;
  const TimeBreakdown& t = pl.time;
  return json{
      {"hardware", pl.hardware}, {"dtype", pl.dtype}, {"world_size", pl.world_size}, {"nodes", pl.nodes},
      {"tokens_per_step", pl.tokens_per_step},
      {"params", {{"embedding", p.embedding}, {"head", p.head}, {"attention", p.attention}, {"norms", p.norms},
                  {"dense_ffn", p.dense_ffn}, {"router", p.router}, {"shared_experts", p.shared_experts},
                  {"routed_experts", p.routed_experts}, {"total", p.total},
                  {"total_no_embeddings", p.total_no_embeddings}, {"active", p.active},
                  {"active_no_embeddings", p.active_no_embeddings}, {"active_with_head", p.active_with_head},
                  {"expert", p.expert}, {"dense_per_gpu", p.dense_per_gpu}, {"expert_per_gpu", p.expert_per_gpu},
                  {"per_gpu", p.per_gpu}}},
      {"memory", {{"weights", m.weights}, {"gradients", m.gradients}, {"optimizer", m.optimizer},
                  {"activations", m.activations}, {"activations_per_micro_batch", m.activations_per_micro_batch},
                  {"micro_batches_in_flight", m.micro_batches_in_flight}, {"logits", m.logits},
                  {"a2a_buffers", m.a2a_buffers}, {"a2a_capacity_buffers", m.a2a_capacity_buffers},
                  {"a2a_dropless_expected", m.a2a_dropless_expected}, {"a2a_dropless_bound", m.a2a_dropless_bound},
                  {"peak", m.peak}, {"device", m.device}, {"fraction", m.fraction}, {"stage", m.stage}}},
      {"flops", {{"per_token_forward", f.per_token_forward}, {"dense_matmul", f.dense_matmul},
                 {"expert_matmul", f.expert_matmul}, {"attention", f.attention}, {"head", f.head},
                 {"per_step", f.per_step}, {"per_gpu", f.per_gpu}}},
      {"a2a", {{"tokens_per_rank", a.tokens_per_rank}, {"capacity_per_expert", a.capacity_per_expert},
               {"bytes_per_copy", a.bytes_per_copy}, {"copies_sent", a.copies_sent}, {"kept_share", a.kept_share},
               {"dispatch_fwd", a.dispatch_fwd}, {"combine_fwd", a.combine_fwd}, {"dispatch_bwd", a.dispatch_bwd},
               {"combine_bwd", a.combine_bwd}, {"per_layer_micro_batch", a.per_layer_micro_batch},
               {"per_layer_step", a.per_layer_step}, {"per_step", a.per_step}, {"flat_intra", a.flat_intra},
               {"flat_inter", a.flat_inter}, {"hier_intra", a.hier_intra}, {"hier_inter", a.hier_inter},
               {"hier_inter_ratio", a.hier_inter_ratio}, {"ep_ranks_per_node", a.ep_ranks_per_node},
               {"ep_nodes", a.ep_nodes}, {"hierarchical", a.hierarchical}}},
      {"time", {{"compute", t.compute}, {"a2a", t.a2a}, {"a2a_exposed", t.a2a_exposed},
                {"a2a_batch_hidden", t.a2a_batch_hidden}, {"overlap_paired", t.overlap_paired}, {"tp", t.tp}, {"tp_bytes", t.tp_bytes}, {"etp_bytes", t.etp_bytes}, {"tp_grad_bytes", t.tp_grad_bytes}, {"etp_copy_bytes", t.etp_copy_bytes}, {"replica_bytes", t.replica_bytes}, {"dp", t.dp},
                {"dense_dp_bytes", t.dense_dp_bytes}, {"expert_dp_bytes", t.expert_dp_bytes},
                {"pp_p2p", t.pp_p2p}, {"pp_p2p_exposed", t.pp_p2p_exposed}, {"pp_bytes", t.pp_bytes}, {"bubble", t.bubble}, {"pp_idle_share", t.pp_idle_share}, {"recompute", t.recompute}, {"stage_compute", t.stage_compute}, {"step", t.step}, {"tokens_per_s", t.tokens_per_s},
                {"mfu", t.mfu}, {"comm_ratio", t.comm_ratio}, {"a2a_ratio", t.a2a_ratio}, {"comm_ok", t.comm_ok}}},
  };
}

std::optional<double> planned_idle_share(const std::string& recorded_spec_json) {
  try {
    JobSpec spec = spec_from_json(nlohmann::json::parse(recorded_spec_json));
    if (spec.parallel.pp <= 1 || has_errors(validate_spec(spec))) return std::nullopt;
    spec.train.recompute = runtime_recompute(spec);
    return plan_job(spec, find_hardware(builtin_hardware_profiles(), spec.cluster.hardware)).time.pp_idle_share;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace moe
