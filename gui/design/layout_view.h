#pragma once
// LayoutView: the cluster as a grid, one row per node and one cell per GPU, coloured by the
// chosen parallel dimension. A cell's tooltip gives the rank's coordinates and the experts it
// hosts. Coordinates and placement come from core (rank_layout.h, expert_placement.h).
#include <QWidget>

#include "expert_placement.h"
#include "job_spec.h"
#include "rank_layout.h"

namespace moe::gui {

class LayoutView : public QWidget {
  Q_OBJECT
 public:
  enum class Dimension { tp, ep, dp, pp };
  explicit LayoutView(QWidget* parent = nullptr);

  void setSpec(const JobSpec& spec);
  void setDimension(Dimension d);
  Dimension dimension() const { return dimension_; }
  // The tooltip text of a global rank (tests read it; the view shows it on hover).
  QString rankDescription(int64_t rank) const;
  int64_t rankAt(const QPoint& pos) const;
  QSize sizeHint() const override { return {480, 260}; }

 protected:
  void paintEvent(QPaintEvent*) override;
  bool event(QEvent* e) override;

 private:
  QRectF cellRect(int64_t rank) const;
  int64_t groupIndex(const RankCoord& c) const;

  RankLayout layout_;
  Placement placement_;
  int64_t experts_ = 0;
  bool valid_ = false;
  QString problem_;
  Dimension dimension_ = Dimension::ep;
};

}  // namespace moe::gui
