// Other engines' runs as metrics streams (external_run.h).
#include "external_run.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "error.h"
#include "job_spec.h"
#include "megatron_log_reader.h"
#include "record_codec.h"
#include "tfevents_reader.h"

namespace moe::store {
namespace {

using metrics::StepRecord;

// TensorBoard tags and the step field each fills. Megatron-LM (training.py) writes 'lm loss',
// 'learning-rate', 'grad-norm', 'iteration-time' (seconds), 'load_balancing_loss', 'z_loss' and
// 'lm loss validation'; DeepSpeed's monitor writes 'Train/Samples/train_loss' and
// 'Train/Samples/lr' (its x axis is samples, not steps); torch users often write 'train/loss'.
enum class Field { loss, lr, grad_norm, step_seconds, aux_loss, z_loss, val_loss };
const std::vector<std::pair<std::string, Field>>& tag_fields() {
  static const std::vector<std::pair<std::string, Field>> tags = {
      {"lm loss", Field::loss},
      {"Train/Samples/train_loss", Field::loss},
      {"train/loss", Field::loss},
      {"loss", Field::loss},
      {"learning-rate", Field::lr},
      {"Train/Samples/lr", Field::lr},
      {"train/lr", Field::lr},
      {"lr", Field::lr},
      {"grad-norm", Field::grad_norm},
      {"train/grad_norm", Field::grad_norm},
      {"iteration-time", Field::step_seconds},
      {"load_balancing_loss", Field::aux_loss},
      {"z_loss", Field::z_loss},
      {"lm loss validation", Field::val_loss},
      {"val/loss", Field::val_loss},
  };
  return tags;
}

void set_field(StepRecord& s, Field f, double v) {
  switch (f) {
    case Field::loss: s.loss = v; break;
    case Field::lr: s.lr = v; break;
    case Field::grad_norm: s.grad_norm = v; break;
    case Field::step_seconds: s.step_ms = v * 1000.0; break;
    case Field::aux_loss: s.aux_loss = v; break;
    case Field::z_loss: s.z_loss = v; break;
    case Field::val_loss: s.val_loss = v; break;
  }
}

ExternalRun from_tensorboard(const std::string& path) {
  const TfEventsScalars tb = read_tfevents_scalars(path);
  ExternalRun run{"tensorboard", path, {}, {}, {}, 1};
  // The first tag found for each field wins (a file holding both 'lm loss' and 'loss' keeps 'lm loss').
  std::map<Field, std::string> chosen;
  for (const auto& [tag, field] : tag_fields())
    if (tb.series.count(tag) && !chosen.count(field)) chosen[field] = tag;
  if (!chosen.count(Field::loss))
    throw Error(path + ": no training loss among the event file's " + std::to_string(tb.series.size()) +
                " scalar tag(s) (looked for 'lm loss', 'Train/Samples/train_loss', 'train/loss', 'loss')");
  std::map<int64_t, StepRecord> by_step;
  for (const ScalarPoint& p : tb.series.at(chosen[Field::loss])) {
    StepRecord& s = by_step[p.step];
    s.step = p.step;
    s.loss = p.value;
  }
  for (const auto& [field, tag] : chosen) {
    if (field == Field::loss) continue;
    for (const ScalarPoint& p : tb.series.at(tag)) {
      auto it = by_step.find(p.step);
      if (it != by_step.end()) set_field(it->second, field, p.value);
    }
  }
  std::set<std::string> used;
  for (const auto& [_, tag] : chosen) used.insert(tag);
  for (const auto& [tag, points] : tb.series)
    if (!used.count(tag)) run.unmapped.push_back(tag + " (" + std::to_string(points.size()) + " points)");
  if (tb.skipped_values > 0) run.unmapped.push_back(std::to_string(tb.skipped_values) + " non-scalar value(s)");
  if (tb.truncated) run.unmapped.push_back("the last record is cut off (the file was still being written)");
  for (auto& [_, s] : by_step) run.steps.push_back(s);
  return run;
}

ExternalRun from_megatron_log(const std::string& path) {
  MegatronLog log = read_megatron_log(path);
  if (log.steps.empty()) throw Error(path + ": no Megatron 'iteration N/M | … | lm loss: …' line");
  ExternalRun run{"megatron-log", path, std::move(log.steps), std::move(log.arguments), std::move(log.unmapped), 1};
  const auto world = run.settings.find("world_size");
  if (world != run.settings.end()) run.world_size = std::max<int64_t>(1, std::atoll(world->second.c_str()));
  return run;
}

}  // namespace

std::string detect_import_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::string head(64 * 1024, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (looks_like_tfevents(head)) return "tensorboard";
  if (looks_like_megatron_log(head)) return "megatron-log";
  return "stream";
}

ExternalRun read_external_run(const std::string& path, const std::string& format) {
  if (format == "tensorboard") return from_tensorboard(path);
  if (format == "megatron-log") return from_megatron_log(path);
  throw Error("unknown import format '" + format + "' (auto, stream, tensorboard or megatron-log)");
}

std::string external_run_stream(const ExternalRun& run, const std::string& name) {
  nlohmann::json spec = {{"name", name}, {"train", {{"steps", run.steps.empty() ? 0 : run.steps.back().step}}}};
  spec["imported"] = {{"format", run.format}, {"source", run.source}};
  if (!run.settings.empty()) spec["imported"]["settings"] = run.settings;
  metrics::RunStartRecord start;
  start.spec = spec.dump();
  start.world_size = std::max<int64_t>(1, run.world_size);
  start.backend = run.format == "megatron-log" ? "megatron" : "tensorboard";
  start.started_at = metrics::iso8601_now();
  std::string out;
  metrics::append_line(out, start);
  for (const StepRecord& s : run.steps) metrics::append_line(out, s);
  metrics::RunEndRecord end;
  end.status = "completed";
  end.steps = run.steps.empty() ? 0 : run.steps.back().step;
  metrics::append_line(out, end);
  return out;
}

}  // namespace moe::store
