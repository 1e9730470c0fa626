// PlacementView: core's placement of the design, one MoE layer at a time, with the load's source.
#include "design/placement_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <algorithm>
#include <numeric>

#include "common/theme.h"
#include "design/placement_grid.h"
#include "rank_layout.h"

namespace moe::gui {

namespace {
// The diagnostic that explains why there is no placement: one at placement.*, else at the sizes it
// depends on.
const Diagnostic* placementProblem(const std::vector<Diagnostic>& diagnostics, bool placement_only) {
  for (const char* prefix : {"placement", "parallel", "model.moe", "model"}) {
    for (const auto& d : diagnostics)
      if (d.severity == Severity::error && d.path.rfind(prefix, 0) == 0) return &d;
    if (placement_only) break;
  }
  return nullptr;
}
}  // namespace

PlacementView::PlacementView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(2);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel("MoE layer"));
  layer_ = new QComboBox;
  layer_->setObjectName("placementLayer");
  layer_->setToolTip("The placement can differ per MoE layer (strategies plan each layer from its own load)");
  layer_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  row->addWidget(layer_);
  row->addSpacing(12);
  load_label_ = new QLabel;
  load_label_->setObjectName("placementLoad");
  load_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  load_label_->setMinimumWidth(40);
  load_label_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);  // a long source elides, never widens the pane
  row->addWidget(load_label_, 1);
  layout->addLayout(row);
  grid_ = new PlacementGrid;
  layout->addWidget(grid_, 1);
  connect(layer_, &QComboBox::currentIndexChanged, this, [this](int i) { showLayer(i); });
}

void PlacementView::setSpec(const JobSpec& spec, const std::vector<Diagnostic>& diagnostics) {
  // Only what the placement depends on, and the rules that fail it, trigger a recomputation (an
  // edit of the learning rate costs no placement).
  const auto& p = spec.parallel;
  const auto& pl = spec.placement;
  std::string next;
  for (int64_t v : {spec.model.moe.num_experts, spec.model.n_layers, spec.model.moe.first_dense_layers, p.tp, p.ep, p.dp,
                    p.pp, p.gpus_per_node, pl.slots_per_rank})
    next += std::to_string(v) + ",";
  next += pl.strategy + "," + pl.replica_choice + ",[";
  for (const auto& row : pl.map) {
    for (int64_t v : row) next += std::to_string(v) + ",";
    next += ";";
  }
  next += "]";
  for (const auto& d : diagnostics)
    if (d.severity == Severity::error) next += "\n" + d.path + ": " + d.message;
  if (next == key_) return;
  key_ = std::move(next);
  spec_ = spec;
  diagnostics_ = diagnostics;
  rebuild();
}

void PlacementView::rebuild() {
  placement_.clear();
  node_of_member_.clear();
  member_ranks_.clear();
  problem_.clear();
  const auto& p = spec_.parallel;
  if (const Diagnostic* d = placementProblem(diagnostics_, /*placement_only=*/true)) {
    problem_ = QString::fromStdString("✖ " + d->path + ": " + d->message);
  } else if (spec_.model.moe.num_experts <= 0 || spec_.model.moe_layers() <= 0) {
    problem_ = "no MoE layers: nothing to place";
  } else if (p.tp < 1 || p.ep < 1 || p.dp < 1 || p.pp < 1 || p.gpus_per_node < 1) {
    problem_ = "parallel sizes must be positive";
  } else if (p.world_size() > 65536) {
    problem_ = QString("%1 ranks: too many to draw").arg(p.world_size());
  } else {
    try {
      const RankLayout layout = make_rank_layout(p);
      placement_ = placement_for_spec(spec_);
      const int64_t members = p.ep;
      node_of_member_.resize(size_t(members));
      member_ranks_.resize(size_t(members));
      for (int64_t m = 0; m < members; ++m) {
        node_of_member_[m] = layout.ranks[layout.ep_groups.at(0).at(m)].node;
        for (size_t g = 0; g < layout.ep_groups.size() && g < 5; ++g) member_ranks_[m].push_back(layout.ep_groups[g][m]);
      }
    } catch (const std::exception& e) {
      placement_.clear();
      const Diagnostic* d = placementProblem(diagnostics_, false);
      problem_ = d ? QString::fromStdString("✖ " + d->path + ": " + d->message) : QString::fromStdString(e.what());
    }
  }

  const int keep = layer_->currentIndex();
  {
    QSignalBlocker block(layer_);
    layer_->clear();
    const int64_t dense = spec_.model.moe.first_dense_layers;
    for (int i = 0; i < layerCount(); ++i)
      layer_->addItem(dense > 0 ? QString("layer %1 (MoE layer %2)").arg(dense + i).arg(i) : QString("layer %1").arg(i));
    layer_->setEnabled(layerCount() > 1);
    if (layerCount() > 0) layer_->setCurrentIndex(std::clamp(keep, 0, layerCount() - 1));
  }
  showLayer(layer_->currentIndex());
}

