// Benchmark of the expert-placement strategies (docs/placement.md, issue 14): plans every MoE
// layer of a 256-expert model for large EP groups, with and without spare slots, from a skewed
// synthetic load and a synthetic co-selection; prints per strategy the planning time of the whole
// plan (median of several runs, steady_clock), the member load max/mean and the cross-node shares
// measured by the traffic evaluator. A second table: replicate's balance by slot budget.
// Usage: placement_bench [LAYERS (64)] [RUNS (5)]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "error.h"
#include "expert_placement.h"
#include "placement_traffic.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Rng {  // splitmix64: the same synthetic inputs on every machine
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) / double(1ULL << 53); }
};

// Zipf(s) load over the experts, ranks shuffled per layer: the hottest expert is E^s·(…) × the
// coldest; with s = 0.5 and 256 experts the hottest carries 8× the mean.
std::vector<double> skewed_load(int64_t E, double s, Rng& rng) {
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = E - 1; i > 0; --i) std::swap(order[i], order[rng.next() % uint64_t(i + 1)]);
  std::vector<double> w(static_cast<size_t>(E));
  for (int64_t i = 0; i < E; ++i) w[order[i]] = 1e5 / std::pow(double(i + 1), s);
  return w;
}

// Co-selection of top-k routing with hidden clusters of 8 experts: pairs in one cluster are chosen
// together 4× as often as independent choice (∝ w_a·w_b) predicts.
std::vector<double> synthetic_coselection(const std::vector<double>& w, Rng& rng) {
  const int64_t E = static_cast<int64_t>(w.size());
  std::vector<int64_t> cluster(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e) cluster[e] = e / 8;
  for (int64_t i = E - 1; i > 0; --i) std::swap(cluster[i], cluster[rng.next() % uint64_t(i + 1)]);
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<double> c(static_cast<size_t>(E * E), 0.0);
  for (int64_t a = 0; a < E; ++a)
    for (int64_t b = 0; b < E; ++b)
      if (a != b) c[a * E + b] = std::round(w[a] * w[b] / total * (cluster[a] == cluster[b] ? 4.0 : 1.0));
  return c;
}

struct Config {
  const char* name;
  int64_t experts, nodes, gpus_per_node, slots_per_rank;  // slots_per_rank 0: E / ep
};

struct Result {
  double median_ms = 0, imbalance = 0, inter_spread = 0, inter_local = 0, cut = 0;
  bool ok = false;
  std::string error;
};

