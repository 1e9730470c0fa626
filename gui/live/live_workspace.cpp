// LiveWorkspace: QCustomPlot views over the poller's incremental updates.
#include "live/live_workspace.h"

#include <QComboBox>
#include <QElapsedTimer>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QSlider>
#include <QSpinBox>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>
#include "common/qcp.h"

#include "common/plot_tools.h"
#include "common/theme.h"

namespace moe::gui {

double Ema::next(double y, double alpha) {
  if (alpha <= 0 || !std::isfinite(y)) return y;
  acc = alpha * acc + (1 - alpha) * y;
  weight = alpha * weight + (1 - alpha);
  return acc / weight;
}

QVector<double> emaSmooth(const QVector<double>& y, double alpha) {
  QVector<double> out(y.size());
  Ema ema;
  for (int i = 0; i < y.size(); ++i) out[i] = ema.next(y[i], alpha);
  return out;
}

namespace {
QCustomPlot* makePlot(const QString& name, const QString& title, const QString& x, const QString& y) {
  auto* plot = new QCustomPlot;
  plot->setObjectName(name);
  plot->setMinimumSize(260, 180);
  plot->plotLayout()->insertRow(0);
  QFont f = plot->font();
  f.setBold(true);
  auto* t = new QCPTextElement(plot, title, f);
  t->setTextColor(plot->palette().color(QPalette::WindowText));
  plot->plotLayout()->addElement(0, 0, t);
  plot->xAxis->setLabel(x);
  plot->yAxis->setLabel(y);
  stylePlot(plot);
  installPlotTools(plot);
  return plot;
}

// A centred note for an empty plot ("no all-to-all records: the run has one EP rank").
QCPItemText* makeEmptyNote(QCustomPlot* plot, const QString& text) {
  auto* note = new QCPItemText(plot);
  note->position->setType(QCPItemPosition::ptAxisRectRatio);
  note->position->setCoords(0.5, 0.5);
  note->setText(text);
  note->setColor(plot->palette().color(QPalette::PlaceholderText));
  return note;
}

QCPColorMap* makeColorMap(QCustomPlot* plot, const QString& value_name, const QString& scale_label) {
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  map->setName(value_name);
  map->setInterpolate(false);
  // Whole cells at the edges: a tight boundary would clip the outer rows and columns to half.
  map->setTightBoundary(false);
  auto* scale = new QCPColorScale(plot);
  plot->plotLayout()->addElement(1, 1, scale);
  scale->setType(QCPAxis::atRight);
  scale->axis()->setLabel(scale_label);
  const QPalette& p = plot->palette();
  scale->axis()->setTickLabelColor(p.color(QPalette::WindowText));
  scale->axis()->setLabelColor(p.color(QPalette::WindowText));
  scale->axis()->setBasePen(QPen(p.color(QPalette::WindowText)));
  scale->axis()->setTickPen(QPen(p.color(QPalette::WindowText)));
  map->setColorScale(scale);
  map->setGradient(QCPColorGradient::gpThermal);
  // Experts, layers and ranks are integers: ticks at whole numbers only.
  QSharedPointer<QCPAxisTickerFixed> integers(new QCPAxisTickerFixed);
  integers->setTickStep(1.0);
  integers->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  plot->yAxis->setTicker(integers);
  auto* margins = new QCPMarginGroup(plot);
  plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  scale->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  return map;
}
}  // namespace

LiveWorkspace::LiveWorkspace(StorePoller* poller, QWidget* parent) : QWidget(parent), poller_(poller) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel("Run"));
  run_combo_ = new QComboBox;
  run_combo_->setObjectName("liveRun");
  run_combo_->setMinimumContentsLength(28);
  run_combo_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  bar->addWidget(run_combo_);
  bar->addSpacing(12);
  bar->addWidget(new QLabel("Layer"));
  layer_ = new QSpinBox;
  layer_->setObjectName("liveLayer");
  layer_->setRange(0, 0);
  layer_->setToolTip("MoE layer shown in the steps × experts heatmap");
  bar->addWidget(layer_);
  bar->addSpacing(12);
  bar->addWidget(new QLabel("Smoothing"));
  ema_ = new QSlider(Qt::Horizontal);
  ema_->setObjectName("liveEma");
  ema_->setRange(0, 99);
  ema_->setValue(60);
  ema_->setMaximumWidth(160);
  ema_->setToolTip("EMA smoothing of the loss curves (0: raw)");
  ema_label_ = new QLabel("0.60");
  bar->addWidget(ema_);
  bar->addWidget(ema_label_);
  bar->addSpacing(12);
  info_ = new QLabel("No run yet: launch one from Run, or pick a recorded run.");
  info_->setObjectName("liveInfo");
  bar->addWidget(info_, 1);
  layout->addLayout(bar);

  heat_plot_ = makePlot("expert_load_heatmap", "Expert load (tokens per step)", "step", "expert");
  heat_map_ = makeColorMap(heat_plot_, "tokens", "tokens / step");
  latest_plot_ = makePlot("layers_experts_latest", "Layers × experts, latest window", "expert", "layer");
  latest_map_ = makeColorMap(latest_plot_, "tokens", "tokens / step");
  latest_plot_->xAxis->setTicker(latest_plot_->yAxis->ticker());
  drops_plot_ = makePlot("drops_per_layer", "Token drops per layer", "step", "dropped (% of routed)");
  a2a_plot_ = makePlot("a2a_per_rank", "All-to-all time per rank (latest window)", "rank", "µs per layer·step");
  a2a_steps_plot_ = makePlot("a2a_rank_step", "All-to-all time, rank × step", "step", "rank");
  a2a_map_ = makeColorMap(a2a_steps_plot_, "µs", "µs per step (all layers)");
  a2a_map_->setGradient(QCPColorGradient::gpHot);
  a2a_steps_empty_ = makeEmptyNote(a2a_steps_plot_, "no all-to-all records yet");
  loss_plot_ = makePlot("loss", "Loss", "step", "loss (nats)");
  loss_plot_->yAxis2->setVisible(true);
  loss_plot_->yAxis2->setLabel("aux / z loss");
  stylePlot(loss_plot_);
  loss_plot_->legend->setVisible(true);
  loss_plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  const char* names[] = {"loss", "loss (raw)", "aux loss", "z loss"};
  for (int i = 0; i < 4; ++i) {
    QCPGraph* g = loss_plot_->addGraph(loss_plot_->xAxis, i < 2 ? loss_plot_->yAxis : loss_plot_->yAxis2);
    g->setName(names[i]);
    QColor c = categoryColor(i == 1 ? 0 : i, palette());
    if (i == 1) c.setAlpha(70);
    g->setPen(QPen(c, i == 1 ? 1 : 2));
  }
  tps_plot_ = makePlot("tokens_per_s", "Throughput", "step", "tokens / s");
  tps_plot_->addGraph()->setName("tokens/s");
  tps_plot_->graph(0)->setPen(QPen(categoryColor(4, palette()), 2));
  drawWideCurvesBySegments(loss_plot_);
  drawWideCurvesBySegments(tps_plot_);

  pipeline_plot_ = makePlot("pipeline_timeline", "Pipeline", "ms since the step's schedule began", "stage");
  pipeline_plot_->setVisible(false);  // a pp > 1 run shows it
  pipeline_ = std::make_unique<PipelineTimeline>(pipeline_plot_);

  auto* grid = new QGridLayout;
  grid->addWidget(heat_plot_, 0, 0, 1, 2);
  grid->addWidget(latest_plot_, 0, 2);
  grid->addWidget(loss_plot_, 1, 0);
  grid->addWidget(drops_plot_, 1, 1);
  grid->addWidget(tps_plot_, 1, 2);
  grid->addWidget(a2a_plot_, 2, 0);
  grid->addWidget(a2a_steps_plot_, 2, 1, 1, 2);
  grid->addWidget(pipeline_plot_, 3, 0, 1, 3);
  for (int c = 0; c < 3; ++c) grid->setColumnStretch(c, 1);
  grid->setRowStretch(0, 5);
  grid->setRowStretch(1, 4);
  grid->setRowStretch(2, 4);
  layout->addLayout(grid, 1);

  connect(poller_, &StorePoller::liveUpdate, this, &LiveWorkspace::handleLiveUpdate);
  connect(poller_, &StorePoller::runsListed, this, &LiveWorkspace::handleRunsListed);
  connect(run_combo_, &QComboBox::activated, this, &LiveWorkspace::handleRunPicked);
  connect(layer_, &QSpinBox::valueChanged, this, &LiveWorkspace::handleLayerChanged);
  connect(ema_, &QSlider::valueChanged, this, [this](int v) {
    ema_label_->setText(QString::number(v / 100.0, 'f', 2));
    redrawCurves();
    loss_plot_->replot(QCustomPlot::rpQueuedReplot);
  });
}

