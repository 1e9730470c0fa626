#pragma once
// PlacementGrid: one MoE layer's expert placement (docs/placement.md) as a grid: one column per EP
// member, grouped by node (a band names the node, a gap separates nodes), one cell per physical
// slot showing its logical expert, coloured by that expert's load share against the mean (1/E).
// A replicated expert's cells have a dashed outline and a "×N" badge (a corner mark when too
// small); hovering an expert (or clicking it, which keeps it) outlines all its replicas and fades
// the rest. Under each column:
// the share of the layer's rows the member computes (Σ load / replicas over its slots). It only
// paints: the placement and the members' nodes come from core through PlacementView.
#include <QWidget>
#include <vector>

#include "expert_placement.h"

namespace moe::gui {

struct PlacementCell {
  int64_t slot = 0, member = 0, node = 0, expert = 0, replicas = 1;
  double share = 0;  // the expert's share of the layer's load (all experts sum to 1)
  QRectF rect;       // where it is drawn, for the widget's current size
};

class PlacementGrid : public QWidget {
  Q_OBJECT
 public:
  struct Layer {
    LayerPlacement placement;
    std::vector<int64_t> node_of_member;           // [EP member] → node (of the first EP group)
    std::vector<std::vector<int64_t>> member_ranks;  // [EP member] → its global rank in each EP group
    std::vector<double> share;                     // [logical expert] → share of the layer's load
    bool recorded = false;                         // the load was recorded by a run (else: equal)
    QString title;                                 // "layer 3 (MoE layer 2)", for tooltips
  };
  explicit PlacementGrid(QWidget* parent = nullptr);

  void setLayer(Layer layer);
  // Shows `text` instead of a grid (an invalid placement: validation's message).
  void setProblem(const QString& text);
  QString problem() const { return problem_; }
  bool hasLayer() const { return problem_.isEmpty() && !layer_.placement.phy_to_log.empty(); }
  const Layer& layer() const { return layer_; }

  // The cells of the shown layer, in slot order, laid out for the current size.
  const std::vector<PlacementCell>& cells() const { return cells_; }
  int64_t slotAt(const QPoint& pos) const;  // -1 outside every cell
  QString slotDescription(int64_t slot) const;
  // Share of the layer's rows that EP member m computes (Σ share / replicas over its slots).
  double memberShare(int64_t member) const;

  // The expert whose replicas are outlined: the hovered one, else the selected (clicked) one; -1.
  int64_t highlightedExpert() const { return hovered_ >= 0 ? hovered_ : selected_; }
  std::vector<int64_t> highlightedSlots() const;
  int64_t selectedExpert() const { return selected_; }
  void setSelectedExpert(int64_t expert);

  QSize sizeHint() const override { return {480, 220}; }
  QSize minimumSizeHint() const override { return {240, 120}; }

 Q_SIGNALS:
  void highlightChanged(qint64 expert);

 protected:
  void paintEvent(QPaintEvent*) override;
  void resizeEvent(QResizeEvent*) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mousePressEvent(QMouseEvent* e) override;
  void leaveEvent(QEvent* e) override;
  bool event(QEvent* e) override;

 private:
  void relayout();
  void setHovered(int64_t expert);
  QColor loadColor(double ratio) const;  // ratio: share × E (1 = the mean)
  int64_t members() const { return static_cast<int64_t>(layer_.node_of_member.size()); }

  Layer layer_;
  QString problem_;
  std::vector<PlacementCell> cells_;
  std::vector<QRectF> columns_;  // [member] → the column's cells' bounding box
  std::vector<double> member_share_;
  double grid_bottom_ = 0;
  int64_t hovered_ = -1, selected_ = -1;
};

}  // namespace moe::gui
