#pragma once
// StorePoller: reads the run store on a worker thread, so the GUI thread only draws. Every
// `interval` it lists the runs (signalled when the list changed) and, for the run being followed,
// reads what is new since the last tick through core's RunReader: steps, the new expert-load rows
// of the chosen layer (folded into a bounded heatmap here, so the GUI thread only copies columns), the layers × experts matrix of the latest window, drop rates per layer and
// per-rank all-to-all times. Results arrive as LiveUpdate values through queued signals.
#include <QObject>
#include <QString>
#include <QVector>
#include <array>
#include <memory>

#include "live/heat_columns.h"
#include "placement_suggest.h"
#include <optional>

#include "run_reader.h"

class QThread;
class QTimer;

namespace moe::gui {

struct LiveUpdate {
  store::RunInfo run;
  int64_t planned_steps = 0;  // train.steps of the run's spec
  bool reset = false;         // a new run or layer: drop what was drawn before
  int64_t layer = 0;
  // New since the last update (everything when reset):
  std::vector<store::StepRow> steps;
  std::vector<std::vector<store::LoadBalance>> balance;  // [layer] new rows, ascending step
  std::vector<std::pair<int64_t, std::vector<double>>> a2a_total;  // step → per-rank µs, all layers and phases
  // Steps × experts heatmap of `layer`, folded incrementally (HeatColumns): column c covers steps
  // [heat_origin + c·heat_width, +heat_width). Only columns ≥ heat_from changed since the last
  // update; their values follow, column-major: heat_values[(c - heat_from) * heat_experts + e].
  int64_t heat_origin = 0, heat_width = 1, heat_columns = 0, heat_experts = 0, heat_from = 0;
  int64_t heat_capacity = 0;
  std::vector<double> heat_values;
  // Whole views, re-read each tick (bounded by a window of steps):
  store::LayerExpertMatrix latest;  // the latest window of steps
  std::array<store::A2aRankStats, 4> a2a_stats;  // dispatch/fwd, combine/fwd, dispatch/bwd, combine/bwd
  // Re-placements during training (placement.replace_every): one row per move, with its cost.
  std::vector<store::PlacementRow> replacements;
  // A tensor-parallel run (parallel.tp > 1): the latest step's tp all-reduce payload (rank 0).
  std::optional<int64_t> tp_bytes;
  std::optional<int64_t> etp_bytes;  // with parallel.etp > 1: the expert rows' gathers and scatters
  // A multi-rank run: the latest step's gradient-sum payload per group (rank 0's).
  std::vector<std::pair<std::string, int64_t>> grad_bytes;
  // A pipeline-parallel run (parallel.pp > 1): the latest step's per-stage figures and timeline.
  std::optional<store::PipelineFigures> pipeline;
  std::optional<double> planned_idle_share;  // the cost model's for the run's recorded spec
  double read_ms = 0;  // time the worker spent on this tick
};

// The worker: lives on the poller's thread; driven only through queued calls.
class PollWorker : public QObject {
  Q_OBJECT
 public:
  using QObject::QObject;
  ~PollWorker() override;

 public Q_SLOTS:
  void setStorePath(const QString& path);
  void follow(qint64 run_id, qint64 layer);
  void followNewRunAfter(qint64 run_id);
  void setIntervalMs(int ms);
  void tick();
  void refreshRuns();

 Q_SIGNALS:
  void runsListed(const std::vector<moe::store::RunInfo>& runs);
  void liveUpdate(const moe::gui::LiveUpdate& update);
  void storeError(const QString& message);

 private:
  void readLive(bool reset);
  void readDrops(LiveUpdate& u);
  static bool is_final(const std::string& status);
  QString path_;
  std::unique_ptr<store::RunReader> reader_;
  std::vector<store::RunInfo> runs_;
  qint64 run_ = -1, layer_ = 0, newer_than_ = -2;
  int64_t planned_steps_ = 0;
  int64_t planned_tp_ = 1;
  int64_t planned_pp_ = 1;
  std::optional<double> planned_idle_share_;
  int64_t first_step_ = -1, last_step_ = -1, last_a2a_step_ = -1;
  HeatColumns heat_{512};  // heatmap columns: one per step until there are more
  std::vector<int64_t> last_balance_step_;
  std::string last_status_;
  int interval_ms_ = 500;
  QTimer* timer_ = nullptr;
  QString last_error_;
};

// The GUI-thread face of the worker.
class StorePoller : public QObject {
  Q_OBJECT
 public:
  explicit StorePoller(QObject* parent = nullptr);
  ~StorePoller() override;

  void setStorePath(const QString& path);
  QString storePath() const { return path_; }
  void follow(qint64 run_id, qint64 layer = 0);
  // Follow the first run created with an id above `run_id` (a launch in progress).
  void followNewRunAfter(qint64 run_id);
  void setIntervalMs(int ms);
  void refreshRuns();
  const std::vector<store::RunInfo>& runs() const { return runs_; }
  qint64 latestRunId() const;

 Q_SIGNALS:
  void runsListed(const std::vector<moe::store::RunInfo>& runs);
  void liveUpdate(const moe::gui::LiveUpdate& update);
  void storeError(const QString& message);

 private:
  QString path_;
  QThread* thread_;
  PollWorker* worker_;
  std::vector<store::RunInfo> runs_;
};

}  // namespace moe::gui

Q_DECLARE_METATYPE(moe::gui::LiveUpdate)
Q_DECLARE_METATYPE(std::vector<moe::store::RunInfo>)
