#pragma once
// Writing a stored run back out. JSONL gives the metrics stream again (docs/architecture.md 3.3):
// run_start (when the run got one), then per step its expert_load, a2a, step and checkpoint
// records, then run_end when the run ended with a status the contract knows — the same records,
// extra fields included, that were ingested (unknown record types were never stored), except the
// a2a records the store summed without keeping them (a2a_summary.h). CSV gives one table in long
// form.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "run_reader.h"

namespace moe::store {

// Returns the number of records written.
int64_t export_jsonl(RunReader& reader, int64_t run, std::ostream& out);

// The tables export_csv knows: steps, expert_load, a2a, events, a2a_steps.
std::vector<std::string> csv_tables();

// table: steps (one row per step), expert_load (step, layer, expert, count, dropped),
// a2a (step, layer, phase, pass, rank, us, bytes: the records kept), events, or a2a_steps (step,
// phase, pass, records, rank, sum_us, min_us, max_us, bytes: every step, summed over its layers).
int64_t export_csv(RunReader& reader, int64_t run, const std::string& table, std::ostream& out);

}  // namespace moe::store
