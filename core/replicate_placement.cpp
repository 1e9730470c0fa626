// EPLB's global mode (DeepSeek, github.com/deepseek-ai/EPLB: replicate_experts + balanced_packing),
// docs/placement.md: the spare slots replicate the experts with the largest load per replica, then
// the replicas are packed onto the members, exactly slots_per_rank each, balancing the members'
// load. The hierarchical and data-driven strategies call this per node (and to pack groups or
// experts onto nodes), so it is the one packing routine of core.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>

#include "error.h"
#include "node_placement.h"
#include "placement_strategies.h"

namespace moe {

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

// Replica counts: one each, then every spare slot to the largest load per replica (ties: lower
// index); an expert never gets more replicas than there are members.
std::vector<int64_t> replicate(const std::vector<double>& w, int64_t slots, int64_t members) {
  const int64_t E = static_cast<int64_t>(w.size());
  std::vector<int64_t> r(static_cast<size_t>(E), 1);
  auto worse = [&](int64_t a, int64_t b) {  // priority: a below b
    const double pa = w[a] / double(r[a]), pb = w[b] / double(r[b]);
    return pa != pb ? pa < pb : a > b;
  };
  std::priority_queue<int64_t, std::vector<int64_t>, decltype(worse)> hot(worse);
  for (int64_t e = 0; e < E; ++e)
    if (members > 1) hot.push(e);
  for (int64_t spare = slots - E; spare > 0; --spare) {
    if (hot.empty())  // every expert already on every member
      throw Error("placement.slots_per_rank: " + str(slots) + " slots exceed one replica of each of the " + str(E) +
                  " experts per EP rank (" + str(E * std::max<int64_t>(members, 1)) + ")");
    const int64_t e = hot.top();
    hot.pop();
    if (++r[e] < members) hot.push(e);
  }
  return r;
}

struct Item {
  double w;
  int64_t expert;
};

struct Packing {
  std::vector<std::vector<Item>> held;  // [member] → its items
  std::vector<double> load;             // [member]
  bool holds(int64_t m, int64_t e) const {
    for (const Item& it : held[m])
      if (it.expert == e) return true;
    return false;
  }
};

// Round-based LPT: items sorted heaviest first, round j gives one item to every member, the
// heaviest to the least loaded. Replicas of one expert are adjacent in the order and number at
// most `members`, so they span at most two rounds and the straddling ones lead their round: a
// member without that expert is always free, and the round never blocks.
Packing pack_rounds(std::vector<Item> items, int64_t members) {
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.w != b.w ? a.w > b.w : a.expert < b.expert; });
  Packing p;
  p.held.assign(static_cast<size_t>(members), {});
  p.load.assign(static_cast<size_t>(members), 0.0);
  std::vector<int64_t> order(static_cast<size_t>(members));
  std::vector<char> taken(static_cast<size_t>(members));
  for (size_t first = 0; first < items.size(); first += static_cast<size_t>(members)) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p.load[a] < p.load[b]; });
    std::fill(taken.begin(), taken.end(), 0);
    for (size_t i = first; i < std::min(items.size(), first + static_cast<size_t>(members)); ++i) {
      int64_t pick = -1;
      for (int64_t m : order)
        if (!taken[m] && !p.holds(m, items[i].expert)) {
          pick = m;
          break;
        }
      if (pick < 0)
        throw Error("placement.replicate: internal error: no member can take expert " + str(items[i].expert));
      taken[pick] = 1;
      p.held[pick].push_back(items[i]);
      p.load[pick] += items[i].w;
    }
  }
  return p;
}

// Swap refinement: while some item of the most loaded member and a lighter item elsewhere can be
// exchanged so that both end below the current maximum, make the best such swap.
void refine(Packing& p, double total) {
  const int64_t M = static_cast<int64_t>(p.load.size());
  const double eps = 1e-12 * std::max(total, 1e-300);
  for (int64_t iter = 0; iter < 4 * M + 64; ++iter) {
    const int64_t top = std::max_element(p.load.begin(), p.load.end()) - p.load.begin();
    double best = p.load[top] - eps;
    int64_t bq = -1;
    size_t ba = 0, bb = 0;
    for (int64_t q = 0; q < M; ++q) {
      if (q == top || p.load[q] >= best) continue;
      for (size_t a = 0; a < p.held[top].size(); ++a)
        for (size_t b = 0; b < p.held[q].size(); ++b) {
          const Item &ia = p.held[top][a], &ib = p.held[q][b];
          const double d = ia.w - ib.w;
          if (d <= 0) continue;
          const double worst = std::max(p.load[top] - d, p.load[q] + d);
          if (worst >= best || p.holds(q, ia.expert) || p.holds(top, ib.expert)) continue;
          best = worst, bq = q, ba = a, bb = b;
        }
    }
    if (bq < 0) return;
    const double d = p.held[top][ba].w - p.held[bq][bb].w;
    std::swap(p.held[top][ba], p.held[bq][bb]);
    p.load[top] -= d;
    p.load[bq] += d;
  }
}

std::vector<int64_t> plan_layer(const std::vector<double>& w, int64_t members, int64_t per_member) {
  const int64_t E = static_cast<int64_t>(w.size()), slots = members * per_member;
  std::vector<int64_t> map(static_cast<size_t>(slots));
  // Equal loads and no spare slot: the uniform placement itself, so the runtime keeps its fast path.
  const bool equal = std::adjacent_find(w.begin(), w.end(), std::not_equal_to<>()) == w.end();
  if (equal && slots == E) {
    std::iota(map.begin(), map.end(), 0);
    return map;
  }
  const std::vector<int64_t> r = replicate(w, slots, members);
  std::vector<Item> items;
  items.reserve(static_cast<size_t>(slots));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t k = 0; k < r[e]; ++k) items.push_back({w[e] / double(r[e]), e});
  Packing p = pack_rounds(std::move(items), members);
  refine(p, std::accumulate(w.begin(), w.end(), 0.0));
  for (int64_t m = 0; m < members; ++m) {
    // Slots of a member in ascending expert order: the map does not depend on the swap history.
    std::vector<int64_t> held;
    for (const Item& it : p.held[m]) held.push_back(it.expert);
    std::sort(held.begin(), held.end());
    std::copy(held.begin(), held.end(), map.begin() + m * per_member);
  }
  return map;
}

}  // namespace

Placement place_replicate(const PlacementInput& in) {
  const int64_t E = in.num_experts, ep = in.ep;
  if (E < 1 || ep < 1) throw Error("placement.replicate: needs num_experts ≥ 1 and ep ≥ 1");
  if (in.slots_per_rank == 0 && E % ep != 0)
    throw Error("placement.slots_per_rank: 0 means num_experts / ep, but ep (" + str(ep) +
                ") does not divide num_experts (" + str(E) + "); give the slots per rank");
  const int64_t per_member = in.slots() / ep;
  if (in.slots() < E)
    throw Error("placement.slots_per_rank: " + str(per_member) + " × ep (" + str(ep) + ") slots cannot hold " + str(E) +
                " experts");
  if (per_member > E)
    throw Error("placement.slots_per_rank: " + str(per_member) + " slots per rank exceed num_experts (" + str(E) +
                "): a rank would hold two replicas of one expert");
  Placement out;
  for (int64_t l = 0; l < std::max<int64_t>(in.layers, 1); ++l)
    out.push_back(layer_from_map(plan_layer(layer_load(in, l, "replicate"), ep, per_member), E, ep));
  return out;
}

}  // namespace moe
