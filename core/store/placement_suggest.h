#pragma once
// Placement from a recorded run (docs/placement.md): the run's recorded routing (mean expert loads,
// summed co-selection samples) read from the store, every strategy planned from it for a layout,
// and each plan's figures side by side — what `moe placement suggest` prints and the studio's
// "Suggest placement from this run" shows. The chosen plan goes back into a spec as an explicit map.
#include <cstdint>
#include <string>
#include <vector>

#include "expert_placement.h"
#include "hardware_profile.h"
#include "job_spec.h"
#include "run_reader.h"

namespace moe::store {

struct RecordedRouting {
  int64_t experts = 0;
  std::vector<int64_t> layers;                   // the model's layer numbers of the MoE layers, ascending
  std::vector<std::vector<double>> load;         // [MoE layer][expert]: mean tokens per step over the window
  std::vector<std::vector<double>> coselection;  // [MoE layer][a·E + b]: the samples' sums, symmetric; empty row: none
  int64_t first_step = 0, last_step = 0;
  int64_t coselection_samples = 0;               // coselection records used (all layers)
  // Additions. kept: mean kept rows per step (counts − dropped: only kept rows are computed and
  // sent), laid out like `load`; suggest_placements plans on it and counts it (on `load` when kept
  // is empty). coselection_layer_samples: the coselection records summed into each row.
  std::vector<std::vector<double>> kept;
  std::vector<int64_t> coselection_layer_samples;
  int64_t steps = 0;  // distinct steps with expert_load records in the window
};
// The run's routing over steps [first, last] (last < 0: to the end). Throws moe::Error for a missing
// run or a run without expert_load records.
RecordedRouting recorded_routing(RunReader& reader, int64_t run, int64_t first = 0, int64_t last = -1);

struct PlacementRow {
  int64_t layer = 0, step = 0, slots_per_rank = 0;
  std::vector<int64_t> phy_to_log;
  int64_t migrated_bytes = 0;  // a re-placement's move (on its first layer's row), 0 otherwise
  double migrate_ms = 0;
};
// The run's placement records (the placement in force from each step on), by step then layer.
std::vector<PlacementRow> recorded_placements(RunReader& reader, int64_t run);

struct PlacementSuggestion {
  std::string strategy;
  Placement placement;         // one per MoE layer; empty when `error` is set
  double max_over_mean = 0;    // EP members' computed rows, max / mean, averaged over the MoE layers
  double inter_share = 0;      // flat exchange: inter-node share of the off-rank bytes
  double hier_inter_rows = 0;  // hierarchical exchange (one copy per token and node): cross-node rows per step, estimated from the co-selection
  double a2a_seconds = 0;      // placement_a2a_seconds on the spec's hardware profile, per step, all MoE layers
  std::string error;           // the strategy cannot place this layout: why
};
// Every strategy (uniform, replicate, hierarchical, data_driven) planned for `spec`'s layout (ep,
// nodes, placement.slots_per_rank, replica_choice) from `routing`, in that order.
std::vector<PlacementSuggestion> suggest_placements(const JobSpec& spec, const RecordedRouting& routing);
// The same on a given hardware profile (the one above resolves spec.cluster.hardware). Throws
// moe::Error naming the spec field when the spec does not match the recording (experts, layers).
std::vector<PlacementSuggestion> suggest_placements(const JobSpec& spec, const RecordedRouting& routing,
                                                    const HardwareProfile& hw);
// `spec` with placement.strategy "explicit" and the suggestion's map (one row per MoE layer).
JobSpec with_placement(JobSpec spec, const PlacementSuggestion& suggestion);

}  // namespace moe::store
