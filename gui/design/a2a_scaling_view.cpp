// A2aScalingView (a2a_scaling_view.h): core's simulator on a worker thread, drawn on a log-log plot.
#include "design/a2a_scaling_view.h"

#include <QDoubleSpinBox>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QLabel>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <memory>

#include "common/qcp.h"
#include "common/theme.h"
#include "hardware_profile.h"

namespace moe::gui {

A2aScalingView::A2aScalingView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 0);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel("Skew"));
  skew_ = new QDoubleSpinBox;
  skew_->setObjectName("a2aSkew");
  skew_->setRange(0.0, 3.0);
  skew_->setSingleStep(0.1);
  skew_->setValue(0.5);
  skew_->setToolTip("Routing skew of the second pair of curves: expert popularity ∝ rank^−skew, hot experts "
                    "at random places (0: uniform)");
  row->addWidget(skew_);
  status_ = new QLabel;
  status_->setObjectName("a2aStatus");
  status_->setWordWrap(true);
  row->addWidget(status_, 1);
  layout->addLayout(row);
  plot_ = new QCustomPlot;
  plot_->setObjectName("a2aPlot");
  plot_->setMinimumHeight(160);
  plot_->xAxis->setScaleType(QCPAxis::stLogarithmic);
  auto xt = QSharedPointer<QCPAxisTickerLog>::create();
  xt->setLogBase(2);
  plot_->xAxis->setTicker(xt);
  plot_->xAxis->setNumberFormat("f");
  plot_->xAxis->setNumberPrecision(0);
  plot_->xAxis->setLabel("GPUs");
  plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
  plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
  plot_->yAxis->setLabel("dispatch (ms)");
  plot_->legend->setVisible(true);
  plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot_->legend->setWrap(4);
  // The legend goes under the plot, not over the curves.
  plot_->plotLayout()->addElement(1, 0, plot_->legend);
  plot_->plotLayout()->setRowStretchFactor(1, 0.001);
  stylePlot(plot_);
  layout->addWidget(plot_, 1);

  debounce_ = new QTimer(this);
  debounce_->setSingleShot(true);
  debounce_->setInterval(250);
  connect(debounce_, &QTimer::timeout, this, &A2aScalingView::start);
  watcher_ = new QFutureWatcher<std::vector<A2aSimResult>>(this);
  connect(watcher_, &QFutureWatcher<std::vector<A2aSimResult>>::finished, this, [this] {
    running_ = false;
    if (watcher_->property("generation").toUInt() != generation_) {  // the design changed meanwhile
      schedule();
      return;
    }
    results_ = watcher_->result();
    dirty_ = false;
    draw();
    Q_EMIT simulated();
  });
  connect(skew_, &QDoubleSpinBox::valueChanged, this, [this] {
    dirty_ = true;
    ++generation_;
    schedule();
  });
}

void A2aScalingView::setSpec(const JobSpec& spec, bool has_errors, const QString& first_error) {
  spec_ = spec;
  valid_ = !has_errors;
  dirty_ = true;
  ++generation_;
  if (!valid_) {
    status_->setText("Fix the design to simulate: " + first_error);
    results_.clear();
    plot_->clearGraphs();
    plot_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }
  schedule();
}

void A2aScalingView::setSkew(double skew) { skew_->setValue(skew); }

void A2aScalingView::showEvent(QShowEvent* e) {
  QWidget::showEvent(e);
  if (dirty_ && valid_) schedule();
}

void A2aScalingView::schedule() {
  if (valid_ && dirty_ && isVisible() && !running_) debounce_->start();
}

void A2aScalingView::start() {
  if (running_ || !valid_) return;
  std::shared_ptr<HardwareProfile> hw;
  try {
    hw = std::make_shared<HardwareProfile>(find_hardware(builtin_hardware_profiles(), spec_.cluster.hardware));
  } catch (const std::exception& e) {
    status_->setText(QString::fromUtf8(e.what()));
    return;
  }
  running_ = true;
  status_->setText("simulating 8 … 8192 GPUs…");
  watcher_->setProperty("generation", generation_);
  const JobSpec spec = spec_;
  const double skew = skew_->value();
  watcher_->setFuture(QtConcurrent::run([spec, hw, skew] { return simulate_a2a_sweep(spec, *hw, {0.0, skew}); }));
}

void A2aScalingView::draw() {
  plot_->clearGraphs();
  struct Curve {
    double skew;
    bool hierarchical;
    QString name;
  };
  const double skew = skew_->value();
  const QString s = QString::number(skew, 'g', 2);
  const Curve curves[] = {{0.0, false, "flat, uniform"},
                          {0.0, true, "hierarchical, uniform"},
                          {skew, false, "flat, skew " + s},
                          {skew, true, "hierarchical, skew " + s}};
  int i = 0;
  double max_load = 1;
  for (const Curve& c : curves) {
    QCPGraph* g = plot_->addGraph();
    g->setName(c.name);
    QPen pen(categoryColor(i / 2 * 2 + (c.hierarchical ? 1 : 0), palette()), 2);
    if (c.skew > 0) pen.setStyle(Qt::DashLine);
    g->setPen(pen);
    g->setScatterStyle(QCPScatterStyle::ssCircle);
    for (const A2aSimResult& r : results_)
      if (r.c.skew == c.skew && r.c.hierarchical == c.hierarchical) {
        g->addData(double(r.c.gpus), r.seconds * 1e3);
        max_load = std::max(max_load, r.load_max_over_mean);
      }
    ++i;
  }
  plot_->rescaleAxes();
  plot_->xAxis->setRange(6, 11000);
  plot_->replot(QCustomPlot::rpQueuedReplot);
  status_->setText(QString("EP grows to %1 experts, then stays; busiest GPU up to %2× the mean with skew %3 "
                           "(docs/cost-model.md §9)")
                       .arg(spec_.model.moe.num_experts)
                       .arg(max_load, 0, 'f', 1)
                       .arg(s));
}

}  // namespace moe::gui
