#pragma once
// CompareWorkspace: the runs table (sortable, filterable; tags, notes, delete with confirmation);
// the selected runs' curves overlaid, aligned by step and smoothed; a config diff table with only
// the keys that differ; a summary table (final loss, tokens/s, drop rate, max/mean expert load,
// all-to-all share of step time). Queries go through core's RunReader, edits through RunStore.
// The curves and the all-to-all shares are read on worker threads (10 runs × 100,000 steps take
// ~50 ms and ~0.2 s); a poll that finds a selected run unchanged redraws nothing.
// "Suggest Placement…" (button and the table's context menu) plans every placement strategy from
// a run's recorded routing (PlacementSuggestDialog) and can hand the chosen plan to Design.
#include <QFutureWatcher>
#include <QWidget>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "design/placement_view.h"
#include "job_spec.h"
#include "live/store_poller.h"

class QComboBox;
class QCustomPlot;
class QLineEdit;
class QPushButton;
class QSlider;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTableView;

namespace moe::gui {

class PlacementSuggestDialog;
class RunsModel;

class CompareWorkspace : public QWidget {
  Q_OBJECT
 public:
  explicit CompareWorkspace(StorePoller* poller, QWidget* parent = nullptr);
  ~CompareWorkspace() override;

  void selectRuns(const QList<qint64>& ids);
  QList<qint64> selectedRuns() const;
  void exportCurrent();
  // Tag, notes and delete act on the selected runs; delete asks first unless `confirmed`.
  void addTag(const QString& tag);
  void setNotes(const QString& notes);
  void deleteSelected(bool confirmed = false);
  // Opens "Suggest placement from this run" for `run` (window-modal, not blocking) and returns it.
  PlacementSuggestDialog* suggestPlacement(qint64 run);

  QTableView* runsView() const { return runs_view_; }
  QSortFilterProxyModel* runsProxy() const { return proxy_; }
  QCustomPlot* curvesPlot() const { return curves_; }
  QStandardItemModel* diffModel() const { return diff_model_; }
  QStandardItemModel* summaryModel() const { return summary_model_; }
  QLineEdit* filter() const { return filter_; }
  // True from a selection (or metric) change until its curves are drawn.
  bool curvesLoading() const { return curves_drawn_generation_ != curves_generation_; }
  // How many times the selection's curves, diff and summary were rebuilt (for tests).
  int redrawCount() const { return redraws_; }

 Q_SIGNALS:
  void openRunRequested(qint64 run_id);
  // A placement suggestion's "Use in Design": the run's spec with the chosen map, and its load.
  void placementChosen(const moe::JobSpec& spec, const moe::gui::PlacementLoad& load);
  // The curves of the latest selection or metric are drawn.
  void curvesDrawn();

 protected:
  void showEvent(QShowEvent* event) override;

 private:
  void handleRunsListed(const std::vector<store::RunInfo>& runs);
  void handleSelectionChanged();
  void showRunsMenu(const QPoint& pos);
  bool selectionChangedIn(const std::vector<store::RunInfo>& runs) const;
  void redraw();         // curves, config diff and summary of the selected runs
  void loadCurves();     // reads the selected runs' series of the chosen metric on a worker, then draws
  void drawCurves();     // smooths and plots what loadCurves read
  void fillA2aShares(const std::vector<std::pair<int64_t, int64_t>>& runs);  // (run, last step)
  void showA2aShare(int64_t run, double share);
  void withStore(const std::function<void(class RunStoreHandle&)>& edit);
  store::RunReader* reader();

  StorePoller* poller_;
  RunsModel* runs_model_;
  QSortFilterProxyModel* proxy_;
  QTableView* runs_view_;
  QLineEdit* filter_;
  QPushButton* suggest_;
  QComboBox* metric_;
  QSlider* ema_;
  QCustomPlot* curves_;
  QStandardItemModel* diff_model_;
  QTableView* diff_view_;
  QStandardItemModel* summary_model_;
  QTableView* summary_view_;
  // The summary's all-to-all share reads every step of each run: computed on a worker thread.
  // One result per run as soon as it is computed (a long run takes ~0.8 s): the cells fill in one
  // by one. A result with run -1 carries an error for the cells still waiting.
  struct A2aShare {
    int64_t run = -1, last_step = -1;  // the run and its last step when read
    double share = 0;
    std::string error;
  };
  QFutureWatcher<A2aShare>* a2a_watcher_;
  // A finished run's share never changes: kept per run with the last step it was read at.
  std::map<int64_t, std::pair<int64_t, double>> a2a_share_cache_;
  // The selected runs' series as read (before smoothing): the smoothing slider redraws from them
  // without reading the store (10 runs × 100,000 steps: ~50 ms a read).
  struct RawCurve {
    QString name;  // "#id name"
    QVector<double> x, y;
  };
  std::vector<RawCurve> raw_curves_;
  struct CurvesRead {
    uint64_t generation = 0;
    std::vector<RawCurve> curves;
    std::string error;
  };
  QFutureWatcher<CurvesRead>* curves_watcher_;
  uint64_t curves_generation_ = 0, curves_drawn_generation_ = 0;
  bool stale_ = false;  // a selected run changed while Compare was hidden: redraw when shown
  int redraws_ = 0;
  std::unique_ptr<store::RunReader> reader_;
  QString reader_path_;
  QList<qint64> selected_;
  bool restoring_selection_ = false;
};

}  // namespace moe::gui
