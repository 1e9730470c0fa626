// Placement from a recorded run (placement_suggest.h, docs/placement.md §8): the store's routing
// records in, every strategy's plan and figures out.
#include "placement_suggest.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "blob_codec.h"
#include "error.h"
#include "placement_traffic.h"
#include "sqlite_db.h"

namespace moe::store {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

std::string run_label(const RunInfo& r) { return "run " + str(r.id) + (r.name.empty() ? "" : " (" + r.name + ")"); }

// Sums of one layer's expert_load rows in the window.
struct LoadSums {
  std::vector<int64_t> counts, dropped;
  int64_t records = 0;
};

// The co-selection matrices may be large (E² per layer): refuse what would not fit in memory
// rather than abort (a hostile store can claim any expert count).
constexpr int64_t kMaxCoselectionEntries = int64_t{1} << 27;

void read_loads(RunReader& reader, const RunInfo& info, int64_t first, int64_t last, RecordedRouting& out) {
  const int64_t E = info.n_experts;
  Stmt st(reader.db(), "SELECT layer, step, counts, dropped FROM expert_load WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3");
  st.bind(1, info.id).bind(2, first).bind(3, last);
  std::map<int64_t, LoadSums> sums;
  std::set<int64_t> steps;
  while (st.step()) {
    const int64_t layer = st.col_int(0), step = st.col_int(1);
    std::vector<int64_t> counts = decode_ints(st.col_blob(2), "expert_load.counts");
    std::vector<int64_t> dropped = decode_ints(st.col_blob(3), "expert_load.dropped");
    if (static_cast<int64_t>(counts.size()) != E || (!dropped.empty() && dropped.size() != counts.size()))
      throw Error(run_label(info) + ": expert_load of layer " + str(layer) + " at step " + str(step) + " has " +
                  str(static_cast<int64_t>(counts.size())) + " counts, the run has " + str(E) + " experts");
    LoadSums& s = sums[layer];
    if (s.counts.empty()) s.counts.assign(E, 0), s.dropped.assign(E, 0);
    for (int64_t e = 0; e < E; ++e) {
      s.counts[e] += counts[e];
      if (!dropped.empty()) s.dropped[e] += dropped[e];
    }
    ++s.records;
    steps.insert(step);
  }
  if (sums.empty())
    throw Error(run_label(info) + ": no expert_load records" +
                (first > 0 || last < std::numeric_limits<int64_t>::max()
                     ? " in steps " + str(first) + "–" + (last == std::numeric_limits<int64_t>::max() ? "end" : str(last))
                     : std::string()) +
                " (the routing a placement is planned from)");
  out.first_step = *steps.begin();
  out.last_step = *steps.rbegin();
  out.steps = static_cast<int64_t>(steps.size());
  for (const auto& [layer, s] : sums) {
    out.layers.push_back(layer);
    std::vector<double> load(E), kept(E);
    for (int64_t e = 0; e < E; ++e) {
      load[e] = static_cast<double>(s.counts[e]) / static_cast<double>(s.records);
      kept[e] = std::max(0.0, static_cast<double>(s.counts[e] - s.dropped[e]) / static_cast<double>(s.records));
    }
    out.load.push_back(std::move(load));
    out.kept.push_back(std::move(kept));
  }
}

// Sums the window's coselection samples into symmetric E×E rows; records of another expert count,
// of a layer without loads, or with out-of-range pairs are skipped, not fatal.
void read_coselection(RunReader& reader, const RunInfo& info, int64_t first, int64_t last, RecordedRouting& out) {
  const int64_t E = out.experts;
  const size_t L = out.layers.size();
  out.coselection.assign(L, {});
  out.coselection_layer_samples.assign(L, 0);
  Stmt st(reader.db(), "SELECT layer, n_experts, pairs FROM coselection WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3");
  st.bind(1, info.id).bind(2, first).bind(3, last);
  int64_t entries = 0;
  while (st.step()) {
    const auto it = std::lower_bound(out.layers.begin(), out.layers.end(), st.col_int(0));
    if (it == out.layers.end() || *it != st.col_int(0) || st.col_int(1) != E) continue;
    const size_t l = static_cast<size_t>(it - out.layers.begin());
    std::vector<double>& row = out.coselection[l];
    if (row.empty()) {
      entries += E * E;
      if (entries > kMaxCoselectionEntries)
        throw Error(run_label(info) + ": the co-selection of " + str(E) + " experts over " + str(static_cast<int64_t>(L)) +
                    " layers is too large to plan from");
      row.assign(static_cast<size_t>(E * E), 0.0);
    }
    const std::vector<int64_t> pairs = decode_ints(st.col_blob(2), "coselection.pairs");
    for (size_t i = 0; i + 2 < pairs.size(); i += 3) {
      const int64_t a = pairs[i], b = pairs[i + 1], n = pairs[i + 2];
      if (a < 0 || b < 0 || a >= E || b >= E || a == b || n < 0) continue;
      row[static_cast<size_t>(a * E + b)] += static_cast<double>(n);
      row[static_cast<size_t>(b * E + a)] += static_cast<double>(n);
    }
    ++out.coselection_layer_samples[l];
    ++out.coselection_samples;
  }
}

// Rows one EP member sends to each logical expert in one micro-batch: the recorded global batch's
// kept rows per step split over the dp EP groups and the grad_accum micro-batches, then evenly over
// the ep members. A recorded run has per-expert totals only, no per-sender counts, so every member
// is taken to route alike (the remainder rotates over members so no member gets them all).
std::vector<std::vector<int64_t>> even_senders(const std::vector<double>& kept, int64_t ep, double share) {
  const int64_t E = static_cast<int64_t>(kept.size());
  std::vector<std::vector<int64_t>> sent(static_cast<size_t>(ep), std::vector<int64_t>(static_cast<size_t>(E), 0));
  for (int64_t e = 0; e < E; ++e) {
    const int64_t total = std::llround(kept[e] * share);
    for (int64_t m = 0; m < ep; ++m) sent[m][e] = total / ep + (((m - e) % ep + ep) % ep < total % ep ? 1 : 0);
  }
  return sent;
}

// Expected cross-node rows of one layer's hierarchical dispatch per step: the exchange sends a token
// once to every node other than the sender's that holds one of its kept experts. Senders are spread
// over the nodes as the EP members are (share w(s)); a copy of expert e lands on node n with
// probability p_e(n) (its replicas' share there; with "local" replica choice the sender's own node
// when e has a replica there). A lone copy then costs c_e = P(destination ≠ sender's node); a pair
// (a, b) chosen by one token costs c_a + c_b − shared_ab, shared_ab = P(both on one node other than
// the sender's), the two replica choices taken as independent. With co-selection counts C_ab per
// step and top_k = k: rows = Σ_e kept_e·c_e − Σ_{a<b} C_ab·shared_ab / (k − 1). Exact for top-2
// when every co-selected pair is recorded (without replicas: a pair on one node costs 1 − 1/N rows,
// split over two nodes 2(1 − 1/N), a lone copy 1 − 1/N, with N nodes of equal size). For k > 2 it
// overestimates tokens with three or more copies on one node (a token's pairs are counted pairwise);
// unrecorded pairs (the stream keeps each expert's 8 most co-selected partners) also count as apart.
double hier_cross_node_rows(const LayerPlacement& lp, const std::vector<int64_t>& node_of_member,
                            const std::string& replica_choice, const std::vector<double>& kept,
                            const std::vector<double>& cosel_per_sample, double samples, int64_t top_k) {
  const int64_t E = static_cast<int64_t>(kept.size()), P = static_cast<int64_t>(node_of_member.size());
  std::map<int64_t, int64_t> dense;
  for (int64_t n : node_of_member) dense.emplace(n, static_cast<int64_t>(dense.size()));
  const int64_t N = static_cast<int64_t>(dense.size());
  if (N <= 1) return 0;
  std::vector<double> w(static_cast<size_t>(N), 0.0);
  for (int64_t n : node_of_member) w[dense[n]] += 1.0 / static_cast<double>(P);
  std::vector<std::vector<double>> p(static_cast<size_t>(E), std::vector<double>(static_cast<size_t>(N), 0.0));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t slot : lp.log_to_phy[e])
      p[e][dense[node_of_member[lp.rank_of_slot(slot)]]] += 1.0 / static_cast<double>(lp.log_to_phy[e].size());
  const bool local = replica_choice == "local";
  std::vector<double> cost(static_cast<size_t>(E), 0.0);
  double rows = 0;
  for (int64_t e = 0; e < E; ++e) {
    double stay = 0;  // P(the copy stays on the sender's node)
    for (int64_t n = 0; n < N; ++n) stay += local ? (p[e][n] > 0 ? w[n] : 0.0) : w[n] * p[e][n];
    cost[e] = 1 - stay;
    rows += kept[e] * cost[e];
  }
  if (cosel_per_sample.size() != static_cast<size_t>(E * E) || samples <= 0) return rows;
  const double per_token = 1.0 / static_cast<double>(std::max<int64_t>(top_k - 1, 1));
  for (int64_t a = 0; a < E; ++a)
    for (int64_t b = a + 1; b < E; ++b) {
      const double c = cosel_per_sample[static_cast<size_t>(a * E + b)] / samples;
      if (c <= 0) continue;
      double shared = 0, together = 0, apart_senders = 0;
      for (int64_t n = 0; n < N; ++n) {
        together += p[a][n] * p[b][n];
        shared += p[a][n] * p[b][n] * (1 - w[n]);
        if (p[a][n] == 0 && p[b][n] == 0) apart_senders += w[n];
      }
      // local: a sender's node holding a replica of a or b receives that copy itself.
      rows -= c * per_token * (local ? apart_senders * together : shared);
    }
  return std::max(rows, 0.0);
}