Result run(const std::string& strategy, const moe::PlacementInput& in, int runs) {
  Result r;
  std::vector<double> ms;
  moe::Placement p;
  try {
    for (int i = 0; i < runs; ++i) {
      const auto t0 = Clock::now();
      p = moe::place_experts(strategy, in);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
  } catch (const moe::Error& e) {
    r.error = e.what();
    return r;
  }
  std::sort(ms.begin(), ms.end());
  r.median_ms = ms[ms.size() / 2];
  r.ok = true;
  // Traffic of every layer: each member sends 4096 tokens × top-8 rows in 4 sequences, spread
  // over the experts by the layer's load (senders alike, so only replicas on the node change the
  // cross-node share); cut = the co-selection weight across nodes (what hierarchical all-to-all
  // deduplication and data_driven care about).
  const int64_t E = in.num_experts, P = in.ep;
  double imb = 0, spread = 0, local = 0, cut = 0;
  for (int64_t l = 0; l < in.layers; ++l) {
    const std::vector<double>& w = in.load[l];
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    std::vector<std::vector<int64_t>> sent(static_cast<size_t>(P), std::vector<int64_t>(static_cast<size_t>(E)));
    for (int64_t e = 0; e < E; ++e) sent[0][e] = std::llround(4096.0 * 8 * w[e] / total);
    std::fill(sent.begin() + 1, sent.end(), sent[0]);
    const auto ts = moe::placement_traffic(p[l], sent, 4, in.node_of_member, "spread", 1.0);
    const auto tl = moe::placement_traffic(p[l], sent, 4, in.node_of_member, "local", 1.0);
    imb += ts.imbalance, spread += ts.inter_share(), local += tl.inter_share();
    const std::vector<double>& c = in.coselection[l];
    double across = 0, all = 0;
    for (int64_t a = 0; a < E; ++a) {
      const int64_t na = in.node_of_member[p[l].rank_of_slot(p[l].log_to_phy[a][0])];
      for (int64_t b = 0; b < E; ++b) {
        all += c[a * E + b];
        if (in.node_of_member[p[l].rank_of_slot(p[l].log_to_phy[b][0])] != na) across += c[a * E + b];
      }
    }
    cut += all > 0 ? across / all : 0;
  }
  const double L = double(in.layers);
  r.imbalance = imb / L, r.inter_spread = spread / L, r.inter_local = local / L, r.cut = cut / L;
  return r;
}

double replica_imbalance(const moe::LayerPlacement& lp, const std::vector<double>& w) {
  std::vector<double> load(static_cast<size_t>(lp.slots() / lp.slots_per_rank), 0.0);
  for (int64_t s = 0; s < lp.slots(); ++s)
    load[lp.rank_of_slot(s)] += w[lp.phy_to_log[s]] / double(lp.log_to_phy[lp.phy_to_log[s]].size());
  return *std::max_element(load.begin(), load.end()) /
         (std::accumulate(load.begin(), load.end(), 0.0) / double(load.size()));
}

void budget_table() {
  std::printf("\nreplicate: member load max/mean by slot budget (Zipf(s) load, ranks scattered; 1 layer)\n");
  std::printf("%-22s %6s %10s %10s %10s %10s %10s\n", "experts / ep", "zipf s", "uniform", "E/ep (+0)", "+1/rank",
              "+2/rank", "+4/rank");
  for (auto [E, ep] :
       std::vector<std::pair<int64_t, int64_t>>{{8, 4}, {8, 8}, {64, 8}, {64, 16}, {256, 64}, {256, 256}})
    for (double s : {0.5, 1.0, 1.2}) {
      Rng rng{uint64_t(E * 1000 + ep)};
      moe::PlacementInput in;
      in.num_experts = E, in.ep = ep, in.load = {skewed_load(E, s, rng)};
      std::printf("%-22s %6.1f %10.3f", (std::to_string(E) + " / " + std::to_string(ep)).c_str(), s,
                  replica_imbalance(moe::place_experts("uniform", in)[0], in.load[0]));
      for (int64_t extra : {0, 1, 2, 4}) {
        in.slots_per_rank = E / ep + extra;
        if (in.slots_per_rank > E) {
          std::printf(" %10s", "-");
          continue;
        }
        std::printf(" %10.3f", replica_imbalance(moe::place_experts("replicate", in)[0], in.load[0]));
      }
      std::printf("\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t layers = argc > 1 ? std::atoll(argv[1]) : 64;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  if (layers < 1 || runs < 1) {
    std::fprintf(stderr, "usage: placement_bench [LAYERS (64)] [RUNS (5)]\n");
    return 2;
  }
  const std::vector<Config> configs = {
      {"256 exp, 8x8 GPUs, no spare", 256, 8, 8, 0},   {"256 exp, 8x8 GPUs, +1/rank", 256, 8, 8, 5},
      {"256 exp, 32x8 GPUs, no spare", 256, 32, 8, 0}, {"256 exp, 32x8 GPUs, +1/rank", 256, 32, 8, 2},
      {"256 exp, 128x8 GPUs, 1 slot", 256, 128, 8, 1}, {"256 exp, 128x8 GPUs, 2 slots", 256, 128, 8, 2},
  };
  std::printf("placement_bench: %lld MoE layers, Zipf(0.5) load, clustered co-selection, median of %d runs\n",
              (long long)layers, runs);
  std::printf("%-30s %-13s %10s %9s %12s %12s %10s\n", "config (EP = nodes x GPUs)", "strategy", "plan ms", "max/mean",
              "inter spread", "inter local", "cosel cut");
  for (const Config& c : configs) {
    moe::PlacementInput in;
    in.num_experts = c.experts, in.ep = c.nodes * c.gpus_per_node, in.slots_per_rank = c.slots_per_rank,
    in.layers = layers;
    for (int64_t m = 0; m < in.ep; ++m) in.node_of_member.push_back(m / c.gpus_per_node);
    Rng rng{uint64_t(c.experts * 7919 + in.ep)};
    for (int64_t l = 0; l < layers; ++l) {
      in.load.push_back(skewed_load(c.experts, 0.5, rng));
      in.coselection.push_back(synthetic_coselection(in.load.back(), rng));
    }
    for (const char* s : {"uniform", "replicate", "hierarchical", "data_driven"}) {
      moe::PlacementInput run_in = in;
      // Uniform has no replicas: its row is the no-spare layout the spare slots are compared with.
      if (std::string(s) == "uniform") run_in.slots_per_rank = 0;
      const Result r = run(s, run_in, runs);
      if (!r.ok) {
        std::printf("%-30s %-13s %10s  (%s)\n", c.name, s, "n/a", r.error.c_str());
        continue;
      }
      std::printf("%-30s %-13s %10.1f %9.3f %12.3f %12.3f %10.3f\n", c.name, s, r.median_ms, r.imbalance,
                  r.inter_spread, r.inter_local, r.cut);
    }
  }
  budget_table();
  return 0;
}
