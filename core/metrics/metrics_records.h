#pragma once
// The records of the metrics stream (docs/architecture.md 3.3) as typed structs: the one definition
// the runtime writes, the launcher reads, the store ingests and exports, and the synthetic stream
// generates. Required fields are plain members; optional ones (the contract's and our extensions)
// are optionals or vectors left empty when absent; fields nobody here knows travel as `extra`, a
// JSON object text, so an export writes back the record it read. record_codec.h turns a record
// into one line and one line into a record; no other file spells a key.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace moe::metrics {

inline constexpr int64_t kStreamSchema = 1;

struct RunStartRecord {
  int64_t schema = kStreamSchema;
  std::string spec = "{}";   // the resolved spec, JSON text
  int64_t world_size = 0;
  std::string backend;
  std::string started_at;    // ISO 8601
  std::string hosts = "[]";  // JSON array text
  // Extensions: what the runtime ran with.
  std::optional<int64_t> params, train_bytes, val_bytes, gemm_threads, resumed_at;
  std::optional<std::string> data, gemm, device, dtype;
  std::string extra;  // other fields, JSON object text, or empty
};

struct StepRecord {
  int64_t step = 0;
  double loss = 0, aux_loss = 0, z_loss = 0, lr = 0;
  int64_t tokens = 0;
  double step_ms = 0, tokens_per_s = 0;
  // Extensions: the global gradient norm before clipping; a validation at this step.
  std::optional<double> grad_norm, val_loss;
  std::vector<int64_t> val_rank_bytes;  // bytes each data-parallel rank evaluated
  std::string extra;
};

struct ExpertLoadRecord {
  int64_t step = 0, layer = 0;
  std::vector<int64_t> counts, dropped;
  std::string extra;
};

struct A2aRecord {
  int64_t step = 0, layer = 0;
  std::string phase, pass;  // dispatch|combine, fwd|bwd
  std::vector<double> rank_us;
  std::vector<int64_t> rank_bytes;
  std::optional<int64_t> intra_bytes, inter_bytes;
  // Extensions, one entry per rank: the byte split by node, the time waited (overlap), the
  // hierarchical exchange's routing metadata, the counts exchange that opens a dispatch.
  std::vector<int64_t> rank_intra_bytes, rank_inter_bytes, rank_meta_bytes;
  std::vector<double> rank_exposed_us, rank_counts_us;
  std::vector<int64_t> rank_rows;  // dispatch fwd: rows each rank's experts computed (its load)
  // Dispatch fwd of a sampled step (placement.stats_every): [rank × slot] rows each rank sent to each
  // expert slot, its own included — what the trace simulator replays (docs/placement.md).
  std::vector<int64_t> rank_slot_rows;
  std::string extra;
};

struct CheckpointRecord {
  int64_t step = 0;
  std::string path;
  std::string extra;
};

struct RunEndRecord {
  std::string status;  // completed|failed|cancelled
  int64_t steps = 0;
  std::optional<std::string> reason;
  // Extensions: the end time; the launcher's account of a failed rank; the final validation; the
  // peak memory.
  std::optional<std::string> ended_at;
  std::optional<int64_t> failed_rank, signal, exit_status, peak_rss_bytes;
  std::optional<double> val_loss;
  std::vector<int64_t> val_rank_bytes;
  std::string extra;
};

// Extension (docs/placement.md): the expert placement in force from `step` on (0: the start) for
// one MoE layer — the logical expert of each physical slot, slot s on EP rank s / slots_per_rank.
// A re-placement during training adds what moving the experts cost.
struct PlacementRecord {
  int64_t step = 0, layer = 0, slots_per_rank = 0;
  std::vector<int64_t> phy_to_log;
  std::optional<int64_t> migrated_bytes;
  std::optional<double> migrate_ms;
  std::string extra;
};

// Extension (docs/placement.md): how often two experts of one MoE layer were chosen by the same
// token in the step's global batch (sampled every placement.stats_every steps). `pairs` holds
// triples (a, b, tokens) with a < b: for each expert its `top` most co-selected partners, so the
// record stays small at 256 experts.
struct CoselectionRecord {
  int64_t step = 0, layer = 0, experts = 0;
  std::vector<int64_t> pairs;
  std::string extra;
};

// A `log` record ({"type":"log","level":"warning","message":"…"}) or a note made by the ingestor
// (kind "malformed" for a bad line, "warning" for an out-of-order record).
struct EventRecord {
  std::string kind;
  int64_t line = 0;  // line number in the stream, 0 when not from a line
  std::string message;
};

using Record = std::variant<RunStartRecord, StepRecord, ExpertLoadRecord, A2aRecord, CheckpointRecord,
                            RunEndRecord, EventRecord, PlacementRecord, CoselectionRecord>;

}  // namespace moe::metrics
