#include "run_figures.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sqlite_db.h"

namespace moe::store {

double mean_step_ms(RunReader& reader, int64_t run) {
  Stmt st(reader.db(), "SELECT avg(step_ms) FROM steps WHERE run_id = ?1 AND step_ms IS NOT NULL");
  st.bind(1, run);
  return st.step() ? st.col_double(0) : std::numeric_limits<double>::quiet_NaN();
}

double a2a_share_of_step(RunReader& reader, int64_t run) {
  const RunInfo info = reader.run(run);
  const double step_ms = mean_step_ms(reader, run);
  double a2a_us = 0;
  int64_t samples = 0;
  const char* phases[] = {"dispatch", "combine", "dispatch", "combine"};
  const char* passes[] = {"fwd", "fwd", "bwd", "bwd"};
  for (int i = 0; i < 4; ++i) {
    const A2aRankStats s = reader.a2a_rank_stats(run, phases[i], passes[i], -1, 0, -1);
    if (s.mean_us.empty()) continue;
    samples += s.samples;
    // The slowest rank's total over the run (its mean per record × the records).
    a2a_us += *std::max_element(s.mean_us.begin(), s.mean_us.end()) * static_cast<double>(s.samples);
  }
  if (samples == 0 || !(step_ms > 0) || info.n_steps <= 0) return std::numeric_limits<double>::quiet_NaN();
  return a2a_us / static_cast<double>(info.n_steps) / 1000.0 / step_ms;
}

}  // namespace moe::store