QList<QCustomPlot*> LiveWorkspace::plots() const {
  return {heat_plot_, latest_plot_, loss_plot_, drops_plot_, tps_plot_, a2a_plot_, a2a_steps_plot_, pipeline_plot_};
}

int LiveWorkspace::heatmapColumns() const { return heat_columns_; }
int LiveWorkspace::heatmapExperts() const { return heat_experts_; }

double LiveWorkspace::lastReplotMs() const {
  double worst = 0;
  for (auto* p : plots()) worst = std::max(worst, p->replotTime());
  return worst;
}

void LiveWorkspace::setEma(double alpha) { ema_->setValue(int(std::lround(alpha * 100))); }

void LiveWorkspace::followRun(qint64 run_id) {
  run_id_ = run_id;
  poller_->follow(run_id, layer_->value());
  int i = comboIndexOf(run_id);
  if (i >= 0) run_combo_->setCurrentIndex(i);
  Q_EMIT runOpened(run_id);
}

void LiveWorkspace::followNewRunAfter(qint64 run_id) {
  run_id_ = -1;
  info_->setText("waiting for the run to start…");
  poller_->followNewRunAfter(run_id);
}

// The list comes with every poll that sees a run move; the combo is refilled only when its items
// change (refilling closes its open popup under the user's cursor).
void LiveWorkspace::handleRunsListed(const std::vector<store::RunInfo>& runs) {
  bool same = runs.size() == combo_runs_.size();
  for (size_t i = 0; same && i < runs.size(); ++i)
    same = std::get<0>(combo_runs_[i]) == runs[i].id && std::get<1>(combo_runs_[i]) == runs[i].name &&
           std::get<2>(combo_runs_[i]) == runs[i].status;
  if (!same) {
    filling_combo_ = true;
    QStringList items;  // added at once: 10,000 addItem calls took tens of ms
    combo_runs_.clear();
    for (const auto& r : runs) {
      items << QString("#%1 %2 (%3)").arg(r.id).arg(QString::fromStdString(r.name), QString::fromStdString(r.status));
      combo_runs_.emplace_back(r.id, r.name, r.status);
    }
    run_combo_->clear();
    run_combo_->addItems(items);
    run_combo_->setCurrentIndex(comboIndexOf(run_id_));
    filling_combo_ = false;
  }
  // Nothing followed yet: show the newest run, so opening the studio shows the last run at once.
  if (run_id_ < 0 && !runs.empty() && info_->text().startsWith("No run")) {
    run_id_ = runs.front().id;
    poller_->follow(run_id_, layer_->value());
    run_combo_->setCurrentIndex(0);
  }
}

