// EstimatesView: QCustomPlot stacked bars from moe::Plan; it only draws what core computed.
#include "design/estimates_view.h"

#include <QGridLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <cmath>
#include "common/qcp.h"

#include "common/theme.h"

namespace moe::gui {

QString formatBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (std::abs(b) >= 1024 && u < 5) b /= 1024, ++u;
  return QString("%1 %2").arg(b, 0, 'f', u == 0 ? 0 : (b < 10 ? 2 : 1)).arg(units[u]);
}

QString formatCount(double n) {
  const char* units[] = {"", " K", " M", " B", " T"};
  int u = 0;
  while (std::abs(n) >= 1000 && u < 4) n /= 1000, ++u;
  return QString("%1%2").arg(n, 0, 'f', u == 0 ? 0 : (n < 10 ? 2 : 1)).arg(units[u]);
}

QString formatSeconds(double s) {
  if (s >= 1) return QString("%1 s").arg(s, 0, 'f', 2);
  if (s >= 1e-3) return QString("%1 ms").arg(s * 1e3, 0, 'f', 1);
  return QString("%1 µs").arg(s * 1e6, 0, 'f', 1);
}

static QCustomPlot* makeBarPlot(const QString& title) {
  auto* plot = new QCustomPlot;
  plot->setMinimumHeight(120);
  plot->plotLayout()->insertRow(0);
  auto* t = new QCPTextElement(plot, title, QFont(plot->font().family(), plot->font().pointSize(), QFont::Bold));
  t->setTextColor(plot->palette().color(QPalette::WindowText));
  plot->plotLayout()->addElement(0, 0, t);
  plot->yAxis->setTicks(false);
  plot->legend->setVisible(true);
  plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot->legend->setWrap(3);
  plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  // The legend goes under the bar, not over it.
  plot->plotLayout()->addElement(2, 0, plot->legend);
  plot->plotLayout()->setRowStretchFactor(2, 0.001);
  stylePlot(plot);
  plot->setInteractions({});
  return plot;
}

EstimatesView::EstimatesView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  summary_ = new QLabel;
  summary_->setObjectName("estimatesSummary");
  summary_->setTextFormat(Qt::RichText);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  summary_->setWordWrap(true);
  memory_ = makeBarPlot("Memory per GPU");
  time_ = makeBarPlot("Step time per GPU");
  ratio_ = makeBarPlot("Communication / computation");
  ratio_->legend->setVisible(false);
  layout->addWidget(summary_);
  layout->addWidget(memory_, 1);
  layout->addWidget(time_, 1);
  layout->addWidget(ratio_, 1);
}

void EstimatesView::drawStack(QCustomPlot* plot, const std::vector<std::pair<QString, double>>& parts,
                              double limit, const QString& limit_label, const QString& unit) {
  plot->clearPlottables();
  plot->clearItems();
  QCPBars* below = nullptr;
  double total = 0;
  int i = 0;
  for (const auto& [name, value] : parts) {
    auto* bars = new QCPBars(plot->yAxis, plot->xAxis);  // horizontal: key on the y axis
    bars->setName(QString("%1 %2").arg(name).arg(value, 0, 'f', value < 10 ? 2 : 1));
    bars->setWidth(0.6);
    QColor c = categoryColor(i++, plot->palette());
    bars->setBrush(c);
    bars->setPen(QPen(c.darker(130)));
    bars->setData({1.0}, {value});
    if (below) bars->moveAbove(below);
    below = bars;
    total += value;
  }
  double right = std::max(total, limit) * 1.08;
  if (right <= 0) right = 1;
  plot->xAxis->setRange(0, right);
  plot->yAxis->setRange(0.4, 1.6);
  plot->xAxis->setLabel(unit);
  if (limit > 0) {
    auto* line = new QCPItemStraightLine(plot);
    line->point1->setCoords(limit, 0);
    line->point2->setCoords(limit, 1);
    QColor lc = total > limit ? errorColor(plot) : plot->palette().color(QPalette::WindowText);
    line->setPen(QPen(lc, 2, Qt::DashLine));
    auto* text = new QCPItemText(plot);
    text->setText(limit_label);
    text->setColor(lc);
    text->position->setCoords(limit, 1.45);
    text->setPositionAlignment(Qt::AlignRight | Qt::AlignVCenter);
    text->setPadding(QMargins(0, 0, 4, 0));
  }
  plot->replot(QCustomPlot::rpQueuedReplot);
}

void EstimatesView::setBaseline(const std::optional<Plan>& baseline, const QString& label) {
  baseline_ = baseline;
  baseline_label_ = label;
  setPlan(plan_, why_not_);
}

