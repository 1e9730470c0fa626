// Live's pipeline timeline (see pipeline_timeline.h).
#include "live/pipeline_timeline.h"

#include <algorithm>

#include "common/qcp.h"
#include "common/theme.h"
#include "pipeline_schedule.h"

namespace moe::gui {

PipelineTimeline::PipelineTimeline(QCustomPlot* plot) : plot_(plot) {
  QSharedPointer<QCPAxisTickerFixed> stages(new QCPAxisTickerFixed);
  stages->setTickStep(1.0);
  stages->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  plot_->yAxis->setTicker(stages);
  plot_->yAxis->setRangeReversed(true);  // stage 0 on top, as in the papers' figures
}

void PipelineTimeline::clear() {
  plot_->clearItems();
  text_.clear();
  bars_ = 0;
}

void PipelineTimeline::show(const store::PipelineFigures& f, std::optional<double> planned) {
  clear();
  const char* names[] = {"F", "R", "B"};
  double end = 0;
  int64_t forwards = 0, chunks = 1;  // stage 0's forwards: micro-batches × chunks
  for (const auto& stage : f.ops)
    for (const store::PipelineOpTime& op : stage) chunks = std::max(chunks, op.chunk + 1);
  for (size_t s = 0; s < f.ops.size(); ++s)
    for (const store::PipelineOpTime& op : f.ops[s]) {
      auto* bar = new QCPItemRect(plot_);
      bar->topLeft->setCoords(op.start_ms, double(s) - 0.38);
      bar->bottomRight->setCoords(op.end_ms, double(s) + 0.38);
      QColor c = categoryColor(op.kind == store::PipelineOpTime::backward ? 2 : 0, plot_->palette());
      if (op.kind == store::PipelineOpTime::recompute) c = c.lighter(150);
      bar->setBrush(c);
      bar->setPen(QPen(c.darker(130)));
      auto* label = new QCPItemText(plot_);
      label->position->setCoords((op.start_ms + op.end_ms) / 2, double(s));
      // "F3", or with chunks (interleaved schedule) "F3c1": micro-batch 3's forward in chunk 1.
      label->setText(QString("%1%2").arg(names[op.kind]).arg(op.micro) + (chunks > 1 ? QString("c%1").arg(op.chunk) : QString()));
      label->setColor(Qt::white);
      label->setClipToAxisRect(true);
      end = std::max(end, op.end_ms);
      if (s == 0 && op.kind == store::PipelineOpTime::forward) ++forwards;
      ++bars_;
    }
  const int64_t stages = int64_t(f.busy_ms.size());
  text_ = QString("pipeline step %1: idle %2 % of the step").arg(f.step).arg(100 * f.idle_share(), 0, 'f', 1);
  if (planned) text_ += QString("; plan %1 %").arg(100 * *planned, 0, 'f', 1);
  const int64_t micro = forwards / chunks;
  if (micro > 0 && chunks == 1)
    text_ += QString(" (1F1B with %1 stages, %2 micro-batches, equal stages: %3 %)")
                 .arg(stages).arg(micro).arg(100 * bubble_fraction(stages, micro), 0, 'f', 1);
  else if (micro > 0)  // Narayanan et al.: the bubble shrinks with the chunks, (pp − 1)/(v·m + pp − 1)
    text_ += QString(" (interleaved 1F1B with %1 stages × %2 chunks, %3 micro-batches, equal stages: %4 %)")
                 .arg(stages).arg(chunks).arg(micro).arg(100 * bubble_fraction(stages, micro * chunks), 0, 'f', 1);
  static_cast<QCPTextElement*>(plot_->plotLayout()->element(0, 0))->setText("P" + text_.mid(1));  // "Pipeline step 8: …"
  plot_->xAxis->setRange(0, std::max(end, 1.0) * 1.02);
  plot_->yAxis->setRange(-0.6, double(stages) - 0.4);
}

}  // namespace moe::gui
