#pragma once
// The trace simulator (docs/placement.md §10): the routing a run recorded at its sampled steps
// (the a2a dispatch/fwd records' rank_slot_rows: the rows each rank sent to each expert slot)
// replayed under the placement the run used and under every strategy's plan, with the flat
// all-to-all's counting rule. Under the placement the run used, the simulated bytes of every rank
// must equal the measured ones exactly (the check of the simulator against the runtime).
#include <cstdint>
#include <string>
#include <vector>

#include "job_spec.h"
#include "run_reader.h"

namespace moe::store {

struct SimulatedPlacement {
  std::string strategy;                     // "recorded": the placement the run used
  double intra_bytes = 0, inter_bytes = 0;  // dispatch/fwd off-rank bytes, summed over the samples
  double max_over_mean = 0;                 // EP members' computed rows, mean over the samples
  double a2a_seconds = 0;                   // the four flat exchanges of a sample on the spec's hardware, mean
  std::string error;                        // the strategy cannot place this layout
};

struct Simulation {
  int64_t samples = 0;         // (step, layer) dispatch/fwd records with rank_slot_rows
  int64_t exact = 0;           // of them, where the recorded placement's bytes equal the measured ones on every rank
  std::string first_mismatch;  // the first sample where they differ, and how
  bool hierarchical = false;   // the run used the hierarchical exchange: its measured bytes are not the flat ones
  std::vector<SimulatedPlacement> placements;  // "recorded", then uniform, replicate, hierarchical, data_driven
};

// `spec`: the run's spec (the layout it ran: ep, nodes, d_model) — the strategies are planned for
// it from the run's recorded routing. Throws moe::Error for a missing run or one with no samples.
Simulation simulate_placements(RunReader& reader, int64_t run, const JobSpec& spec);

}  // namespace moe::store
