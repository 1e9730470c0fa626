#include "placement_traffic.h"

#include <algorithm>

#include "error.h"
#include "replica_choice.h"

namespace moe {

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

// The traffic of a placement once every sender's rows per slot are known: fill(m, choice,
// slot_rows) adds member m's rows to slot_rows[slot], split over replicas by m's ReplicaChoice.
template <typename Fill>
PlacementTraffic traffic_from_slots(const LayerPlacement& placement, int64_t senders,
                                    const std::vector<int64_t>& node_of_member, const std::string& replica_choice,
                                    double bytes_per_row, Fill fill) {
  if (placement.slots_per_rank < 1 || placement.slots() % placement.slots_per_rank != 0)
    throw Error("placement traffic: the placement has no slots");
  const int64_t P = placement.slots() / placement.slots_per_rank;
  if (senders != P)
    throw Error("placement traffic: rows of " + str(senders) + " senders, expected one per EP member (" + str(P) + ")");
  if (!node_of_member.empty() && static_cast<int64_t>(node_of_member.size()) != P)
    throw Error("placement traffic: " + str(static_cast<int64_t>(node_of_member.size())) + " node entries for " +
                str(P) + " EP members");
  auto same_node = [&](int64_t a, int64_t b) {
    return node_of_member.empty() || node_of_member[a] == node_of_member[b];
  };

  PlacementTraffic t;
  t.members = P;
  t.rows.assign(static_cast<size_t>(P * P), 0);
  std::vector<int64_t> slot_rows(static_cast<size_t>(placement.slots()));
  for (int64_t m = 0; m < P; ++m) {
    const ReplicaChoice choice(placement, node_of_member, m, replica_choice);
    std::fill(slot_rows.begin(), slot_rows.end(), 0);
    fill(m, choice, slot_rows);
    for (int64_t s = 0; s < placement.slots(); ++s) t.rows[m * P + placement.rank_of_slot(s)] += slot_rows[s];
  }
  // Dispatch-forward: m sends rows[m][q] to q; combine-forward: q sends them back (the transpose).
  t.dispatch_fwd.assign(static_cast<size_t>(P), {});
  t.combine_fwd.assign(static_cast<size_t>(P), {});
  t.computed.assign(static_cast<size_t>(P), 0);
  for (int64_t m = 0; m < P; ++m)
    for (int64_t q = 0; q < P; ++q) {
      t.computed[q] += t.rows[m * P + q];
      if (q == m) continue;
      const double bytes = double(t.rows[m * P + q]) * bytes_per_row;
      (same_node(m, q) ? t.dispatch_fwd[m].intra : t.dispatch_fwd[m].inter) += bytes;
      (same_node(m, q) ? t.combine_fwd[q].intra : t.combine_fwd[q].inter) += bytes;
    }
  // Backward: the gradient of combine travels the dispatch way, the gradient of dispatch the
  // combine way (docs/cost-model.md §4).
  t.combine_bwd = t.dispatch_fwd;
  t.dispatch_bwd = t.combine_fwd;
  for (int64_t m = 0; m < P; ++m) {
    t.intra_bytes += 2 * (t.dispatch_fwd[m].intra + t.combine_fwd[m].intra);
    t.inter_bytes += 2 * (t.dispatch_fwd[m].inter + t.combine_fwd[m].inter);
  }
  double sum = 0;
  for (int64_t c : t.computed) sum += double(c), t.max_load = std::max(t.max_load, double(c));
  t.mean_load = sum / double(P);
  t.imbalance = t.mean_load > 0 ? t.max_load / t.mean_load : 1.0;
  return t;
}

void check_experts(int64_t m, size_t size, int64_t E) {
  if (static_cast<int64_t>(size) != E)
    throw Error("placement traffic: rows of sender " + str(m) + " name " + str(static_cast<int64_t>(size)) +
                " experts, the placement has " + str(E));
}

void check_count(int64_t m, int64_t e, int64_t rows) {
  if (rows < 0) throw Error("placement traffic: sender " + str(m) + ", expert " + str(e) + ": a negative row count");
}

}  // namespace

PlacementTraffic placement_traffic(const LayerPlacement& placement,
                                   const std::vector<std::vector<std::vector<int64_t>>>& unit_rows,
                                   const std::vector<int64_t>& node_of_member, const std::string& replica_choice,
                                   double bytes_per_row) {
  const int64_t E = static_cast<int64_t>(placement.log_to_phy.size());
  return traffic_from_slots(placement, static_cast<int64_t>(unit_rows.size()), node_of_member, replica_choice,
                            bytes_per_row,
                            [&](int64_t m, const ReplicaChoice& choice, std::vector<int64_t>& slot_rows) {
                              check_experts(m, unit_rows[m].size(), E);
                              for (int64_t e = 0; e < E; ++e) {
                                for (int64_t v : unit_rows[m][e]) check_count(m, e, v);
                                choice.split(e, unit_rows[m][e], slot_rows);
                              }
                            });
}

PlacementTraffic placement_traffic(const LayerPlacement& placement, const std::vector<std::vector<int64_t>>& sent,
                                   int64_t units, const std::vector<int64_t>& node_of_member,
                                   const std::string& replica_choice, double bytes_per_row) {
  const int64_t E = static_cast<int64_t>(placement.log_to_phy.size());
  return traffic_from_slots(placement, static_cast<int64_t>(sent.size()), node_of_member, replica_choice, bytes_per_row,
                            [&](int64_t m, const ReplicaChoice& choice, std::vector<int64_t>& slot_rows) {
                              check_experts(m, sent[m].size(), E);
                              for (int64_t e = 0; e < E; ++e) {
                                check_count(m, e, sent[m][e]);
                                choice.split_even(e, sent[m][e], units, slot_rows);
                              }
                            });
}

double placement_a2a_seconds(const PlacementTraffic& t, const HardwareProfile& hw) {
  const double bw_intra = hw.intra_node_bw * hw.comm_efficiency, bw_inter = hw.inter_node_bw * hw.comm_efficiency;
  if (bw_intra <= 0 || bw_inter <= 0)
    throw Error("placement traffic: hardware '" + hw.name + "' has no link bandwidth");
  // What a member receives in dispatch is what it sends back in combine (combine_fwd[m]); in
  // combine the two swap, so all four exchanges last the same.
  double exchange = 0;
  for (int64_t m = 0; m < t.members; ++m) {
    const LinkBytes &out = t.dispatch_fwd[m], &in = t.combine_fwd[m];
    exchange = std::max(exchange,
                        std::max(std::max(out.intra, in.intra) / bw_intra, std::max(out.inter, in.inter) / bw_inter));
  }
  return 4 * exchange;
}

}  // namespace moe
