// The all-to-all simulator (a2a_simulator.h): per-GPU, per-link accounting from sampled routes.
#include "a2a_simulator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "cost_model.h"

namespace moe {
namespace {

// The EP group of a job of `gpus` GPUs: the largest divisor of E that divides gpus.
int64_t ep_size(int64_t experts, int64_t gpus) {
  for (int64_t ep = std::min(experts, gpus); ep > 1; --ep)
    if (experts % ep == 0 && gpus % ep == 0) return ep;
  return 1;
}

}  // namespace

A2aSimulator::A2aSimulator(const JobSpec& spec, const HardwareProfile& hw, int64_t samples, uint64_t seed)
    : spec_(spec), hw_(hw), samples_(samples), seed_(seed) {}

const std::vector<int32_t>& A2aSimulator::routes(double skew) {
  auto it = routes_.find(skew);
  if (it != routes_.end()) return it->second;
  const int64_t E = spec_.model.moe.num_experts, k = spec_.model.moe.top_k;
  std::mt19937_64 rng(seed_);
  // Popularity by rank, ranks dealt to experts at random (hot experts land anywhere).
  std::vector<int64_t> rank(static_cast<size_t>(E));
  std::iota(rank.begin(), rank.end(), 0);
  std::shuffle(rank.begin(), rank.end(), rng);
  std::vector<double> log_w(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) log_w[size_t(e)] = -skew * std::log(double(rank[size_t(e)] + 1));
  // Top-k without replacement with probabilities ∝ w: the k largest of log w + Gumbel noise.
  std::vector<int32_t> out(static_cast<size_t>(samples_ * k));
  std::vector<std::pair<double, int32_t>> keys(static_cast<size_t>(E));
  std::uniform_real_distribution<double> u(std::nextafter(0.0, 1.0), 1.0);
  for (int64_t s = 0; s < samples_; ++s) {
    for (int64_t e = 0; e < E; ++e) keys[size_t(e)] = {log_w[size_t(e)] - std::log(-std::log(u(rng))), int32_t(e)};
    std::partial_sort(keys.begin(), keys.begin() + k, keys.end(), std::greater<>());
    for (int64_t j = 0; j < k; ++j) out[size_t(s * k + j)] = keys[size_t(j)].second;
  }
  return routes_.emplace(skew, std::move(out)).first->second;
}

A2aSimResult A2aSimulator::run(const A2aSimCase& c) {
  const int64_t E = spec_.model.moe.num_experts, k = spec_.model.moe.top_k;
  const int64_t tp = spec_.parallel.tp, G = std::max<int64_t>(1, spec_.parallel.gpus_per_node);
  A2aSimResult r;
  r.c = c;
  r.ep = ep_size(E, std::max<int64_t>(1, c.gpus / tp));  // tp·ep GPUs per EP group
  const int64_t ep = r.ep, per_member = E / ep;
  // EP member m is rank m·tp of its group (tp fastest, then ep: the rank-order contract).
  std::vector<int64_t> node_of(static_cast<size_t>(ep));
  for (int64_t m = 0; m < ep; ++m) node_of[size_t(m)] = m * tp / G;
  const int64_t N = node_of.back() + 1;
  r.nodes = N;
  std::vector<int64_t> own(static_cast<size_t>(N), 0);
  for (int64_t n : node_of) ++own[size_t(n)];

  // From the samples: expected copies each member receives per token (c_m), and the probability a
  // token has a copy on node n (h_n).
  const std::vector<int32_t>& rt = routes(c.skew);
  std::vector<double> copies(static_cast<size_t>(ep), 0.0), hit(static_cast<size_t>(N), 0.0);
  std::vector<int64_t> seen(static_cast<size_t>(N), -1);
  for (int64_t s = 0; s < samples_; ++s)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t m = rt[size_t(s * k + j)] / per_member, n = node_of[size_t(m)];
      copies[size_t(m)] += 1;
      if (seen[size_t(n)] != s) seen[size_t(n)] = s, hit[size_t(n)] += 1;
    }
  for (auto& x : copies) x /= double(samples_);
  for (auto& x : hit) x /= double(samples_);

  const double T = double(spec_.train.micro_batch) * double(spec_.model.seq_len) / double(tp);
  const double row = a2a_bytes_per_copy(spec_);
  const double bw_nv = hw_.intra_node_bw * hw_.comm_efficiency, bw_ib = hw_.inter_node_bw * hw_.comm_efficiency;
  std::vector<double> node_copies(static_cast<size_t>(N), 0.0);
  for (int64_t m = 0; m < ep; ++m) node_copies[size_t(node_of[size_t(m)])] += copies[size_t(m)];
  const double total_copies = std::accumulate(copies.begin(), copies.end(), 0.0);
  const bool hierarchical = c.hierarchical && N > 1;
  double sum_send_inter = 0, max_copies = 0;
  for (int64_t x = 0; x < ep; ++x) {
    const int64_t n = node_of[size_t(x)];
    const double own_others = node_copies[size_t(n)] - copies[size_t(x)];  // copies to this node's other GPUs
    double si, se, ri, re;
    if (!hierarchical) {
      si = T * own_others;
      se = T * (total_copies - node_copies[size_t(n)]);
      ri = double(own[size_t(n)] - 1) * T * copies[size_t(x)];
      re = double(ep - own[size_t(n)]) * T * copies[size_t(x)];
    } else {
      // Stage 1: one row per (token, remote node hit) to the rail peer; stage 2: the peer forwards
      // each row's copies to their GPUs on its node, with its own tokens' copies.
      double remote_hits = 0;
      for (int64_t m = 0; m < N; ++m)
        if (m != n) remote_hits += hit[size_t(m)];
      se = T * remote_hits;
      re = double(N - 1) * T * hit[size_t(n)];
      si = double(N) * T * own_others;
      ri = double(own[size_t(n)] - 1) * double(N) * T * copies[size_t(x)];
    }
    si *= row, se *= row, ri *= row, re *= row;
    r.send_intra = std::max(r.send_intra, si);
    r.send_inter = std::max(r.send_inter, se);
    r.recv_intra = std::max(r.recv_intra, ri);
    r.recv_inter = std::max(r.recv_inter, re);
    sum_send_inter += se;
    max_copies = std::max(max_copies, copies[size_t(x)]);
    const double intra_s = std::max(si, ri) / bw_nv, inter_s = std::max(se, re) / bw_ib;
    const double t = hierarchical ? inter_s + hw_.inter_node_latency + intra_s + hw_.intra_node_latency
                                  : std::max(intra_s, inter_s) + (N > 1 ? hw_.inter_node_latency : hw_.intra_node_latency);
    r.seconds = std::max(r.seconds, t);
  }
  r.mean_send_inter = sum_send_inter / double(ep);
  r.load_max_over_mean = total_copies > 0 ? max_copies / (total_copies / double(ep)) : 1.0;
  return r;
}

std::vector<A2aSimResult> simulate_a2a_sweep(const JobSpec& spec, const HardwareProfile& hw,
                                             const std::vector<double>& skews, int64_t max_gpus) {
  A2aSimulator sim(spec, hw);
  std::vector<A2aSimResult> out;
  for (double skew : skews)
    for (int64_t gpus = 8; gpus <= max_gpus; gpus *= 2)
      for (bool hierarchical : {false, true}) out.push_back(sim.run({gpus, skew, hierarchical}));
  return out;
}

}  // namespace moe
