#pragma once
// Queries of the run store for the studio, the CLI and tests. Plain structs in, plain structs out
// (vectors of doubles and ints), no Qt, no SQL for the caller to write.
//
// Threading: a RunReader owns one read-only SQLite connection and is used by one thread at a time.
// The studio creates one on its worker thread and keeps it; many readers (threads or processes)
// can read while one Ingestor writes — WAL gives each query a consistent snapshot, and a reader
// never blocks the writer. Each method that runs several SELECTs runs them in one read transaction.
//
// Steps: bucketed queries take an inclusive step window [first, last] (last < 0: up to the latest
// step) and a number of buckets N (pixel columns). Bucket b covers steps
// [first + b·w, first + (b+1)·w) with w = (last − first + 1) / N as a real number; when w ≥ 16 the
// inner edges are rounded to the nearest multiple of 16 steps, so each bucket but the window's two
// ends is made of whole rollup blocks (the results carry each bucket's first step). When the window
// holds fewer than N steps, each bucket is one step. Downsampling keeps min, max and last of each
// bucket (never a random sample), so spikes survive. Rollups of 16, 64, 256 and 1024 steps let a
// bucket be read as a few rows: a 100,000-step window in 1,000 buckets decodes 3,832 rows.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pipeline_figures.h"
#include "sqlite_db.h"

namespace moe::store {

struct RunInfo {
  int64_t id = 0;
  std::string name, status, created_at, started_at, ended_at, backend, notes, end_reason;
  int64_t world_size = 0;
  std::vector<std::string> tags;
  std::string hosts_json = "[]";
  // Latest-values summary, maintained by the ingestor.
  int64_t n_steps = 0;
  int64_t last_step = -1;
  double last_loss = 0, last_tokens_per_s = 0;  // NaN when no step yet (tokens/s also when unknown: 0)
  int64_t total_tokens = 0;
  int64_t n_layers = 0, n_experts = 0;
  int64_t routed_total = 0, dropped_total = 0;
  double drop_rate = 0;       // dropped_total / routed_total
  double last_imbalance = 0;  // mean over layers of max/mean expert load at the latest step; NaN if none
  int64_t malformed_lines = 0;
};

enum class Metric { loss, aux_loss, z_loss, lr, tokens, step_ms, tokens_per_s };
const char* metric_name(Metric m);
Metric metric_from_name(const std::string& name);  // throws moe::Error listing the names

struct StepRow {
  int64_t step = 0;
  double loss = 0, aux_loss = 0, z_loss = 0, lr = 0;
  int64_t tokens = 0;
  double step_ms = 0, tokens_per_s = 0;
};

struct ExpertLoadRow {
  int64_t step = 0, layer = 0;
  std::vector<int64_t> counts, dropped;
};

struct A2aRow {
  int64_t step = 0, layer = 0;
  std::string phase, pass;
  std::vector<double> rank_us;
  std::vector<int64_t> rank_bytes;
};

// One downsampled series: one entry per non-empty bucket.
struct Series {
  std::vector<double> step;  // the bucket's last step that has data (x of `last`)
  std::vector<double> min, max, last;
};

// Several runs on one shared bucket grid; an empty bucket holds NaN.
struct AlignedSeries {
  std::vector<double> bucket_first_step;  // N entries: the first step of each bucket
  std::vector<int64_t> runs;
  std::vector<std::vector<double>> min, max, last;  // [run][bucket]
};

// Expert load of one layer, experts × step buckets, row-major: value(e, b) = values[e * n_buckets + b].
struct Heatmap {
  int64_t n_experts = 0, n_buckets = 0;
  std::vector<double> bucket_first_step;  // n_buckets
  std::vector<int64_t> steps_in_bucket;   // steps with data in each bucket
  std::vector<double> values;             // mean tokens per step (counts, or dropped with dropped=true)
};

// Mean expert load per step over a step window, layers × experts, row-major.
struct LayerExpertMatrix {
  int64_t n_layers = 0, n_experts = 0;
  std::vector<int64_t> layers;  // the layer of each row
  std::vector<double> values;   // [row * n_experts + e]
  int64_t first_step = 0, last_step = 0;
};

// All-to-all time of one step per rank, summed over its layers, phases and passes.
struct A2aStepTotal {
  int64_t step = 0;
  std::vector<double> rank_us;
};

// Per-rank all-to-all statistics over a step window (one phase and pass, all or one layer).
// All layers: exact, from every step's per-rank sums (a2a_steps). One layer: from the per-rank
// records kept (table a2a: the run's first 100 steps, every 100th, anomalies; docs/run-store.md).
struct A2aRankStats {
  int64_t samples = 0;  // a2a records used
  std::vector<double> mean_us, min_us, max_us;  // per rank
  std::vector<double> mean_bytes;               // per rank
};

// Load-balance figures of one (layer, step).
struct LoadBalance {
  int64_t layer = 0, step = 0;
  double max_over_mean = 0;  // max expert load / mean expert load (1 = perfect)
  double drop_rate = 0;      // dropped / routed tokens
  double cv = 0;             // coefficient of variation of the expert loads
};

// Per-layer averages over a run (for `moe runs show`).
struct LayerBalance {
  int64_t layer = 0, steps = 0;
  double mean_max_over_mean = 0, last_max_over_mean = 0, drop_rate = 0, mean_cv = 0;
};

struct EventRow {
  int64_t id = 0;
  std::string at, kind, message;
  int64_t line = 0;
};

struct ConfigDiffRow {
  std::string key;                  // dotted path, arrays as [i]: cluster.nodes[0].host
  std::vector<std::string> values;  // one per run, JSON text; "(absent)" when the run lacks it
};

class RunReader {
 public:
  explicit RunReader(const std::string& path);