int LiveWorkspace::comboIndexOf(qint64 run_id) const {
  for (size_t i = 0; i < combo_runs_.size(); ++i)
    if (std::get<0>(combo_runs_[i]) == run_id) return int(i);
  return -1;
}

void LiveWorkspace::handleRunPicked(int index) {
  if (filling_combo_ || index < 0) return;
  if (index < int(combo_runs_.size())) followRun(std::get<0>(combo_runs_[index]));
}

void LiveWorkspace::handleLayerChanged(int layer) {
  if (run_id_ >= 0) poller_->follow(run_id_, layer);
}

// "experts re-placed 3× · the last from step 16: 1.2 MiB moved in 4.1 ms" (placement.replace_every), or "".
QString LiveWorkspace::replacementLine(const std::vector<store::PlacementRow>& moves) {
  replacement_text_.clear();
  if (moves.empty()) return {};
  const store::PlacementRow& last = moves.back();
  replacement_text_ = QString("experts re-placed %1× · the last from step %2: %3 MiB moved in %4 ms")
                          .arg(QString::number(moves.size()), QString::number(last.step),
                               QString::number(double(last.migrated_bytes) / (1024.0 * 1024.0), 'f', 2),
                               QString::number(last.migrate_ms, 'f', 1));
  return " · " + replacement_text_;
}