void add_figures(const JobSpec& spec, const PlacementInput& in, const RecordedRouting& routing,
                 const std::vector<int64_t>& moe_index, const HardwareProfile& hw, PlacementSuggestion& s) {
  const int64_t accum = std::max<int64_t>(spec.train.grad_accum, 1), groups = std::max<int64_t>(spec.parallel.dp, 1);
  const double share = 1.0 / static_cast<double>(groups * accum);  // one EP group, one micro-batch
  const double bytes_per_row = static_cast<double>(spec.model.d_model) * (spec.runtime.dtype == "bf16" ? 2.0 : 4.0);
  const int64_t units = std::max<int64_t>(spec.train.micro_batch, 1);
  double imbalance = 0, intra = 0, inter = 0, seconds = 0, hier = 0;
  bool priced = hw.intra_node_bw > 0 && hw.inter_node_bw > 0;
  for (size_t i = 0; i < moe_index.size(); ++i) {
    const LayerPlacement& lp = s.placement.at(static_cast<size_t>(moe_index[i]));
    const std::vector<double>& kept = routing.kept.size() == routing.load.size() ? routing.kept[i] : routing.load[i];
    const PlacementTraffic t = placement_traffic(lp, even_senders(kept, in.ep, share), units, in.node_of_member,
                                                 spec.placement.replica_choice, bytes_per_row);
    imbalance += t.imbalance;
    intra += t.intra_bytes;
    inter += t.inter_bytes;
    if (priced) seconds += placement_a2a_seconds(t, hw) * static_cast<double>(accum);
    const double samples = i < routing.coselection_layer_samples.size() ? static_cast<double>(routing.coselection_layer_samples[i]) : 0.0;
    hier += hier_cross_node_rows(lp, in.node_of_member, spec.placement.replica_choice, kept,
                                 i < routing.coselection.size() ? routing.coselection[i] : std::vector<double>{}, samples,
                                 spec.model.moe.top_k);
  }
  s.max_over_mean = imbalance / static_cast<double>(moe_index.size());
  s.inter_share = intra + inter > 0 ? inter / (intra + inter) : 0.0;
  s.hier_inter_rows = hier;
  s.a2a_seconds = priced ? seconds : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

RecordedRouting recorded_routing(RunReader& reader, int64_t run, int64_t first, int64_t last) {
  ReadTxn txn(reader.db());  // one snapshot while a recorder appends
  const RunInfo info = reader.run(run);
  if (first < 0) first = 0;
  if (last < 0) last = std::numeric_limits<int64_t>::max();
  if (last < first) throw Error(run_label(info) + ": the step window " + str(first) + "–" + str(last) + " is empty");
  RecordedRouting out;
  out.experts = info.n_experts;
  read_loads(reader, info, first, last, out);
  read_coselection(reader, info, first, last, out);
  return out;
}

std::vector<PlacementRow> recorded_placements(RunReader& reader, int64_t run) {
  ReadTxn txn(reader.db());
  (void)reader.run(run);  // throws for a missing run
  Stmt st(reader.db(), "SELECT layer, step, slots_per_rank, phy_to_log, extra FROM placements WHERE run_id = ?1"
                       " ORDER BY step, layer");
  st.bind(1, run);
  std::vector<PlacementRow> out;
  while (st.step()) {
    PlacementRow row{st.col_int(0), st.col_int(1), st.col_int(2), decode_ints(st.col_blob(3), "placements.phy_to_log")};
    // A re-placement's cost travels in the record's extensions (the stored extra).
    if (!st.is_null(4)) {
      const auto extra = nlohmann::json::parse(st.col_text(4), nullptr, false);
      if (extra.is_object()) {
        if (extra.contains("migrated_bytes") && extra["migrated_bytes"].is_number_integer())
          row.migrated_bytes = extra["migrated_bytes"].get<int64_t>();
        if (extra.contains("migrate_ms") && extra["migrate_ms"].is_number()) row.migrate_ms = extra["migrate_ms"].get<double>();
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<PlacementSuggestion> suggest_placements(const JobSpec& spec, const RecordedRouting& routing) {
  return suggest_placements(spec, routing, find_hardware(builtin_hardware_profiles(), spec.cluster.hardware));
}

std::vector<PlacementSuggestion> suggest_placements(const JobSpec& spec, const RecordedRouting& routing,
                                                    const HardwareProfile& hw) {
  const int64_t E = spec.model.moe.num_experts, first_moe = spec.model.moe.first_dense_layers;
  const int64_t moe_layers = spec.model.moe_layers();
  if (routing.experts != E)
    throw Error("model.moe.num_experts: " + str(E) + ", but the run recorded " + str(routing.experts) + " experts");
  if (routing.layers.empty() || routing.load.size() != routing.layers.size())
    throw Error("placement: no recorded routing to plan from");
  PlacementInput in = placement_input(spec);
  in.load.assign(static_cast<size_t>(std::max<int64_t>(moe_layers, 1)), {});
  in.coselection = in.load;
  std::vector<int64_t> moe_index;  // the MoE layer of each recorded layer
  for (size_t i = 0; i < routing.layers.size(); ++i) {
    const int64_t l = routing.layers[i] - first_moe;
    if (l < 0 || l >= moe_layers)
      throw Error("model.n_layers: the run recorded routing for layer " + str(routing.layers[i]) +
                  ", which is not a MoE layer of the spec (layers " + str(first_moe) + "–" + str(spec.model.n_layers - 1) + ")");
    moe_index.push_back(l);
    // Plan on the kept rows: they are what the experts compute (a capped expert's drops do not move).
    in.load[l] = routing.kept.size() == routing.load.size() ? routing.kept[i] : routing.load[i];
    if (i < routing.coselection.size()) in.coselection[l] = routing.coselection[i];
  }
  std::vector<PlacementSuggestion> out;
  for (const char* strategy : {"uniform", "replicate", "hierarchical", "data_driven"}) {
    PlacementSuggestion s;
    s.strategy = strategy;
    try {
      s.placement = place_experts(strategy, in);
      add_figures(spec, in, routing, moe_index, hw, s);
    } catch (const Error& e) {
      s = PlacementSuggestion{};
      s.strategy = strategy;
      s.error = e.what();
    }
    out.push_back(std::move(s));
  }
  return out;
}

JobSpec with_placement(JobSpec spec, const PlacementSuggestion& suggestion) {
  if (!suggestion.error.empty() || suggestion.placement.empty())
    throw Error("placement.strategy: '" + suggestion.strategy + "' has no plan for this layout" +
                (suggestion.error.empty() ? "" : ": " + suggestion.error));
  spec.placement.strategy = "explicit";
  spec.placement.slots_per_rank = suggestion.placement.front().slots_per_rank;
  spec.placement.map.clear();
  for (const LayerPlacement& l : suggestion.placement) spec.placement.map.push_back(l.phy_to_log);
  return spec;
}

}  // namespace moe::store
