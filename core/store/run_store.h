#pragma once
// The run store's write side: one read-write connection to a SQLite file (WAL, migrated on open).
// It creates and edits runs (status, tags, notes, delete) and writes batches of stream records in
// one transaction each. The Ingestor (ingestor.h) is the usual caller of write_batch; queries live
// in RunReader (run_reader.h). A RunStore is not thread-safe: one per thread.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <span>
#include <string>
#include <vector>

#include "a2a_summary.h"
#include "sqlite_db.h"
#include "store_records.h"
#include "store_schema.h"

namespace moe::store {

struct StoreOptions {
  // Caps the file at this many pages (0: no cap). Used by tests to simulate a full disk.
  int64_t max_page_count = 0;
  // All-to-all detail (a2a_summary.h): every step keeps its per-rank sums (a2a_steps); the full
  // per-rank records (a2a) only for the first a2a_detail_every steps, every a2a_detail_every-th step
  // after, records with extra fields, and records whose slowest rank took more than
  // a2a_anomaly_ratio × the median rank's time. a2a_detail_every ≤ 0 keeps every record.
  int64_t a2a_detail_every = 100;
  double a2a_anomaly_ratio = 2.0;
};

// What the writer remembers about a run between batches.
// Rollup accumulators (schema version 3): sums of the expert loads of one layer, and min/max/last
// of each step metric, over the current block of kBlockSteps steps. A block's row is written when
// the stream moves past it; a duplicate or out-of-order step spoils the block (raw rows serve it).
struct LoadBlockAcc {
  int64_t block = -1, n = 0, last_step = -1;
  bool valid = false;
  std::vector<int64_t> counts, dropped;
};
struct StepBlockAcc {
  int64_t block = -1, n = 0, last_step = -1;
  bool valid = false;
  double stats[21] = {};  // per metric (Metric order): min, max, last
};

// What the writer remembers about a run between batches.
struct RunWriteState {
  bool has_run_start = false;
  bool has_run_end = false;
  bool warned_no_start = false;
  bool first_blocks = true;      // the first block of a session may hold older rows: never rolled up
  int64_t malformed_events = 0;  // already stored as events (capped, the count is not)
  std::vector<LoadBlockAcc> load_blocks;  // per layer
  StepBlockAcc step_block;
  // Coarser rollups (schema 9): the open block of levels 1.. (64, 256, 1024 steps), per layer for
  // the loads; each sums its four children as they close, and is written when it closes whole.
  std::vector<std::array<LoadBlockAcc, kRollupLevels - 1>> load_levels;
  std::array<StepBlockAcc, kRollupLevels - 1> step_levels;
  // The all-to-all sums of the step being written, per (phase, pass), and the (layer, phase, pass)
  // records already in them (a record delivered twice is summed once).
  int64_t a2a_step = -1;
  bool a2a_dirty = false;
  std::map<std::pair<std::string, std::string>, A2aStepSum> a2a_sums;
  std::set<std::tuple<int64_t, std::string, std::string>> a2a_seen;
  // Set by the Ingestor (feed_line): the source byte offset covered by the batch being written;
  // write_batch stores it in remote_runs.metrics_offset inside the batch's transaction, then clears it.
  std::optional<uint64_t> source_offset;
};

// Totals of one committed batch, handed to IngestOptions::on_commit.
struct BatchResult {
  int64_t records = 0;
  int64_t last_step = -1;  // highest step of a `step` record in the batch, -1 if none
};

class RunStore {
 public:
  explicit RunStore(const std::string& path, StoreOptions options = {});
  ~RunStore();

  const std::string& path() const { return db_.path(); }
  Db& db() { return db_; }

  // A new run row (status "created") and its summary row; returns the run id.
  int64_t create_run(const std::string& name, const std::string& spec_json = "{}");
  bool run_exists(int64_t run);
  // Sets status (and ended_at when it is final: completed, failed, cancelled, interrupted).
  void set_status(int64_t run, const std::string& status, const std::optional<std::string>& reason = {});
  void add_tag(int64_t run, const std::string& tag);
  void remove_tag(int64_t run, const std::string& tag);
  void set_notes(int64_t run, const std::string& notes);
  void rename(int64_t run, const std::string& name);
  void delete_run(int64_t run);  // the run and all its rows

  RunWriteState load_write_state(int64_t run);
  // Writes the records of one batch in one transaction, in order, and updates the run's summary.
  // Malformed lines arrive as EventRecord{kind "malformed"}.
  BatchResult write_batch(int64_t run, std::span<const Record> records, RunWriteState& state);

 private:
  struct Statements;
  void require_run(int64_t run);
  void roll_load(int64_t run, const ExpertLoadRecord& r, RunWriteState& state);
  void roll_step(int64_t run, const StepRecord& r, RunWriteState& state);
  void close_load_child(int64_t run, int64_t layer, int level, const LoadBlockAcc& child, bool whole, RunWriteState& state);
  void close_step_child(int64_t run, int level, const StepBlockAcc& child, bool whole, RunWriteState& state);
  void drop_parents(int64_t run, int64_t layer, int64_t block, RunWriteState& state);
  void add_a2a(int64_t run, const A2aRecord& r, const std::string& extra, RunWriteState& state);
  void flush_a2a(int64_t run, RunWriteState& state);
  Db db_;
  StoreOptions options_;
  std::unique_ptr<Statements> st_;
};

// ISO 8601 UTC time of now, e.g. 2026-11-29T14:03:05Z.
std::string utc_now();
// True for completed, failed, cancelled and interrupted.
bool is_final_status(const std::string& status);

}  // namespace moe::store
