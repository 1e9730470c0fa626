#pragma once
// The run store's schema and its migrations. PRAGMA user_version is the schema version: a new file
// is migrated step by step from 0 to kSchemaVersion; an older file is migrated the same way in one
// transaction; a file from a newer build is refused with a message naming it.
#include <cstdint>

#include "sqlite_db.h"

namespace moe::store {

inline constexpr int64_t kSchemaVersion = 10;
// Steps per block of the rollup tables (version 3): see run_store.h.
inline constexpr int64_t kBlockSteps = 16;
// Rollup levels (version 9): level L holds blocks of kBlockSteps · 4^L steps (16, 64, 256, 1024).
inline constexpr int kRollupLevels = 4;
constexpr int64_t rollup_steps(int level) { return kBlockSteps << (2 * level); }

// Brings db (opened read_write) to `target` (default: the current version). Also switches the
// file to WAL and sets synchronous=NORMAL. Tests pass an older target to build old files.
void migrate(Db& db, int64_t target = kSchemaVersion);

// For read-only connections: throws unless the file's version is one this build reads.
void check_schema_readable(Db& db);

}  // namespace moe::store