void PlacementView::setRecordedLoad(const PlacementLoad& load) {
  load_ = load;
  showLayer(layer_->currentIndex());
}

void PlacementView::clearRecordedLoad() {
  if (load_.load.empty() && load_.source.isEmpty()) return;
  load_ = {};
  showLayer(layer_->currentIndex());
}

std::vector<double> PlacementView::shareOf(int moe_layer, bool* recorded) const {
  const int64_t experts = spec_.model.moe.num_experts;
  *recorded = false;
  std::vector<double> share(size_t(std::max<int64_t>(experts, 0)), experts > 0 ? 1.0 / double(experts) : 0.0);
  if (load_.load.size() == placement_.size() && moe_layer >= 0 && moe_layer < int(load_.load.size())) {
    const auto& row = load_.load[moe_layer];
    const double total = std::accumulate(row.begin(), row.end(), 0.0);
    if (int64_t(row.size()) == experts && total > 0) {
      for (int64_t e = 0; e < experts; ++e) share[e] = row[e] / total;
      *recorded = true;
    }
  }
  return share;
}

bool PlacementView::showsRecordedLoad() const {
  bool recorded = false;
  (void)shareOf(currentLayer(), &recorded);
  return recorded;
}

QString PlacementView::problem() const { return grid_->problem(); }

int PlacementView::currentLayer() const { return layer_->currentIndex(); }

void PlacementView::setCurrentLayer(int moe_layer) { layer_->setCurrentIndex(moe_layer); }

void PlacementView::showLayer(int moe_layer) {
  if (!problem_.isEmpty() || moe_layer < 0 || moe_layer >= layerCount()) {
    grid_->setProblem(problem_);
    load_label_->clear();
    return;
  }
  PlacementGrid::Layer layer;
  layer.placement = placement_[moe_layer];
  layer.node_of_member = node_of_member_;
  layer.member_ranks = member_ranks_;
  layer.share = shareOf(moe_layer, &layer.recorded);
  const int64_t dense = spec_.model.moe.first_dense_layers;
  layer.title = dense > 0 ? QString("layer %1 (MoE layer %2)").arg(dense + moe_layer).arg(moe_layer)
                          : QString("layer %1").arg(moe_layer);
  QString note;
  if (layer.recorded) {
    note = "load recorded in " + load_.source;
  } else if (hasRecordedLoad()) {
    note = QString("equal load (the load recorded in %1 does not fit %2 experts × %3 MoE layers)")
               .arg(load_.source).arg(spec_.model.moe.num_experts).arg(layerCount());
  } else {
    note = "equal load (no recorded run)";
  }
  const QString strategy = QString::fromStdString(spec_.placement.strategy);
  load_label_->setText(QString("<b>%1</b> · %2").arg(strategy.toHtmlEscaped(), note.toHtmlEscaped()));
  load_label_->setToolTip(QString("placement.strategy %1\n%2\nCompare ▸ Suggest Placement… plans every strategy from a "
                                  "recorded run and fills the design with the chosen one").arg(strategy, note));
  grid_->setLayer(std::move(layer));
}

}  // namespace moe::gui
