// Schema versions of the run store. Each entry of kMigrations takes the file from version i to i+1.
// Append new migrations; never edit an old one (files in the field were made by it).
#include "store_schema.h"

#include <string>

#include "a2a_summary.h"
#include "rollup_backfill.h"
#include "error.h"

namespace moe::store {

namespace {

// Version 1: runs and the raw records of the metrics stream (docs/architecture.md 3.3).
// Tables holding many rows per run are WITHOUT ROWID, clustered on their natural key, so a range of
// steps of one run (and, for expert_load, one layer) is one contiguous read.
const char* kV1 = R"sql(
CREATE TABLE runs(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  spec TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'created',
  created_at TEXT NOT NULL,
  started_at TEXT,
  ended_at TEXT,
  hosts TEXT NOT NULL DEFAULT '[]',
  world_size INTEGER,
  backend TEXT,
  stream_schema INTEGER,
  start_extra TEXT,
  end_steps INTEGER,
  end_reason TEXT,
  end_extra TEXT,
  has_run_start INTEGER NOT NULL DEFAULT 0,
  notes TEXT NOT NULL DEFAULT ''
);
CREATE TABLE run_tags(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY(run_id, tag)) WITHOUT ROWID;
CREATE TABLE steps(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  loss REAL, aux_loss REAL, z_loss REAL, lr REAL, tokens INTEGER, step_ms REAL, tokens_per_s REAL,
  extra TEXT,
  PRIMARY KEY(run_id, step)) WITHOUT ROWID;
CREATE TABLE expert_load(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  step INTEGER NOT NULL,
  n_experts INTEGER NOT NULL,
  total INTEGER NOT NULL,
  max_count INTEGER NOT NULL,
  dropped_total INTEGER NOT NULL,
  cv REAL NOT NULL,
  counts BLOB NOT NULL,
  dropped BLOB NOT NULL,
  extra TEXT,
  PRIMARY KEY(run_id, layer, step)) WITHOUT ROWID;
CREATE TABLE a2a(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  layer INTEGER NOT NULL,
  phase TEXT NOT NULL,
  pass TEXT NOT NULL,
  rank_us BLOB NOT NULL,
  rank_bytes BLOB NOT NULL,
  intra_bytes INTEGER,
  inter_bytes INTEGER,
  extra TEXT,
  PRIMARY KEY(run_id, step, layer, phase, pass)) WITHOUT ROWID;
CREATE TABLE checkpoints(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  path TEXT NOT NULL,
  extra TEXT,
  PRIMARY KEY(run_id, step, path)) WITHOUT ROWID;
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  line INTEGER,
  message TEXT NOT NULL);
CREATE INDEX events_by_run ON events(run_id, id);
)sql";

// Version 2: the latest-values summary per run, so a list of a thousand runs is one small read.
// Backfilled from the rows already there.
const char* kV2 = R"sql(
CREATE TABLE run_summary(
  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  n_steps INTEGER NOT NULL DEFAULT 0,
  last_step INTEGER,
  last_loss REAL,
  last_tokens_per_s REAL,
  total_tokens INTEGER NOT NULL DEFAULT 0,
  n_layers INTEGER NOT NULL DEFAULT 0,
  n_experts INTEGER NOT NULL DEFAULT 0,
  routed_total INTEGER NOT NULL DEFAULT 0,
  dropped_total INTEGER NOT NULL DEFAULT 0,
  last_imbalance REAL,
  malformed_lines INTEGER NOT NULL DEFAULT 0);
INSERT INTO run_summary(run_id, n_steps, last_step, last_loss, last_tokens_per_s, total_tokens,
                        n_layers, n_experts, routed_total, dropped_total, malformed_lines)
