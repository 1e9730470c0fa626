#pragma once
// PlacementView: the Design workspace's expert placement (docs/placement.md): a layer selector, the
// source of the load the cells are coloured by, and the slot grid of the chosen MoE layer
// (PlacementGrid). The placement is core's placement_for_spec of the design (what a run of it
// starts with), recomputed when a field it depends on changes; the rank layout gives each EP
// member's node. An invalid placement shows validation's message instead of the grid. The load is
// equal (a fresh design) or the one a run recorded, when the design was filled from a suggestion
// ("Suggest placement from this run", Compare).
#include <QWidget>
#include <string>
#include <vector>

#include "expert_placement.h"
#include "job_spec.h"
#include "spec_validation.h"

class QComboBox;
class QLabel;

namespace moe::gui {

class PlacementGrid;

// A run's recorded expert load (store::RecordedRouting), as the placement view colours by it.
struct PlacementLoad {
  std::vector<std::vector<double>> load;  // [MoE layer][logical expert]: mean tokens per step
  std::vector<int64_t> layers;            // the model's layer number of each MoE layer
  QString source;                         // where it was recorded: "run #3 tiny, steps 0–99"
};

class PlacementView : public QWidget {
  Q_OBJECT
 public:
  explicit PlacementView(QWidget* parent = nullptr);

  void setSpec(const JobSpec& spec, const std::vector<Diagnostic>& diagnostics);
  // Colours the cells by this load until cleared (a new design) or until it no longer fits the
  // design's experts and layers.
  void setRecordedLoad(const PlacementLoad& load);
  void clearRecordedLoad();
  bool hasRecordedLoad() const { return !load_.load.empty(); }
  const PlacementLoad& recordedLoad() const { return load_; }
  // True when the shown layer is coloured by the recorded load (it fits the design).
  bool showsRecordedLoad() const;

  const Placement& placement() const { return placement_; }
  QString problem() const;
  int layerCount() const { return static_cast<int>(placement_.size()); }
  int currentLayer() const;
  void setCurrentLayer(int moe_layer);
  QComboBox* layerSelector() const { return layer_; }
  QLabel* loadLabel() const { return load_label_; }
  PlacementGrid* grid() const { return grid_; }

 private:
  void rebuild();
  void showLayer(int moe_layer);
  std::vector<double> shareOf(int moe_layer, bool* recorded) const;

  JobSpec spec_;
  std::vector<Diagnostic> diagnostics_;
  std::string key_;  // what the placement was computed from
  Placement placement_;
  std::vector<int64_t> node_of_member_;
  std::vector<std::vector<int64_t>> member_ranks_;
  QString problem_;
  PlacementLoad load_;
  QComboBox* layer_;
  QLabel* load_label_;
  PlacementGrid* grid_;
};

}  // namespace moe::gui
