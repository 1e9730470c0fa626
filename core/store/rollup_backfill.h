#pragma once
// The coarser rollups (schema 9: levels 1–3 of expert_load_levels and step_levels, blocks of 64,
// 256 and 1024 steps) rebuilt from a file's 16-step blocks, for files whose blocks predate them
// (migrated to schema 9 before version 10, which runs this once). Queries are exact either way;
// without the levels they read more rows.
//
// A parent is written when every 16-step block in its range has its block row, or has no raw row
// at all (a block with raw rows but no block row was spoiled by a repeated or late record, or is
// the run's open last block), and at least one has a row: the same sums the writer makes. Rows
// already there (the writer's) are kept.
#include "sqlite_db.h"

namespace moe::store {

void backfill_rollup_levels(Db& db);

}  // namespace moe::store
