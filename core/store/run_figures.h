#pragma once
// Whole-run figures that read every step of a run (hundreds of thousands of rows for a long one):
// Compare's summary computes them off the GUI thread.
#include <cstdint>

#include "run_reader.h"

namespace moe::store {

// Mean of the recorded step times (ms); NaN when no step has one.
double mean_step_ms(RunReader& reader, int64_t run);

// The slowest rank's all-to-all time (the four phases, every layer) per step, as a share of the
// mean step time; NaN when the run recorded no all-to-all or no step time.
double a2a_share_of_step(RunReader& reader, int64_t run);

}  // namespace moe::store