SELECT r.id,
  (SELECT count(*) FROM steps s WHERE s.run_id = r.id),
  (SELECT max(step) FROM steps s WHERE s.run_id = r.id),
  (SELECT loss FROM steps s WHERE s.run_id = r.id ORDER BY step DESC LIMIT 1),
  (SELECT tokens_per_s FROM steps s WHERE s.run_id = r.id ORDER BY step DESC LIMIT 1),
  (SELECT coalesce(sum(tokens), 0) FROM steps s WHERE s.run_id = r.id),
  (SELECT count(DISTINCT layer) FROM expert_load e WHERE e.run_id = r.id),
  (SELECT coalesce(max(n_experts), 0) FROM expert_load e WHERE e.run_id = r.id),
  (SELECT coalesce(sum(total), 0) FROM expert_load e WHERE e.run_id = r.id),
  (SELECT coalesce(sum(dropped_total), 0) FROM expert_load e WHERE e.run_id = r.id),
  (SELECT count(*) FROM events v WHERE v.run_id = r.id AND v.kind = 'malformed')
FROM runs r;
)sql";

// Version 3: rollups over blocks of kBlockSteps steps, so the dashboard's bucketed queries over
// 100,000 steps read a sixteenth of the rows. A block row exists only for a block the stream has
// moved past (complete); queries read raw rows for everything else, so files without rollups
// (migrated from version 2) give the same answers, only slower.
const char* kV3 = R"sql(
CREATE TABLE expert_load_blocks(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  block INTEGER NOT NULL,
  n INTEGER NOT NULL,
  counts BLOB NOT NULL,
  dropped BLOB NOT NULL,
  PRIMARY KEY(run_id, layer, block)) WITHOUT ROWID;
CREATE TABLE step_blocks(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  block INTEGER NOT NULL,
  n INTEGER NOT NULL,
  last_step INTEGER NOT NULL,
  stats BLOB NOT NULL,
  PRIMARY KEY(run_id, block)) WITHOUT ROWID;
)sql";

// Version 4: runs launched on remote nodes (`moe run --hosts`): the job's id and hosts, and the byte
// offset of rank 0's metrics file up to which records are stored (written in the same transaction
// as those records, so a reattach resumes there: nothing lost, nothing twice).
const char* kV4 = R"sql(
CREATE TABLE remote_runs(
  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  job_id TEXT NOT NULL,
  hostfile TEXT NOT NULL,
  master_port INTEGER NOT NULL,
  metrics_offset INTEGER NOT NULL DEFAULT 0,
  log_offsets TEXT NOT NULL DEFAULT '[]');
)sql";

// Version 5: who records a local run (`moe run` without --hosts, and the studio's Run, which runs
// it): the recording process and the runtime's process group, each as (pid, start time in clock
// ticks since boot) on (host, boot id), so a later `moe runs` or studio can tell that the recorder
// died without recording the run's end (kill -9, power loss) and mark the run failed
// (run_writers.h).
const char* kV5 = R"sql(
CREATE TABLE run_writers(
  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  host TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  writer_pid INTEGER NOT NULL,
  writer_start INTEGER NOT NULL,
  runtime_pid INTEGER,
  runtime_start INTEGER);
)sql";

// Version 6: a local run is a job too (a job directory beside the store, watched like a node's), so
// remote_runs holds its resume point as well: local_root is the directory holding its job directory
// (NULL for a run on remote hosts). run_writers.detached: the recorder stopped watching on purpose
// (detach); the job goes on and a reattach continues it, so the reaper leaves such a run alone.
// run_writers.recorder: which program records (`moe run`, the studio), for the reaper's reason.
const char* kV6 = R"sql(
ALTER TABLE remote_runs ADD COLUMN local_root TEXT;
ALTER TABLE run_writers ADD COLUMN detached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE run_writers ADD COLUMN recorder TEXT;
)sql";

// Version 7 (issue 14): the placement records — the expert placement in force per MoE layer from a
// step on (phy_to_log as an int blob), and the sampled co-selection counts (pairs as (a, b,
// tokens) triples, an int blob). Both are small next to expert_load: E ints per layer per
// re-placement, and at most E·top triples per layer per sample.
const char* kV7 = R"sql(
CREATE TABLE placements(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  step INTEGER NOT NULL,
  slots_per_rank INTEGER NOT NULL,
  phy_to_log BLOB NOT NULL,
  extra TEXT,
  PRIMARY KEY(run_id, layer, step)) WITHOUT ROWID;
CREATE TABLE coselection(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  step INTEGER NOT NULL,
  n_experts INTEGER NOT NULL,
  pairs BLOB NOT NULL,
  extra TEXT,
  PRIMARY KEY(run_id, layer, step)) WITHOUT ROWID;
)sql";