// "tp collectives 1.00 MiB per step" (a tp run's latest step record: its activation all-reduces, or
// with sequence parallelism its all-gathers and reduce-scatters; docs/parallelism.md), or "".
QString LiveWorkspace::tensorParallelLine(const LiveUpdate& u) {
  if (u.reset) tp_text_.clear();
  if (u.tp_bytes)
    tp_text_ = "tp collectives " + QString::number(double(*u.tp_bytes) / (1024.0 * 1024.0), 'f', 2) + " MiB per step";
  if (u.tp_bytes && u.etp_bytes)
    tp_text_ += " (+ expert rows " + QString::number(double(*u.etp_bytes) / (1024.0 * 1024.0), 'f', 2) + " MiB)";
  return tp_text_.isEmpty() ? QString() : " · " + tp_text_;
}

// "gradient sums per step: dense_dp 0.80 MiB, expert_dp 1.50 MiB" (a multi-rank run's latest step
// record, rank 0's payload per group), or "".
QString LiveWorkspace::gradientLine(const LiveUpdate& u) {
  if (u.reset) grad_text_.clear();
  if (!u.grad_bytes.empty()) {
    QStringList groups;
    for (const auto& [group, bytes] : u.grad_bytes)
      groups << QString("%1 %2 MiB").arg(QString::fromStdString(group)).arg(double(bytes) / (1024.0 * 1024.0), 0, 'f', 2);
    grad_text_ = "gradient sums per step: " + groups.join(", ");
  }
  return grad_text_.isEmpty() ? QString() : " · " + grad_text_;
}

