#pragma once
// Runs trained by other engines, imported into the run store so Compare can show them beside
// MoE Studio's own (`moe runs import FILE --format …`, docs/run-store.md): a TensorBoard event file
// (Megatron-LM's and DeepSpeed's scalars, or anything torch.utils.tensorboard wrote) or a
// Megatron-LM training log. The run becomes a metrics stream — run_start, one step record per logged
// iteration, run_end — so it is validated and stored like any other.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metrics_records.h"

namespace moe::store {

struct ExternalRun {
  std::string format;  // "tensorboard" | "megatron-log"
  std::string source;  // the file read
  std::vector<metrics::StepRecord> steps;  // in step order, one per step with a training loss
  std::map<std::string, std::string> settings;  // what the log says of the job (seq_length, …)
  std::vector<std::string> unmapped;  // tags or fields seen but not stored, for the user to know
  int64_t world_size = 1;
};

// "auto" picks tensorboard for an event file, megatron-log for a text log with Megatron's
// iteration lines, else "stream" (MoE Studio's own metrics stream, imported as it is).
std::string detect_import_format(const std::string& path);

// Reads FILE in FORMAT (tensorboard | megatron-log). Throws moe::Error naming the file and, for a
// log, the line; a file with no training loss at all is an error too.
ExternalRun read_external_run(const std::string& path, const std::string& format);

// The run as metrics stream lines (run_start … run_end), ready for the Ingestor.
std::string external_run_stream(const ExternalRun& run, const std::string& name);

}  // namespace moe::store
