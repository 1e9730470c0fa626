#pragma once
// Per-step all-to-all summaries (schema version 8, table a2a_steps). A 64-layer run on 8 ranks
// writes 256 a2a records a step, each with per-rank arrays: 29 KB a step, the larger half of a run
// store. What the studio shows from them is per rank: the time summed over layers for each step
// (Live's rank × step map) and the mean/min/max over records in a window (the rank bars, `moe runs
// show`). So every step keeps, per (phase, pass) and rank, the sum, min and max over its records of
// the time (in integer nanoseconds) and the sum of the bytes; the full per-rank records (table a2a)
// are kept only where detail is wanted (keep_a2a_detail). docs/run-store.md explains the choice.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sqlite_db.h"
#include "store_records.h"

namespace moe::store {

// The sums of one (step, phase, pass), per rank. The min is over the records the rank took part
// in (a pipeline's other stages report 0 µs and 0 bytes for a layer they do not hold); 0 when none.
struct A2aStepSum {
  int64_t records = 0;
  std::vector<int64_t> sum_ns, min_ns, max_ns, sum_bytes;
  std::optional<int64_t> intra_bytes, inter_bytes;  // sums over the records that carry them

  void add(const A2aRecord& r);
};

// Microseconds to integer nanoseconds (the runtime measures whole nanoseconds), clamped.
int64_t to_ns(double us);

// Whether the record keeps its per-rank arrays: the first `every` steps of a run, every `every`-th
// step after, records with extra fields (sampled routing for `moe placement simulate`) and
// anomalies (a rank slower than anomaly_ratio × the median rank). every ≤ 0 keeps all.
bool keep_a2a_detail(const A2aRecord& r, bool has_extra, int64_t every, double anomaly_ratio);

// The stored sums of (run, step, phase, pass), if any.
std::optional<A2aStepSum> read_a2a_step(Db& db, int64_t run, int64_t step, const std::string& phase,
                                        const std::string& pass);
void write_a2a_step(Db& db, int64_t run, int64_t step, const std::string& phase, const std::string& pass,
                    const A2aStepSum& sum);

// Migration to version 8: sums every stored a2a record into a2a_steps (per-rank rows stay).
void backfill_a2a_steps(Db& db);

}  // namespace moe::store