void LiveWorkspace::handleLiveUpdate(const LiveUpdate& u) {
  QElapsedTimer timer;
  timer.start();
  if (u.reset || u.run.id != run_id_) {
    step_x_.clear(), loss_.clear(), aux_.clear(), z_.clear(), tps_.clear();
    curves_alpha_ = -1;  // redraw the curves from the start
    a2a_total_.clear();
    drops_plot_->clearGraphs();
    heat_columns_ = heat_experts_ = 0;
    heat_cells_.clear();
    if (u.run.id != run_id_) {
      run_id_ = u.run.id;
      int i = comboIndexOf(run_id_);
      if (i >= 0) run_combo_->setCurrentIndex(i);
    }
  }
  status_ = QString::fromStdString(u.run.status);
  // Through raw pointers: QVector's checked append costs ~10 ms for a 100,000-step run's first update.
  const qsizetype n0 = step_x_.size(), n = qsizetype(u.steps.size());
  for (QVector<double>* v : {&step_x_, &loss_, &aux_, &z_, &tps_}) v->resize(n0 + n);
  double *x = step_x_.data() + n0, *loss = loss_.data() + n0, *aux = aux_.data() + n0, *z = z_.data() + n0,
         *tps = tps_.data() + n0;
  for (qsizetype i = 0; i < n; ++i) {
    const auto& s = u.steps[size_t(i)];
    x[i] = double(s.step), loss[i] = s.loss, aux[i] = s.aux_loss, z[i] = s.z_loss, tps[i] = s.tokens_per_s;
  }
  layer_->blockSignals(true);
  layer_->setRange(0, int(std::max<int64_t>(0, u.run.n_layers - 1)));
  layer_->blockSignals(false);
  // One arg() call: a chained .arg() after the name would rewrite a "%4" inside it.
  info_->setText(QString("#%1 <b>%2</b> · %3 · step %4%5 · %6 rank%7 · %8 tokens/s")
                     .arg(QString::number(u.run.id), QString::fromStdString(u.run.name).toHtmlEscaped(), status_,
                          QString::number(u.run.last_step),
                          u.planned_steps > 0 ? QString(" / %1").arg(u.planned_steps) : QString(),
                          QString::number(u.run.world_size), QString(u.run.world_size == 1 ? "" : "s"),
                          std::isfinite(u.run.last_tokens_per_s) ? QString::number(u.run.last_tokens_per_s, 'f', 0)
                                                                 : QString("–")) +
                   replacementLine(u.replacements) + tensorParallelLine(u) + gradientLine(u));

  // Steps × experts heatmap of the chosen layer. heat_cells_ mirrors the fold's columns; only the
  // changed columns are written into it and into the map, except when the column count changes
  // (QCPColorMapData::setSize clears the cells): then the map is refilled from the mirror.
  if (u.heat_experts > 0 && u.heat_columns > 0) {
    const int64_t E = u.heat_experts;
    heat_cells_.resize(size_t(u.heat_columns * E));
    std::copy(u.heat_values.begin(), u.heat_values.end(), heat_cells_.begin() + u.heat_from * E);
    auto* d = heat_map_->data();
    int64_t write_from = u.heat_from;
    if (d->keySize() != u.heat_columns || d->valueSize() != E) {
      d->setSize(int(u.heat_columns), int(E));
      write_from = 0;
    }
    for (int64_t c = write_from; c < u.heat_columns; ++c)
      for (int64_t e = 0; e < E; ++e) d->setCell(int(c), int(e), heat_cells_[size_t(c * E + e)]);
    // Cell c's centre is the middle of its steps.
    const double w = double(u.heat_width), origin = double(u.heat_origin);
    d->setRange(QCPRange(origin + (w - 1) / 2, origin + (double(u.heat_columns) - 1) * w + (w - 1) / 2),
                QCPRange(0, double(E - 1)));
    heat_columns_ = int(u.heat_columns);
    heat_experts_ = int(E);
    heat_map_->rescaleDataRange(true);
    // Whole cells: each column spans its steps, each row ±0.5 around its expert.
    heat_plot_->xAxis->setRange(origin - 0.5, origin + double(u.heat_columns) * w - 0.5);
    heat_plot_->yAxis->setRange(-0.5, double(E) - 0.5);
    static_cast<QCPTextElement*>(heat_plot_->plotLayout()->element(0, 0))
        ->setText(u.heat_width == 1 ? QString("Expert load of layer %1 (tokens per step)").arg(u.layer)
                                    : QString("Expert load of layer %1 (tokens per step, mean of %2 steps per column)")
                                          .arg(u.layer).arg(u.heat_width));
  }
  const auto& m = u.latest;
  if (m.n_layers > 0 && m.n_experts > 0) {
    latest_map_->data()->setSize(int(m.n_experts), int(m.n_layers));
    latest_map_->data()->setRange(QCPRange(0, double(m.n_experts - 1)), QCPRange(0, double(m.n_layers - 1)));
    for (int64_t l = 0; l < m.n_layers; ++l)
      for (int64_t e = 0; e < m.n_experts; ++e) latest_map_->data()->setCell(int(e), int(l), m.values[l * m.n_experts + e]);
    latest_map_->rescaleDataRange(true);
    latest_plot_->xAxis->setRange(-0.5, double(m.n_experts) - 0.5);
    latest_plot_->yAxis->setRange(-0.5, double(m.n_layers) - 0.5);
    static_cast<QCPTextElement*>(latest_plot_->plotLayout()->element(0, 0))
        ->setText(QString("Layers × experts, steps %1–%2").arg(m.first_step).arg(m.last_step));
  }
  // Drops: one line per layer (legend only when few).
  // Many layers (64 × thousands of steps): thin aliased lines, which the raster engine draws ~50×
  // faster than 1.5 px antialiased strokes that overlap each other.
  const bool many_layers = u.balance.size() > 8;
  // Few layers: 1.5 px antialiased lines of one point per step, by segments (as one path, 2 layers
  // × 40,000 steps took 0.7–0.9 s a replot).
  drawWideCurvesBySegments(drops_plot_, !many_layers);
  for (size_t l = 0; l < u.balance.size(); ++l) {
    while (drops_plot_->graphCount() <= int(l)) {
      QCPGraph* g = drops_plot_->addGraph();
      g->setName(QString("layer %1").arg(drops_plot_->graphCount() - 1));
      g->setPen(QPen(categoryColor(drops_plot_->graphCount() - 1, palette()), many_layers ? 1.0 : 1.5));
      g->setAntialiased(!many_layers);
      g->setAdaptiveSampling(true);
    }
    for (const auto& b : u.balance[l]) drops_plot_->graph(int(l))->addData(double(b.step), b.drop_rate * 100);
  }
  drops_plot_->legend->setVisible(drops_plot_->graphCount() > 0 && drops_plot_->graphCount() <= 8);
  drops_plot_->rescaleAxes();
  if (drops_plot_->yAxis->range().upper < 1) drops_plot_->yAxis->setRange(0, 1);

  for (const auto& a : u.a2a_total) a2a_total_.push_back(a);
  drawA2a(u);
  if (u.reset) pipeline_->clear();
  if (u.pipeline) pipeline_->show(*u.pipeline, u.planned_idle_share);
  pipeline_plot_->setVisible(!pipeline_->text().isEmpty());
  curves_stale_ = true;  // redrawn in its own event-loop turn, before the replots
  replotVisible();
  apply_ms_ = timer.nsecsElapsed() / 1e6;
  Q_EMIT updated();
}