  // Runs, newest first, with their summaries: one query, fast for thousands of runs.
  std::vector<RunInfo> list_runs();
  RunInfo run(int64_t id);                 // throws moe::Error when there is no such run
  int64_t find_run(const std::string& id_or_name);  // an id, or the newest run with that name
  std::string spec_json(int64_t run);
  // The latest step record's integer extension `key` (e.g. "tp_bytes": the payload of the
  // tensor-parallel all-reduces, docs/parallelism.md); nullopt when no step carries it.
  std::optional<int64_t> last_step_extension(int64_t run, const std::string& key);
  // The latest step's gradient-sum payload per group of rank 0 (the step extension grad_bytes:
  // dense_dp, expert_dp, tp, tied_embedding), groups in name order; empty when that step has none.
  std::vector<std::pair<std::string, int64_t>> last_gradient_bytes(int64_t run);
  // The latest step that carries pipeline figures (a pp > 1 run), parsed; nullopt when none does.
  std::optional<PipelineFigures> last_pipeline_step(int64_t run);

  // Incremental reads for live views: rows with step > after_step, at most `limit`, ascending.
  std::vector<StepRow> steps_after(int64_t run, int64_t after_step, int64_t limit = 100000);
  std::vector<ExpertLoadRow> expert_load_after(int64_t run, int64_t layer, int64_t after_step,
                                               int64_t limit = 100000);
  // The per-rank records kept (see A2aRankStats), not every step's.
  std::vector<A2aRow> a2a_after(int64_t run, int64_t after_step, int64_t limit = 100000);
  // Every step's per-rank total, for steps > after_step (at most `limit` steps), ascending.
  std::vector<A2aStepTotal> a2a_step_totals_after(int64_t run, int64_t after_step, int64_t limit = 100000);
  std::vector<EventRow> events(int64_t run, int64_t after_id = 0, int64_t limit = 1000);

  Series series(int64_t run, Metric metric, int64_t first, int64_t last, int64_t buckets);
  AlignedSeries aligned_series(const std::vector<int64_t>& runs, Metric metric, int64_t first,
                               int64_t last, int64_t buckets);

  Heatmap expert_heatmap(int64_t run, int64_t layer, int64_t first, int64_t last, int64_t buckets,
                         bool dropped = false);
  LayerExpertMatrix layer_expert_matrix(int64_t run, int64_t first, int64_t last);
  A2aRankStats a2a_rank_stats(int64_t run, const std::string& phase, const std::string& pass,
                              int64_t layer, int64_t first, int64_t last);  // layer < 0: all

  std::vector<LoadBalance> load_balance(int64_t run, int64_t layer, int64_t first, int64_t last);
  Series load_balance_series(int64_t run, int64_t layer, int64_t first, int64_t last, int64_t buckets);
  std::vector<LayerBalance> layer_balance(int64_t run);
  // Drop rate (dropped / routed tokens) of one layer per bucket, from the same rollups as the
  // heatmap: the bucket's totals, so min = max = last = the bucket's rate. Live's history of a
  // long run, where one point per step and layer would be millions.
  Series drop_rate_series(int64_t run, int64_t layer, int64_t first, int64_t last, int64_t buckets);

  std::vector<ConfigDiffRow> config_diff(const std::vector<int64_t>& runs);

  Db& db() { return db_; }

 private:
  int64_t resolve_last(int64_t run, int64_t last, std::string_view table, int64_t layer = -1);
  // Calls fold(bucket, min, max, last, last_step) for rollup blocks and raw rows in step order.
  using StepFold = std::function<void(int64_t, double, double, double, int64_t)>;
  void fold_steps(int64_t run, Metric metric, const void* grid, const StepFold& fold);
  Db db_;
};

// Flattens JSON text into sorted (dotted path, JSON value text) pairs; objects recurse, arrays use [i].
std::vector<std::pair<std::string, std::string>> flatten_json(const std::string& json_text);

}  // namespace moe::store
