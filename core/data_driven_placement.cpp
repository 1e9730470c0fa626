// Data-driven placement (the seed document's "frequently co-selected experts together"),
// docs/placement.md: per layer, the experts are split into one part of E/N experts per node so that
// the co-selection weight inside parts is large (the weight across parts is what crosses nodes),
// subject to a node-load bound; then each node replicates and packs its experts onto its members
// as place_replicate does. The partition: two seeds (load-balanced LPT, and greedy growth of
// cohesive parts), Kernighan–Lin swap refinement under the load bound, the better of the two.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "error.h"
#include "node_placement.h"
#include "placement_strategies.h"

namespace moe {

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

// A node may carry this much above the mean load (or the LPT seed's maximum, if that is higher):
// co-location may cost up to 5 % of node balance, the member-balance target.
constexpr double kNodeLoadTolerance = 0.05;

// Layer l's row of `rows` after checking it; nullptr when missing, empty or all zero (unknown).
const std::vector<double>* checked_row(const std::vector<std::vector<double>>& rows, int64_t l, size_t size,
                                       const char* what) {
  if (l >= static_cast<int64_t>(rows.size()) || rows[l].empty()) return nullptr;
  if (rows[l].size() != size)
    throw Error(std::string("placement.data_driven: ") + what + " of layer " + str(l) + " has " +
                str(static_cast<int64_t>(rows[l].size())) + " entries, expected " + str(static_cast<int64_t>(size)));
  for (double v : rows[l])
    if (!std::isfinite(v) || v < 0)
      throw Error(std::string("placement.data_driven: ") + what + " of layer " + str(l) +
                  " has a count < 0 or not finite");
  if (std::accumulate(rows[l].begin(), rows[l].end(), 0.0) <= 0) return nullptr;  // nothing seen yet
  return &rows[l];
}

// The partition of experts into N equal parts and its bookkeeping for Kernighan–Lin swaps.
class Partition {
 public:
  Partition(const std::vector<double>& c, const std::vector<double>& w, std::vector<int64_t> part, int64_t N)
      : c_(c), w_(w), E_(static_cast<int64_t>(w.size())), N_(N), part_(std::move(part)) {
    link_.assign(static_cast<size_t>(E_ * N_), 0.0);
    load_.assign(static_cast<size_t>(N_), 0.0);
    for (int64_t a = 0; a < E_; ++a) {
      load_[part_[a]] += w_[a];
      for (int64_t b = 0; b < E_; ++b) link_[a * N_ + part_[b]] += c_[a * E_ + b];
    }
  }
  const std::vector<int64_t>& part() const { return part_; }
  double max_load() const { return *std::max_element(load_.begin(), load_.end()); }
  double inside() const {  // co-selection weight within parts (each pair once)
    double s = 0;
    for (int64_t a = 0; a < E_; ++a) s += link_[a * N_ + part_[a]];
    return s / 2;
  }
  // Load repair: while the heaviest node is above `bound`, the swap with the best co-selection
  // gain among those that bring both its nodes within the bound, else the one that lowers the
  // heavier of them most.
  void repair(double bound) {
    for (int64_t it = 0; it < E_ * 4 && max_load() > bound; ++it) {
      const int64_t A = std::max_element(load_.begin(), load_.end()) - load_.begin();
      int64_t ba = -1, bb = -1, fa = -1, fb = -1;
      double best = -INFINITY, lowest = load_[A];
      for (int64_t a = 0; a < E_; ++a) {
        if (part_[a] != A) continue;
        for (int64_t b = 0; b < E_; ++b) {
          const double d = w_[a] - w_[b];
          if (part_[b] == A || d <= 0) continue;
          const double worst = std::max(load_[A] - d, load_[part_[b]] + d);
          if (worst <= bound) {
            if (const double g = gain(a, b); g > best) best = g, ba = a, bb = b;
          } else if (worst < lowest) {
            lowest = worst, fa = a, fb = b;
          }
        }
      }
      if (ba < 0) ba = fa, bb = fb;
      if (ba < 0) return;
      swap(ba, bb);
    }
  }
  // Kernighan–Lin sweeps: each expert takes its best positive-gain swap partner whose swap keeps
  // both nodes within max(bound, their current maximum).
  void refine(double bound, double eps) {
    for (int sweep = 0; sweep < 32; ++sweep) {
      bool moved = false;
      for (int64_t a = 0; a < E_; ++a) {
        const int64_t A = part_[a];
        int64_t bb = -1;
        double best = eps;
        for (int64_t b = 0; b < E_; ++b) {
          const int64_t B = part_[b];
          if (B == A) continue;
          const double g = gain(a, b);
          if (g <= best) continue;
          const double d = w_[a] - w_[b];
          if (std::max(load_[A] - d, load_[B] + d) > std::max(bound, std::max(load_[A], load_[B]))) continue;
          best = g, bb = b;
        }
        if (bb >= 0) swap(a, bb), moved = true;
      }
      if (!moved) return;
    }
  }