// Hidden plots (another workspace in front) wait: showEvent replots them once.
void LiveWorkspace::replotVisible() {
  stale_ = !isVisible();
  if (stale_) return;
  // One plot per event-loop turn: the first update of a 20,000-step run redraws eight full plots,
  // ~30 ms together, which in one turn would hold back input and painting. The loss and
  // throughput curves are refilled first (curves_stale_).
  const bool idle = replot_queue_.isEmpty();
  for (auto* p : plots())
    if (!replot_queue_.contains(p)) replot_queue_.append(p);
  if (idle) QTimer::singleShot(0, this, &LiveWorkspace::replotNextQueued);
}

void LiveWorkspace::replotNextQueued() {
  if (curves_stale_) {  // 100,000 steps: ~10 ms to smooth and copy into the graphs
    curves_stale_ = false;
    redrawCurves();
    QTimer::singleShot(0, this, &LiveWorkspace::replotNextQueued);
    return;
  }
  if (replot_queue_.isEmpty()) return;
  replot_queue_.takeFirst()->replot(QCustomPlot::rpQueuedRefresh);
  if (!replot_queue_.isEmpty()) QTimer::singleShot(0, this, &LiveWorkspace::replotNextQueued);
}

void LiveWorkspace::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  if (stale_) replotVisible();
}

void LiveWorkspace::drawA2a(const LiveUpdate& u) {
  a2a_plot_->clearPlottables();
  a2a_plot_->clearItems();
  const char* names[] = {"dispatch fwd", "combine fwd", "dispatch bwd", "combine bwd"};
  size_t ranks = 0;
  for (const auto& s : u.a2a_stats) ranks = std::max(ranks, s.mean_us.size());
  if (ranks > 0) {
    auto* group = new QCPBarsGroup(a2a_plot_);
    std::vector<double> total(ranks, 0.0);
    for (int i = 0; i < 4; ++i) {
      const auto& s = u.a2a_stats[i];
      if (s.mean_us.empty()) continue;
      auto* bars = new QCPBars(a2a_plot_->xAxis, a2a_plot_->yAxis);
      bars->setName(names[i]);
      bars->setBarsGroup(group);
      bars->setWidth(0.8 / 4);
      QColor c = categoryColor(i, palette());
      bars->setBrush(c);
      bars->setPen(QPen(c.darker(120)));
      for (size_t r = 0; r < s.mean_us.size(); ++r) {
        bars->addData(double(r), s.mean_us[r]);
        total[r] += s.mean_us[r];
      }
    }
    size_t slowest = std::max_element(total.begin(), total.end()) - total.begin();
    double mean = std::accumulate(total.begin(), total.end(), 0.0) / double(ranks);
    // The slowest rank goes in the title, where it cannot hide behind bars or the legend.
    static_cast<QCPTextElement*>(a2a_plot_->plotLayout()->element(0, 0))
        ->setText(QString("All-to-all time per rank — slowest: rank %1 (+%2 % over the mean)")
                      .arg(slowest).arg(mean > 0 ? (total[slowest] / mean - 1) * 100 : 0.0, 0, 'f', 0));
    a2a_plot_->xAxis->setTickLabelColor(palette().color(QPalette::WindowText));
    a2a_plot_->legend->setVisible(true);
    // Two entries per row: setWrap does not re-wrap the entries already there, setFillOrder does.
    a2a_plot_->legend->setWrap(2);
    a2a_plot_->legend->setFillOrder(QCPLegend::foColumnsFirst, true);
    a2a_plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
    a2a_plot_->rescaleAxes();
    a2a_plot_->xAxis->setRange(-0.6, double(ranks) - 0.4);
    a2a_plot_->yAxis->setRange(0, a2a_plot_->yAxis->range().upper * 2.0);  // room for the two-row legend
    QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
    ticker->setTickStep(std::max(1.0, std::ceil(double(ranks) / 16)));
    a2a_plot_->xAxis->setTicker(ticker);
  }
  if (ranks == 0) {
    static_cast<QCPTextElement*>(a2a_plot_->plotLayout()->element(0, 0))->setText("All-to-all time per rank (latest window)");
    makeEmptyNote(a2a_plot_, u.run.last_step >= 0 ? "no all-to-all records in this run\n(one EP rank, or the runtime does not report them)"
                                                  : "no steps yet");
    a2a_plot_->legend->setVisible(false);
  }
  a2a_steps_empty_->setVisible(a2a_total_.empty());
  a2a_map_->setVisible(!a2a_total_.empty());  // an empty QCPColorMap would paint its default 10×10 cells
  // Rank × step map of the total all-to-all time of each step (bounded to the last 600 steps).
  if (a2a_total_.size() > 600) a2a_total_.erase(a2a_total_.begin(), a2a_total_.end() - 600);
  if (!a2a_total_.empty()) {
    size_t n_ranks = 0;
    for (const auto& [s, v] : a2a_total_) n_ranks = std::max(n_ranks, v.size());
    auto* d = a2a_map_->data();
    d->setSize(int(a2a_total_.size()), int(n_ranks));
    double first = double(a2a_total_.front().first), last = double(a2a_total_.back().first);
    d->setRange(QCPRange(first, last == first ? first + 1 : last), QCPRange(0, double(n_ranks) - 1 + (n_ranks == 1)));
    for (size_t x = 0; x < a2a_total_.size(); ++x)
      for (size_t r = 0; r < n_ranks; ++r)
        d->setCell(int(x), int(r), r < a2a_total_[x].second.size() ? a2a_total_[x].second[r] : 0.0);
    a2a_map_->rescaleDataRange(true);
    a2a_steps_plot_->rescaleAxes();
    // Whole cells at the edges (rescaleAxes stops at the outer cells' centres).
    if (last > first) a2a_steps_plot_->xAxis->setRange(first - 0.5, last + 0.5);
    if (n_ranks > 1) a2a_steps_plot_->yAxis->setRange(-0.5, double(n_ranks) - 0.5);
  }
}

