#pragma once
// The metrics stream (docs/architecture.md 3.3): one JSON object per line on stdout or a file, flushed
// after every record so a reader (the studio's ingestor) sees each step as it happens.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::rt {

struct StepRecord {
  int64_t step = 0;
  double loss = 0, aux_loss = 0, z_loss = 0, lr = 0;
  int64_t tokens = 0;
  double step_ms = 0;
  double tokens_per_s = 0;
  nlohmann::json extra = nlohmann::json::object();  // e.g. grad_norm, val_loss
};

class MetricsStream {
 public:
  // "" or "-": stdout; otherwise the file is created (truncated).
  explicit MetricsStream(const std::string& target);
  ~MetricsStream();
  MetricsStream(const MetricsStream&) = delete;
  MetricsStream& operator=(const MetricsStream&) = delete;

  void run_start(const nlohmann::json& resolved_spec, int64_t world_size, const std::string& backend,
                 const std::vector<std::string>& hosts, const nlohmann::json& extra = nlohmann::json::object());
  void step(const StepRecord& r);
  void expert_load(int64_t step, int64_t layer, const std::vector<int64_t>& counts, const std::vector<int64_t>& dropped);
  void checkpoint(int64_t step, const std::string& path);
  void run_end(const std::string& status, int64_t steps, const std::string& reason = "",
               const nlohmann::json& extra = nlohmann::json::object());
  // Any record: one line, flushed. Throws moe::Error if the stream cannot be written.
  void write(const nlohmann::json& record);

 private:
  std::FILE* file_ = nullptr;
  bool owned_ = false;
  std::string target_;
};

std::string iso8601_now();  // "2026-11-29T14:03:07Z"

}  // namespace moe::rt
