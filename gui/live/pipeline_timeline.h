#pragma once
// PipelineTimeline: Live's view of a pipeline-parallel run's latest step (parallel.pp > 1): one
// row per stage, each 1F1B op as a bar from its start to its end (forward, recomputed forward,
// backward, each with its micro-batch), the gaps between them the bubble. The title compares the
// measured idle share with the cost model's for the run (its stages' own times and recomputed
// forwards) and the 1F1B formula for equal stages, (pp − 1)/(m + pp − 1). It draws the recorded
// figures (core/store/pipeline_figures.h) and nothing else.
#include <optional>

#include <QString>

#include "pipeline_figures.h"

class QCustomPlot;

namespace moe::gui {

class PipelineTimeline {
 public:
  explicit PipelineTimeline(QCustomPlot* plot);
  // `planned`: the cost model's idle share for the run (core's planned_idle_share), when known.
  void show(const store::PipelineFigures& f, std::optional<double> planned = std::nullopt);
  void clear();
  // "pipeline step 12: idle 23.4 % of the step; plan 21.0 % (1F1B with 2 stages, 4 micro-batches,
  // equal stages: 20.0 %)", or "".
  QString text() const { return text_; }
  int bars() const { return bars_; }

 private:
  QCustomPlot* plot_;
  QString text_;
  int bars_ = 0;
};

}  // namespace moe::gui