void LiveWorkspace::redrawCurves() {
  const double alpha = ema_->value() / 100.0;
  if (alpha != curves_alpha_ || curves_drawn_ > step_x_.size()) {  // new smoothing or a new run
    curves_alpha_ = alpha;
    curves_drawn_ = 0;
    for (Ema& e : curve_ema_) e = Ema{};
    for (int g = 0; g < 4; ++g) loss_plot_->graph(g)->data()->clear();
    tps_plot_->graph(0)->data()->clear();
  }
  // Only the steps not drawn yet: smoothed from where the averages stopped, appended in order.
  const qsizetype from = curves_drawn_, n = step_x_.size() - from;
  const QVector<double> x = step_x_.mid(from, n);
  const QVector<double>* raw[4] = {&loss_, &aux_, &z_, &tps_};
  QVector<double> smooth[4];
  for (int c = 0; c < 4; ++c) {
    smooth[c].resize(n);
    for (qsizetype i = 0; i < n; ++i) smooth[c][i] = curve_ema_[c].next((*raw[c])[from + i], alpha);
  }
  curves_drawn_ = step_x_.size();
  loss_plot_->graph(0)->addData(x, smooth[0], true);
  loss_plot_->graph(1)->addData(x, loss_.mid(from, n), true);
  loss_plot_->graph(1)->setVisible(alpha > 0);
  loss_plot_->graph(2)->addData(x, smooth[1], true);
  loss_plot_->graph(3)->addData(x, smooth[2], true);
  loss_plot_->rescaleAxes();
  tps_plot_->graph(0)->addData(x, smooth[3], true);
  tps_plot_->rescaleAxes();
  tps_plot_->yAxis->setRangeLower(0);
}

void LiveWorkspace::exportCurrent() {
  QStringList names;
  for (auto* p : plots()) names << p->objectName();
  bool ok = false;
  QString pick = QInputDialog::getItem(this, "Export", "Plot to export:", names, 0, false, &ok);
  if (!ok) return;
  for (auto* p : plots())
    if (p->objectName() == pick) exportPlotDialog(p, this);
}

}  // namespace moe::gui