 private:
  double gain(int64_t a, int64_t b) const {
    const int64_t A = part_[a], B = part_[b];
    return link_[a * N_ + B] - link_[a * N_ + A] + link_[b * N_ + A] - link_[b * N_ + B] - 2 * c_[a * E_ + b];
  }
  void swap(int64_t a, int64_t b) {
    const int64_t A = part_[a], B = part_[b];
    for (int64_t x = 0; x < E_; ++x) {
      const double delta = c_[x * E_ + b] - c_[x * E_ + a];
      link_[x * N_ + A] += delta;
      link_[x * N_ + B] -= delta;
    }
    load_[A] += w_[b] - w_[a];
    load_[B] += w_[a] - w_[b];
    part_[a] = B, part_[b] = A;
  }
  const std::vector<double>& c_;
  const std::vector<double>& w_;
  int64_t E_, N_;
  std::vector<int64_t> part_;
  std::vector<double> link_;  // [expert × N + part]: co-selection weight to that part's experts
  std::vector<double> load_;  // [part]
};

// LPT seed: place_replicate without spare slots packs E experts into N bins of E/N by load.
std::vector<int64_t> lpt_parts(const std::vector<double>& w, int64_t N) {
  std::vector<int64_t> part(w.size(), 0);
  if (N == 1) return part;
  PlacementInput sub;
  sub.num_experts = static_cast<int64_t>(w.size()), sub.ep = N, sub.slots_per_rank = sub.num_experts / N,
  sub.load = {w};
  const LayerPlacement lp = place_replicate(sub).front();
  for (int64_t s = 0; s < lp.slots(); ++s) part[lp.phy_to_log[s]] = lp.rank_of_slot(s);
  return part;
}

// Cohesive seed: part by part, start from the unplaced expert with the largest co-selection
// degree and add the one most co-selected with the part that still fits the load cap.
std::vector<int64_t> grown_parts(const std::vector<double>& c, const std::vector<double>& w, int64_t N, double cap) {
  const int64_t E = static_cast<int64_t>(w.size()), size = E / N;
  std::vector<int64_t> part(static_cast<size_t>(E), -1);
  std::vector<double> degree(static_cast<size_t>(E), 0.0), link(static_cast<size_t>(E));
  for (int64_t a = 0; a < E; ++a) degree[a] = std::accumulate(c.begin() + a * E, c.begin() + (a + 1) * E, 0.0);
  for (int64_t p = 0; p < N; ++p) {
    std::fill(link.begin(), link.end(), 0.0);
    double load = 0;
    for (int64_t k = 0; k < size; ++k) {
      int64_t pick = -1, lightest = -1;
      for (int64_t x = 0; x < E; ++x) {
        if (part[x] >= 0) continue;
        if (lightest < 0 || w[x] < w[lightest]) lightest = x;
        if (load + w[x] > cap) continue;
        const double key = k == 0 ? degree[x] : link[x], best = pick < 0 ? -1 : (k == 0 ? degree[pick] : link[pick]);
        if (key > best) pick = x;
      }
      if (pick < 0) pick = lightest;
      part[pick] = p, load += w[pick];
      for (int64_t x = 0; x < E; ++x) link[x] += c[pick * E + x];
    }
  }
  return part;
}

// The expert → node-part assignment of one layer.
std::vector<int64_t> partition(const std::vector<double>* cosel, const std::vector<double>& w, int64_t N) {
  std::vector<int64_t> lpt = lpt_parts(w, N);
  if (!cosel || N == 1) return lpt;
  const int64_t E = static_cast<int64_t>(w.size());
  std::vector<double> c(static_cast<size_t>(E * E));  // symmetric, zero diagonal
  for (int64_t a = 0; a < E; ++a)
    for (int64_t b = 0; b < E; ++b) c[a * E + b] = a == b ? 0 : ((*cosel)[a * E + b] + (*cosel)[b * E + a]) / 2;
  const double total = std::accumulate(w.begin(), w.end(), 0.0), eps = 1e-12 * std::accumulate(c.begin(), c.end(), 0.0);
  Partition balanced(c, w, std::move(lpt), N);
  const double bound = std::max(total / double(N) * (1 + kNodeLoadTolerance), balanced.max_load()) * (1 + 1e-12);
  balanced.refine(bound, eps);
  Partition grown(c, w, grown_parts(c, w, N, bound), N);
  grown.repair(bound);
  grown.refine(bound, eps);
  const bool grown_ok = grown.max_load() <= bound && grown.inside() > balanced.inside() + eps;
  return grown_ok ? grown.part() : balanced.part();
}

}  // namespace

Placement place_data_driven(const PlacementInput& in) {
  const int64_t E = in.num_experts, ep = in.ep;
  const NodeLayout nodes = node_layout(in, "data_driven", E);
  const int64_t N = nodes.nodes();

  Placement out;
  for (int64_t l = 0; l < std::max<int64_t>(in.layers, 1); ++l) {
    const std::vector<double> w = layer_load(in, l, "data_driven");
    const std::vector<int64_t> part =
        partition(checked_row(in.coselection, l, static_cast<size_t>(E * E), "coselection"), w, N);
    std::vector<int64_t> map(static_cast<size_t>(in.slots()));
    for (int64_t n = 0; n < N; ++n) {
      std::vector<int64_t> experts;
      for (int64_t e = 0; e < E; ++e)
        if (part[e] == n) experts.push_back(e);
      place_on_node(nodes, n, experts, w, map);
    }
    out.push_back(layer_from_map(map, E, ep));
  }
  return out;
}

}  // namespace moe
