// Parsing the pipeline extensions of a step record (see pipeline_figures.h).
#include "pipeline_figures.h"

#include <algorithm>

namespace moe::store {

double PipelineFigures::idle_share() const {
  const size_t stages = std::min(busy_ms.size(), idle_ms.size());
  double step = 0;  // the longest stage's schedule: the others wait for it before the step goes on
  for (size_t s = 0; s < stages; ++s) step = std::max(step, busy_ms[s] + idle_ms[s]);
  if (step <= 0) return 0.0;
  double sum = 0;
  for (size_t s = 0; s < stages; ++s) sum += (step - busy_ms[s]) / step;
  return sum / static_cast<double>(stages);
}

namespace {
template <typename T>
bool read_numbers(const nlohmann::json& extra, const char* key, std::vector<T>& out) {
  const auto it = extra.find(key);
  if (it == extra.end() || !it->is_array()) return false;
  for (const auto& v : *it) {
    if (!v.is_number()) return false;
    out.push_back(v.get<T>());
  }
  return true;
}
}  // namespace

std::optional<PipelineFigures> pipeline_figures(int64_t step, const nlohmann::json& extra) {
  if (!extra.is_object()) return std::nullopt;
  PipelineFigures f;
  f.step = step;
  if (!read_numbers(extra, "pp_busy_ms", f.busy_ms) || !read_numbers(extra, "pp_idle_ms", f.idle_ms) ||
      !read_numbers(extra, "pp_bytes", f.bytes))
    return std::nullopt;
  const size_t stages = f.busy_ms.size();
  if (stages == 0 || f.idle_ms.size() != stages || f.bytes.size() != stages) return std::nullopt;
  const auto timeline = extra.find("pp_timeline");
  if (timeline == extra.end()) return f;  // the ops are optional
  if (!timeline->is_array() || timeline->size() != stages) return std::nullopt;
  for (const auto& stage : *timeline) {
    if (!stage.is_array()) return std::nullopt;
    auto& ops = f.ops.emplace_back();
    for (const auto& op : stage) {
      if (!op.is_array() || (op.size() != 4 && op.size() != 5)) return std::nullopt;
      for (const auto& v : op)
        if (!v.is_number()) return std::nullopt;
      const int kind = op[0].get<int>();
      if (kind < PipelineOpTime::forward || kind > PipelineOpTime::backward) return std::nullopt;
      ops.push_back({kind, op[1].get<int64_t>(), op[2].get<double>(), op[3].get<double>(), op.size() == 5 ? op[4].get<int64_t>() : 0});
    }
  }
  return f;
}

}  // namespace moe::store
