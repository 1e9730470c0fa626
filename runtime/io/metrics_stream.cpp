// JSON Lines writer for the metrics stream (see metrics_stream.h).
#include "metrics_stream.h"

#include <cerrno>
#include <cstring>
#include <ctime>

#include "error.h"

namespace moe::rt {

std::string iso8601_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

MetricsStream::MetricsStream(const std::string& target) : target_(target.empty() ? "-" : target) {
  if (target_ == "-") {
    file_ = stdout;
  } else {
    file_ = std::fopen(target_.c_str(), "w");
    if (!file_) throw Error("--metrics " + target_ + ": cannot create (" + std::strerror(errno) + ")");
    owned_ = true;
  }
}

MetricsStream::~MetricsStream() {
  if (owned_) std::fclose(file_);
}

void MetricsStream::write(const nlohmann::json& record) {
  // Non-finite numbers would be written as null and break the contract's types: callers keep
  // them out (a NaN loss ends the run with run_end failed instead of a step record).
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw Error("metrics stream " + target_ + ": write failed (" + std::strerror(errno) + ")");
}

void MetricsStream::run_start(const nlohmann::json& resolved_spec, int64_t world_size, const std::string& backend,
                              const std::vector<std::string>& hosts, const nlohmann::json& extra) {
  nlohmann::json r = extra;
  r["type"] = "run_start";
  r["schema"] = 1;
  r["spec"] = resolved_spec;
  r["world_size"] = world_size;
  r["backend"] = backend;
  r["started_at"] = iso8601_now();
  r["hosts"] = hosts;
  write(r);
}

void MetricsStream::step(const StepRecord& s) {
  nlohmann::json r = s.extra;
  r["type"] = "step";
  r["step"] = s.step;
  r["loss"] = s.loss;
  r["aux_loss"] = s.aux_loss;
  r["z_loss"] = s.z_loss;
  r["lr"] = s.lr;
  r["tokens"] = s.tokens;
  r["step_ms"] = s.step_ms;
  r["tokens_per_s"] = s.tokens_per_s;
  write(r);
}

void MetricsStream::expert_load(int64_t step, int64_t layer, const std::vector<int64_t>& counts,
                                const std::vector<int64_t>& dropped) {
  write({{"type", "expert_load"}, {"step", step}, {"layer", layer}, {"counts", counts}, {"dropped", dropped}});
}

void MetricsStream::checkpoint(int64_t step, const std::string& path) {
  write({{"type", "checkpoint"}, {"step", step}, {"path", path}});
}

void MetricsStream::run_end(const std::string& status, int64_t steps, const std::string& reason,
                            const nlohmann::json& extra) {
  nlohmann::json r = extra;
  r["type"] = "run_end";
  r["status"] = status;
  r["steps"] = steps;
  r["ended_at"] = iso8601_now();
  if (!reason.empty()) r["reason"] = reason;
  write(r);
}

}  // namespace moe::rt