void EstimatesView::setPlan(const std::optional<Plan>& plan, const QString& why_not) {
  plan_ = plan;
  why_not_ = why_not;
  setEnabled(plan.has_value());
  if (!plan) {
    summary_->setText(QString("<i>No estimates: %1</i>").arg(why_not.toHtmlEscaped()));
    return;
  }
  const Plan& p = *plan;
  constexpr double GiB = 1024.0 * 1024 * 1024;
  const auto& m = p.memory;
  drawStack(memory_,
            {{"weights", m.weights / GiB}, {"grads", m.gradients / GiB}, {"optimizer", m.optimizer / GiB},
             {"activations", m.activations / GiB}, {"logits", m.logits / GiB}, {"a2a buffers", m.a2a_buffers / GiB}},
            m.device / GiB, QString("%1 capacity").arg(QString::fromStdString(p.hardware)), "GiB per GPU");
  const auto& t = p.time;
  drawStack(time_,
            {{"compute", t.compute * 1e3}, {"a2a (exposed)", t.a2a_exposed * 1e3}, {"TP", t.tp * 1e3},
             {"DP", t.dp * 1e3}, {"PP p2p", t.pp_p2p_exposed * 1e3}, {"bubble", t.bubble * 1e3}},
            0, {}, "ms per optimizer step");
  drawStack(ratio_, {{"comm / compute", t.comm_ratio * 100}}, kCommRatioTarget * 100, "30 % target", "% of compute time");
  QColor ratio_colour = t.comm_ok ? okColor(this) : errorColor(this);
  QColor mem_colour = m.fraction > 1 ? errorColor(this) : m.fraction > kMemoryWarnFraction ? warningColor(this) : okColor(this);
  const auto& a = p.a2a;
  summary_->setText(QString(
      "<table cellspacing=4>"
      "<tr><td>parameters</td><td><b>%1</b> total · <b>%2</b> active per token</td></tr>"
      "<tr><td>memory per GPU</td><td><b style='color:%3'>%4</b> of %5 (%6 %)</td></tr>"
      "<tr><td>all-to-all per layer·step</td><td><b>%7</b> intra-node · <b>%8</b> inter-node (%9)</td></tr>"
      "<tr><td>step time</td><td><b>%10</b> · %11 tokens/s · MFU %12 %</td></tr>"
      "<tr><td>comm / compute</td><td><b style='color:%13'>%14 %</b> (target &lt; 30 %)</td></tr>"
      "</table>")
      .arg(formatCount(p.params.total), formatCount(p.params.active))
      .arg(mem_colour.name(), formatBytes(m.peak), formatBytes(m.device))
      .arg(m.fraction * 100, 0, 'f', 1)
      .arg(formatBytes(a.hierarchical ? a.hier_intra : a.flat_intra),
           formatBytes(a.hierarchical ? a.hier_inter : a.flat_inter),
           QString(a.hierarchical ? "hierarchical" : "flat") +
               (a.kept_share < 0.9995 ? QString(", %1 % of copies kept").arg(a.kept_share * 100, 0, 'f', 1) : QString()))
      .arg(formatSeconds(t.step), formatCount(t.tokens_per_s))
      .arg(t.mfu * 100, 0, 'f', 1)
      .arg(ratio_colour.name())
      .arg(t.comm_ratio * 100, 0, 'f', 1));
  if (baseline_) {
    const Plan& b = *baseline_;
    auto delta = [](double now, double was) {
      if (was == 0) return QString();
      double pct = (now / was - 1) * 100;
      return QString(" (%1%2 %)").arg(pct >= 0 ? "+" : "").arg(pct, 0, 'f', 1);
    };
    summary_->setText(summary_->text() + QString(
        "<p><b>vs baseline %9</b>: params %1 · memory %2%3 · a2a inter-node %4%5 · step %6%7 · comm/compute %8 %</p>")
        .arg(formatCount(b.params.total))
        .arg(formatBytes(b.memory.peak), delta(m.peak, b.memory.peak))
        .arg(formatBytes(b.a2a.hierarchical ? b.a2a.hier_inter : b.a2a.flat_inter),
             delta(a.hierarchical ? a.hier_inter : a.flat_inter, b.a2a.hierarchical ? b.a2a.hier_inter : b.a2a.flat_inter))
        .arg(formatSeconds(b.time.step), delta(t.step, b.time.step))
        .arg(b.time.comm_ratio * 100, 0, 'f', 1)
        .arg(baseline_label_.toHtmlEscaped()));  // last: a '%' in a spec name is text, not a placeholder
  }
}

QString EstimatesView::summaryText() const { return summary_->text(); }

}  // namespace moe::gui
