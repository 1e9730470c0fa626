#pragma once
// PlacementSuggestDialog: "Suggest placement from this run" (docs/placement.md). It reads the run's
// recorded routing (store::recorded_routing: mean expert loads, co-selection samples) and plans
// every strategy from it for the run's spec (store::suggest_placements), with the GPUs per node and
// slots per rank the user sets here; the strategies' figures side by side (member max/mean,
// inter-node share, hierarchical cross-node rows, all-to-all time, or why a strategy cannot place
// the layout). "Use in Design" hands store::with_placement(spec, chosen) and the recorded load to
// the Design workspace. Reading and planning run on the thread pool, never on the GUI thread.
#include <QDialog>
#include <QFutureWatcher>
#include <memory>
#include <vector>

#include "design/placement_view.h"
#include "job_spec.h"
#include "placement_suggest.h"

class QLabel;
class QPushButton;
class QSpinBox;
class QStandardItemModel;
class QTableView;
class QTimer;

namespace moe::gui {

class PlacementSuggestDialog : public QDialog {
  Q_OBJECT
 public:
  enum Column { Strategy, MaxOverMean, InterShare, HierRows, A2aMs, Note, ColumnCount };
  PlacementSuggestDialog(const QString& store_path, qint64 run, QWidget* parent = nullptr);
  ~PlacementSuggestDialog() override;

  // True once the routing is read and the strategies for the current settings are planned (or
  // either failed: see status()).
  bool isReady() const;
  QString status() const;
  QStandardItemModel* table() const { return model_; }
  QTableView* tableView() const { return view_; }
  QSpinBox* gpusPerNode() const { return gpus_per_node_; }
  QSpinBox* slotsPerRank() const { return slots_per_rank_; }
  QPushButton* useButton() const { return use_; }
  // Selects a strategy's row ("replicate"); false when it is not listed.
  bool selectStrategy(const QString& strategy);
  QString selectedStrategy() const;
  // The suggestions shown (in table order) and the spec they were planned for.
  const std::vector<store::PlacementSuggestion>& suggestions() const { return suggestions_; }
  const JobSpec& plannedSpec() const { return planned_spec_; }
  // "Use in Design" on the selected row: emits useInDesign and closes. Returns "" or why not.
  QString useSelected();

 Q_SIGNALS:
  void useInDesign(const moe::JobSpec& spec, const moe::gui::PlacementLoad& load);

 private:
  struct RoutingResult;
  struct PlanResult;
  void handleRouting();
  void schedulePlan();
  void startPlan();
  void handlePlan();
  void fillTable();
  void setStatus(const QString& text, bool error);
  JobSpec adjustedSpec() const;
  void updateLayoutNote();

  QString store_path_;
  qint64 run_;
  QString run_label_;
  JobSpec spec_;  // the run's spec
  bool spec_ok_ = false;
  std::shared_ptr<const store::RecordedRouting> routing_;  // shared with the planning tasks, never copied
  bool routing_done_ = false;
  std::vector<store::PlacementSuggestion> suggestions_;
  JobSpec planned_spec_;
  int generation_ = 0, planned_generation_ = -1;
  bool planning_ = false;

  QLabel* routing_label_;
  QLabel* layout_note_;
  QSpinBox* gpus_per_node_;
  QSpinBox* slots_per_rank_;
  QStandardItemModel* model_;
  QTableView* view_;
  QLabel* status_;
  QPushButton* use_;
  QTimer* debounce_;
  QFutureWatcher<std::shared_ptr<RoutingResult>>* routing_watcher_;
  QFutureWatcher<std::shared_ptr<PlanResult>>* plan_watcher_;
};

}  // namespace moe::gui
