#pragma once
// A2aScalingView: the Design workspace's "A2A Scaling" view — core's all-to-all simulator
// (a2a_simulator.h) swept from 8 to 8,192 GPUs for the design on screen: the time of one dispatch
// of one MoE layer on the slowest GPU, flat and hierarchical, under uniform routing and under the
// chosen skew. The sweep runs on a worker thread (a 256-expert model samples for about a second)
// when the view is shown and the design changed; the view only draws what core computed.
#include <QWidget>
#include <vector>

#include "a2a_simulator.h"
#include "job_spec.h"

class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QTimer;
template <typename T>
class QFutureWatcher;

namespace moe::gui {

class A2aScalingView : public QWidget {
  Q_OBJECT
 public:
  explicit A2aScalingView(QWidget* parent = nullptr);

  // The design to simulate; a design with errors shows why instead.
  void setSpec(const JobSpec& spec, bool has_errors, const QString& first_error = {});
  void setSkew(double skew);

  const std::vector<A2aSimResult>& results() const { return results_; }
  bool busy() const { return running_; }
  QCustomPlot* plot() const { return plot_; }

 Q_SIGNALS:
  void simulated();  // results() hold the current design's sweep

 protected:
  void showEvent(QShowEvent* e) override;

 private:
  void schedule();
  void start();
  void draw();

  JobSpec spec_;
  bool valid_ = false, dirty_ = true, running_ = false;
  unsigned generation_ = 0;
  std::vector<A2aSimResult> results_;
  QDoubleSpinBox* skew_;
  QLabel* status_;
  QCustomPlot* plot_;
  QTimer* debounce_;
  QFutureWatcher<std::vector<A2aSimResult>>* watcher_;
};

}  // namespace moe::gui
