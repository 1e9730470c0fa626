#include "placement_simulate.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "blob_codec.h"
#include "error.h"
#include "expert_placement.h"
#include "hardware_profile.h"
#include "placement_suggest.h"
#include "placement_traffic.h"
#include "rank_layout.h"
#include "sqlite_db.h"

namespace moe::store {

namespace {

struct Sample {
  int64_t step = 0, layer = 0;
  std::vector<int64_t> rank_bytes;  // measured, dispatch/fwd
  std::vector<int64_t> slot_rows;   // [rank × slot]
};

std::vector<Sample> read_samples(RunReader& reader, int64_t run) {
  ReadTxn txn(reader.db());
  Stmt st(reader.db(), "SELECT step, layer, rank_bytes, extra FROM a2a WHERE run_id = ?1 AND phase = 'dispatch'"
                       " AND pass = 'fwd' AND extra LIKE '%rank_slot_rows%' ORDER BY step, layer");
  st.bind(1, run);
  std::vector<Sample> out;
  while (st.step()) {
    const auto extra = nlohmann::json::parse(st.col_text(3), nullptr, false);
    if (!extra.is_object() || !extra.contains("rank_slot_rows") || !extra["rank_slot_rows"].is_array()) continue;
    Sample s{st.col_int(0), st.col_int(1), decode_ints(st.col_blob(2), "a2a.rank_bytes"), {}};
    for (const auto& v : extra["rank_slot_rows"])
      if (v.is_number_integer()) s.slot_rows.push_back(v.get<int64_t>());
    out.push_back(std::move(s));
  }
  return out;
}

// The placement in force at `step` for model layer `layer`: the latest record from that step or
// before, else the spec's own.
LayerPlacement in_force(const std::vector<PlacementRow>& rows, int64_t layer, int64_t step, const LayerPlacement& fallback,
                        int64_t experts, int64_t ep) {
  const PlacementRow* best = nullptr;
  for (const PlacementRow& r : rows)
    if (r.layer == layer && r.step <= step && (!best || r.step >= best->step)) best = &r;
  return best ? layer_from_map(best->phy_to_log, experts, ep) : fallback;
}

// The flat exchange's dispatch bytes of every world rank under `lp` (all_to_all_dispatcher.cpp,
// count_bytes: rows to other ranks of the EP group; intra when the peer shares the node).
std::vector<int64_t> flat_bytes(const RankLayout& layout, const LayerPlacement& lp, const std::vector<int64_t>& slot_rows,
                                double bytes_per_row) {
  const int64_t P = layout.world_size(), S = lp.slots();
  std::vector<int64_t> out(static_cast<size_t>(P), 0);
  for (int64_t r = 0; r < P; ++r) {
    const RankGroup& group = layout.group_of(layout.ep_groups, r);
    for (int64_t s = 0; s < S; ++s) {
      const int64_t peer = group[static_cast<size_t>(lp.rank_of_slot(s))];
      if (peer != r) out[static_cast<size_t>(r)] += static_cast<int64_t>(slot_rows[static_cast<size_t>(r * S + s)] * bytes_per_row);
    }
  }
  return out;
}

}  // namespace

Simulation simulate_placements(RunReader& reader, int64_t run, const JobSpec& spec) {
  const std::vector<Sample> samples = read_samples(reader, run);
  if (samples.empty())
    throw Error("run " + std::to_string(run) + ": no sampled routing to replay (a2a records with rank_slot_rows: "
                "placement.stats_every > 0 on an expert-parallel run)");
  const int64_t E = spec.model.moe.num_experts, ep = spec.parallel.ep;
  const RankLayout layout = make_rank_layout(spec.parallel);
  const double bytes_per_row = static_cast<double>(spec.model.d_model) * (spec.runtime.dtype == "bf16" ? 2.0 : 4.0);
  const HardwareProfile& hw = find_hardware(builtin_hardware_profiles(), spec.cluster.hardware);
  const PlacementInput in = placement_input(spec);
  const Placement own = placement_for_spec(spec);
  const std::vector<PlacementRow> recorded = recorded_placements(reader, run);
  const RecordedRouting routing = recorded_routing(reader, run);
  std::vector<PlacementSuggestion> plans = suggest_placements(spec, routing, hw);

  Simulation sim;
  sim.hierarchical = spec.parallel.hierarchical_a2a;
  sim.placements.push_back({"recorded", 0, 0, 0, 0, ""});
  for (const PlacementSuggestion& p : plans) sim.placements.push_back({p.strategy, 0, 0, 0, 0, p.error});
  for (const Sample& s : samples) {
    const auto at = std::find(routing.layers.begin(), routing.layers.end(), s.layer);
    if (at == routing.layers.end()) continue;
    const size_t li = static_cast<size_t>(at - routing.layers.begin());
    const LayerPlacement used = in_force(recorded, s.layer, s.step, own.at(li), E, ep);
    if (static_cast<int64_t>(s.slot_rows.size()) != layout.world_size() * used.slots()) continue;
    ++sim.samples;
    // The check: the placement the run used, replayed, gives each rank's measured bytes.
    const std::vector<int64_t> bytes = flat_bytes(layout, used, s.slot_rows, bytes_per_row);
    if (!sim.hierarchical) {
      if (bytes == s.rank_bytes) ++sim.exact;
      else if (sim.first_mismatch.empty())
        sim.first_mismatch = "step " + std::to_string(s.step) + " layer " + std::to_string(s.layer) +
                             ": simulated and measured dispatch bytes differ";
    }
    // Each EP group's senders route logical experts: the slots' rows summed per expert.
    for (size_t k = 0; k < sim.placements.size(); ++k) {
      SimulatedPlacement& out = sim.placements[k];
      if (!out.error.empty()) continue;
      const LayerPlacement& lp = k == 0 ? used : plans[k - 1].placement.at(li);
      for (const RankGroup& group : layout.ep_groups) {
        std::vector<std::vector<int64_t>> sent(group.size(), std::vector<int64_t>(static_cast<size_t>(E), 0));
        for (size_t m = 0; m < group.size(); ++m)
          for (int64_t slot = 0; slot < used.slots(); ++slot)
            sent[m][static_cast<size_t>(used.phy_to_log[static_cast<size_t>(slot)])] +=
                s.slot_rows[static_cast<size_t>(group[m] * used.slots() + slot)];
        const PlacementTraffic t = placement_traffic(lp, sent, spec.train.micro_batch, in.node_of_member,
                                                     spec.placement.replica_choice, bytes_per_row);
        for (const LinkBytes& b : t.dispatch_fwd) out.intra_bytes += b.intra, out.inter_bytes += b.inter;
        out.max_over_mean += t.imbalance / static_cast<double>(layout.ep_groups.size());
        out.a2a_seconds += placement_a2a_seconds(t, hw) / static_cast<double>(layout.ep_groups.size());
      }
    }
  }
  for (SimulatedPlacement& p : sim.placements)
    if (sim.samples > 0) p.max_over_mean /= static_cast<double>(sim.samples), p.a2a_seconds /= static_cast<double>(sim.samples);
  return sim;
}

}  // namespace moe::store
