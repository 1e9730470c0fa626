#pragma once
// Megatron-LM's training log (the text pretrain_gpt.py prints): the argument block
// ("  seq_length ........ 4096") and one line per logged iteration
// (" [date] iteration 10/ 500 | consumed samples: … | elapsed time per iteration (ms): … |
// learning rate: … | global batch size: … | lm loss: … | load_balancing_loss: … | grad norm: … |"),
// plus " validation loss at iteration N | lm loss value: … |" lines. Field names as
// megatron/training/training.py's training_log and evaluate_and_print_results print them.
#include <map>
#include <string>
#include <vector>

#include "metrics_records.h"

namespace moe::store {

struct MegatronLog {
  std::vector<metrics::StepRecord> steps;       // one per iteration line with a loss, in order
  std::map<std::string, std::string> arguments;  // the printed argument block
  std::vector<std::string> unmapped;             // fields seen but not stored
};

// Throws moe::Error "FILE:LINE: …" for an iteration line whose numbers do not parse.
MegatronLog read_megatron_log(const std::string& path);
MegatronLog parse_megatron_log(const std::string& text, const std::string& origin);

// True when the text holds a Megatron iteration line: how a log is recognised.
bool looks_like_megatron_log(const std::string& text);

}  // namespace moe::store
