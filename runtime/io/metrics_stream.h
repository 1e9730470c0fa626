#pragma once
// The metrics stream (docs/architecture.md 3.3) on stdout or a file: one line per record, written
// by core/metrics' codec and flushed after every record, so a reader (the studio's ingestor) sees
// each step as it happens.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "metrics_records.h"

namespace moe::rt {

using metrics::CheckpointRecord;
using metrics::ExpertLoadRecord;
using metrics::RunEndRecord;
using metrics::RunStartRecord;
using metrics::StepRecord;

class MetricsStream {
 public:
  // "" or "-": stdout; otherwise the file is created (truncated).
  explicit MetricsStream(const std::string& target);
  ~MetricsStream();
  MetricsStream(const MetricsStream&) = delete;
  MetricsStream& operator=(const MetricsStream&) = delete;

  // started_at is filled in when empty.
  void run_start(RunStartRecord r);
  void step(const StepRecord& r) { write(r); }
  void expert_load(int64_t step, int64_t layer, const std::vector<int64_t>& counts, const std::vector<int64_t>& dropped);
  void checkpoint(int64_t step, const std::string& path);
  // `r` carries the extensions (peak memory, final validation); status, steps, reason and the end
  // time are set here.
  void run_end(const std::string& status, int64_t steps, const std::string& reason = "", RunEndRecord r = {});
  // Any record: one line, flushed. Throws moe::Error if the stream cannot be written.
  void write(const metrics::Record& record);

 private:
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::string target_;
};

}  // namespace moe::rt
