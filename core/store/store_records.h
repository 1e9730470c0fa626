#pragma once
// The records of the metrics stream (ARCHITECTURE.md 3.3) as typed structs, and the parser of one
// line into one of them. Fields outside the contract are kept as JSON text (`extra`), so an export
// writes back the same record. A line that breaks the contract becomes a Malformed with the reason.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace moe::store {

struct RunStartRecord {
  int64_t schema = 1;
  std::string spec;   // the resolved spec, JSON text
  int64_t world_size = 0;
  std::string backend;
  std::string started_at;
  std::string hosts;  // JSON array text
  std::string extra;  // other fields, JSON object text, or empty
};

struct StepRecord {
  int64_t step = 0;
  double loss = 0, aux_loss = 0, z_loss = 0, lr = 0;
  int64_t tokens = 0;
  double step_ms = 0, tokens_per_s = 0;
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
  std::string extra;
};

// A `log` record (an extension: {"type":"log","level":"warning","message":"…"}) or a note made by
// the ingestor (kind "malformed" for a bad line, "warning" for an out-of-order record).
struct EventRecord {
  std::string kind;
  int64_t line = 0;  // line number in the stream, 0 when not from a line
  std::string message;
};

struct Malformed {
  std::string reason;
};
struct Ignored {};  // an unknown record type or a blank line

using Record = std::variant<RunStartRecord, StepRecord, ExpertLoadRecord, A2aRecord, CheckpointRecord,
                            RunEndRecord, EventRecord>;
using ParsedLine = std::variant<Record, Malformed, Ignored>;

ParsedLine parse_line(std::string_view line);

// The first `max_bytes` of text with invalid UTF-8 and control bytes replaced (for messages).
std::string printable_prefix(std::string_view text, size_t max_bytes = 120);

}  // namespace moe::store
