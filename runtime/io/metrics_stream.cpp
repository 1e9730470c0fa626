// JSON Lines writer for the metrics stream (see metrics_stream.h).
#include "metrics_stream.h"

#include <cerrno>
#include <cstring>

#include "error.h"
#include "record_codec.h"

namespace moe::rt {

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

void MetricsStream::write(const metrics::Record& record) {
  const std::string line = metrics::to_line(record) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw Error("metrics stream " + target_ + ": write failed (" + std::strerror(errno) + ")");
}

void MetricsStream::run_start(RunStartRecord r) {
  if (r.started_at.empty()) r.started_at = metrics::iso8601_now();
  write(r);
}

void MetricsStream::expert_load(int64_t step, int64_t layer, const std::vector<int64_t>& counts,
                                const std::vector<int64_t>& dropped) {
  write(ExpertLoadRecord{step, layer, counts, dropped, {}});
}

void MetricsStream::checkpoint(int64_t step, const std::string& path) { write(CheckpointRecord{step, path, {}}); }

void MetricsStream::run_end(const std::string& status, int64_t steps, const std::string& reason, RunEndRecord r) {
  r.status = status;
  r.steps = steps;
  r.ended_at = metrics::iso8601_now();
  if (!reason.empty()) r.reason = reason;
  write(r);
}

}  // namespace moe::rt
