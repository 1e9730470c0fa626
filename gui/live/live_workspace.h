#pragma once
// LiveWorkspace: the dashboard of one run, live or finished — the expert-load heatmap of a layer
// (steps × experts), the layers × experts load of the latest window, token drops per layer over
// time, per-rank all-to-all times (the slowest rank marked), loss / aux / z-loss with EMA
// smoothing, tokens/s, and for a pipeline-parallel run the latest step's 1F1B timeline. It draws the LiveUpdates of the StorePoller and nothing else.
#include <QWidget>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "live/pipeline_timeline.h"
#include "live/store_poller.h"

class QCPColorMap;
class QCPItemText;
class QComboBox;
class QCustomPlot;
class QLabel;
class QSlider;
class QSpinBox;

namespace moe::gui {

// Exponential moving average with debiasing (as TensorBoard's smoothing), one value at a time:
// a non-finite value passes through and leaves the average as it was.
struct Ema {
  double acc = 0, weight = 0;
  double next(double y, double alpha);
};
// The same over a whole series: alpha 0 returns y.
QVector<double> emaSmooth(const QVector<double>& y, double alpha);

class LiveWorkspace : public QWidget {
  Q_OBJECT
 public:
  explicit LiveWorkspace(StorePoller* poller, QWidget* parent = nullptr);

  void followRun(qint64 run_id);
  void followNewRunAfter(qint64 run_id);
  void exportCurrent();
  qint64 runId() const { return run_id_; }
  QString runStatus() const { return status_; }
  int heatmapColumns() const;
  int heatmapExperts() const;
  qint64 stepsShown() const { return step_x_.size(); }
  QCustomPlot* heatmapPlot() const { return heat_plot_; }
  QCustomPlot* lossPlot() const { return loss_plot_; }
  QList<QCustomPlot*> plots() const;
  // Time the last update took to apply and replot on the GUI thread (the bench reads it).
  double lastApplyMs() const { return apply_ms_; }
  double lastReplotMs() const;
  void setEma(double alpha);  // 0: raw
  // The re-placements line of the header ("" when the run never re-placed its experts).
  QString replacementText() const { return replacement_text_; }
  // The tensor-parallel line of the header ("" unless the run has tp > 1).
  QString tensorParallelText() const { return tp_text_; }
  // The gradient sums' line of the header ("" for a one-rank run).
  QString gradientText() const { return grad_text_; }
  // The pipeline timeline's summary ("" unless the run has pp > 1) and its plot (hidden then).
  QString pipelineText() const { return pipeline_->text(); }
  QCustomPlot* pipelinePlot() const { return pipeline_plot_; }

 Q_SIGNALS:
  void runOpened(qint64 run_id);
  void updated();

 private:
  void handleLiveUpdate(const LiveUpdate& u);
  void handleRunsListed(const std::vector<store::RunInfo>& runs);
  void handleRunPicked(int index);
  int comboIndexOf(qint64 run_id) const;  // the run's item in run_combo_, or -1
  void handleLayerChanged(int layer);
  void redrawCurves();
  void drawA2a(const LiveUpdate& u);
  QString replacementLine(const std::vector<store::PlacementRow>& moves);
  QString tensorParallelLine(const LiveUpdate& u);
  QString gradientLine(const LiveUpdate& u);
  void replotVisible();
  void replotNextQueued();
  void showEvent(QShowEvent* event) override;

  StorePoller* poller_;
  QComboBox* run_combo_;
  QSpinBox* layer_;
  QSlider* ema_;
  QLabel* ema_label_;
  QLabel* info_;
  QString replacement_text_;
  QString tp_text_;
  QString grad_text_;
  QCustomPlot* heat_plot_;
  QCPColorMap* heat_map_;
  QCustomPlot* latest_plot_;
  QCPColorMap* latest_map_;
  QCustomPlot* drops_plot_;
  QCustomPlot* a2a_plot_;
  QCustomPlot* a2a_steps_plot_;
  QCPColorMap* a2a_map_;
  QCPItemText* a2a_steps_empty_;
  QCustomPlot* loss_plot_;
  QCustomPlot* tps_plot_;
  QCustomPlot* pipeline_plot_;
  std::unique_ptr<PipelineTimeline> pipeline_;
  qint64 run_id_ = -1;
  QString status_;
  bool filling_combo_ = false;
  // (id, name, status) of each item of run_combo_, in its order: the item's run.
  std::vector<std::tuple<int64_t, std::string, std::string>> combo_runs_;
  // Raw series of the followed run (the EMA is recomputed from these).
  QVector<double> step_x_, loss_, aux_, z_, tps_;
  std::vector<std::pair<int64_t, std::vector<double>>> a2a_total_;
  double apply_ms_ = 0;
  bool stale_ = false;  // updated while hidden: replot when shown
  QList<QCustomPlot*> replot_queue_;  // replotted one per event-loop turn
  bool curves_stale_ = false;         // the loss and throughput graphs lag the series
  // The graphs hold the first curves_drawn_ points of the series, smoothed with curves_alpha_;
  // new steps are smoothed from curve_ema_ on (a 100,000-step run's tick then costs its new steps).
  qsizetype curves_drawn_ = 0;
  double curves_alpha_ = -1;
  Ema curve_ema_[4];  // loss, aux, z, tokens/s
  std::vector<double> heat_cells_;  // [column * experts + e], the fold's columns as drawn
  int heat_columns_ = 0, heat_experts_ = 0;  // of the data drawn (QCPColorMapData starts 10×10)
};

}  // namespace moe::gui
