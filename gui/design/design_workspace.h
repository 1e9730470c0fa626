#pragma once
// DesignWorkspace: the forms of every spec section on the left; on the right the layout grid or the
// expert placement (tabs) over the estimates; under the forms, the list of every diagnostic core
// reports. It edits the one SpecModel the main window owns.
#include <QWidget>

#include "design/spec_model.h"

class QComboBox;
class QLabel;
class QListWidget;
class QTabWidget;

namespace moe::gui {

class A2aScalingView;
class EstimatesView;
class LayoutView;
class PlacementView;
struct PlacementLoad;
class SpecForm;

class DesignWorkspace : public QWidget {
  Q_OBJECT
 public:
  DesignWorkspace(SpecModel* model, QWidget* parent = nullptr);

  SpecForm* form(const QString& section) const;
  QTabWidget* formTabs() const { return tabs_; }
  // The form holding a dotted path's editor (tests: designer()->editorFor("parallel.ep")).
  QWidget* editorFor(const QString& path) const;
  QString messageFor(const QString& path) const;
  LayoutView* layoutView() const { return layout_view_; }
  PlacementView* placementView() const { return placement_view_; }
  QTabWidget* viewTabs() const { return view_tabs_; }  // Layout | Placement | A2A Scaling
  A2aScalingView* a2aScaling() const { return a2a_scaling_; }
  // Colours the placement view by a run's recorded load (after the design was filled from a
  // placement suggestion) and shows it. A new design (open, preset, import) clears it.
  void showRecordedLoad(const PlacementLoad& load);
  EstimatesView* estimatesView() const { return estimates_; }
  QListWidget* problems() const { return problems_; }
  QLabel* localRun() const { return local_run_; }  // whether this machine can train the design

 private:
  void handleSpecChanged();
  void handleProblemActivated();

  SpecModel* model_;
  QTabWidget* tabs_;
  QList<SpecForm*> forms_;
  QListWidget* problems_;
  QLabel* local_run_;
  LayoutView* layout_view_;
  PlacementView* placement_view_;
  QTabWidget* view_tabs_;
  A2aScalingView* a2a_scaling_;
  QComboBox* dimension_;
  EstimatesView* estimates_;
};

}  // namespace moe::gui
