#pragma once
// `moe runs prune|vacuum`: giving disk back from finished runs. prune drops the per-rank all-to-all
// records (table a2a) more than keep_last steps before a finished run's last step; every step's
// per-rank sums (a2a_steps) and the records with extra fields (sampled routing, which `moe placement
// simulate` replays) stay, so Live, Compare and `moe runs show` read the same figures after.
// vacuum rewrites the file so the freed pages go back to the disk.
#include <cstdint>
#include <vector>

#include "run_store.h"

namespace moe::store {

struct PruneReport {
  int64_t runs = 0;                     // finished runs looked at
  int64_t rows = 0;                     // a2a records deleted (or that would be)
  int64_t freed_bytes = 0;              // pages freed inside the file (what a vacuum gives back)
  std::vector<int64_t> skipped_running; // named runs left alone because they have not ended
};

// runs: the runs to prune (empty: every finished run). dry_run: the same deletes in a transaction
// that is rolled back, so freed_bytes is exactly what the real prune frees.
PruneReport prune_a2a_detail(RunStore& store, const std::vector<int64_t>& runs, int64_t keep_last, bool dry_run);

struct VacuumReport {
  int64_t bytes_before = 0, bytes_after = 0;  // the file plus its WAL
};

// dry_run: bytes_after is the size without the free pages (what VACUUM would leave), nothing changes.
VacuumReport vacuum_store(RunStore& store, bool dry_run);

}  // namespace moe::store