// Version 8 (issue 16): per-step all-to-all sums per (phase, pass) and rank (a2a_summary.h); the
// per-rank records of table a2a are kept only where detail is wanted from now on. Backfilled from
// the a2a rows already there (in C++: the arrays are blobs).
const char* kV8 = R"sql(
CREATE TABLE a2a_steps(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  phase TEXT NOT NULL,
  pass TEXT NOT NULL,
  records INTEGER NOT NULL,
  sum_ns BLOB NOT NULL,
  min_ns BLOB NOT NULL,
  max_ns BLOB NOT NULL,
  sum_bytes BLOB NOT NULL,
  intra_bytes INTEGER,
  inter_bytes INTEGER,
  PRIMARY KEY(run_id, step, phase, pass)) WITHOUT ROWID;
)sql";

// Version 9 (issue 16): coarser rollups, blocks of 64, 256 and 1024 steps (levels 1–3; level 0 is
// the 16-step blocks of version 3), each the sum (or min/max/last) of its four children, so a
// bucket of any width is read as a few whole blocks. Not backfilled here (version 10 does it):
// queries fall back to the finer levels and raw rows, with the same answers.
const char* kV9 = R"sql(
CREATE TABLE expert_load_levels(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  layer INTEGER NOT NULL,
  level INTEGER NOT NULL,
  block INTEGER NOT NULL,
  n INTEGER NOT NULL,
  counts BLOB NOT NULL,
  dropped BLOB NOT NULL,
  PRIMARY KEY(run_id, layer, level, block)) WITHOUT ROWID;
CREATE TABLE step_levels(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  level INTEGER NOT NULL,
  block INTEGER NOT NULL,
  n INTEGER NOT NULL,
  last_step INTEGER NOT NULL,
  stats BLOB NOT NULL,
  PRIMARY KEY(run_id, level, block)) WITHOUT ROWID;
)sql";

// Version 10: no new table. Files migrated to 9 got empty coarser rollups; the migration step
// (rollup_backfill.h) builds them from the 16-step blocks, so old runs zoom as fast as new ones.
const char* kV10 = "SELECT 1;";

const char* const kMigrations[] = {kV1, kV2, kV3, kV4, kV5, kV6, kV7, kV8, kV9, kV10};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

void refuse_newer(Db& db, int64_t version) {
  throw Error(db.path() + ": the run store has schema version " + std::to_string(version) +
              ", newer than this build reads (" + std::to_string(kSchemaVersion) +
              "); use a newer moe");
}

}  // namespace

void migrate(Db& db, int64_t target) {
  int64_t version = db.pragma_int("user_version");
  if (version > kSchemaVersion) refuse_newer(db, version);
  if (version == 0) {
    // Larger pages suit the blob rows; only effective before the first table exists.
    db.exec("PRAGMA page_size=16384", "setting the page size");
  }
  db.exec("PRAGMA journal_mode=WAL", "switching to WAL");
  db.exec("PRAGMA synchronous=NORMAL", "setting synchronous=NORMAL");
  if (version >= target) return;
  WriteTxn txn(db);
  // Re-read inside the write lock: another process may have migrated meanwhile.
  version = db.pragma_int("user_version");
  if (version > kSchemaVersion) refuse_newer(db, version);
  for (int64_t v = version; v < target; ++v) {
    db.exec(kMigrations[v], ("migrating the schema to version " + std::to_string(v + 1)).c_str());
    if (v + 1 == 8) backfill_a2a_steps(db);
    if (v + 1 == 10) backfill_rollup_levels(db);
  }
  if (version < target) db.exec("PRAGMA user_version=" + std::to_string(target), "setting user_version");
  txn.commit();
}

void check_schema_readable(Db& db) {
  int64_t version = db.pragma_int("user_version");
  if (version > kSchemaVersion) refuse_newer(db, version);
  if (version < kSchemaVersion) {
    throw Error(db.path() + ": the run store has schema version " + std::to_string(version) +
                (version == 0 ? " (not a run store)" : "") +
                "; open it once read-write to migrate it");
  }
}

}  // namespace moe::store
