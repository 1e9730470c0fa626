// LayoutView: painting of the nodes × GPUs grid and its tooltips.
#include "design/layout_view.h"

#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "common/theme.h"

namespace moe::gui {

namespace {
constexpr double kLabelWidth = 64;  // room for "node 12"
constexpr double kLegendHeight = 22;
}  // namespace

LayoutView::LayoutView(QWidget* parent) : QWidget(parent) {
  setMouseTracking(true);
  setMinimumSize(240, 140);
}

void LayoutView::setSpec(const JobSpec& spec) {
  const auto& p = spec.parallel;
  valid_ = false;
  problem_.clear();
  if (p.tp < 1 || p.ep < 1 || p.dp < 1 || p.pp < 1 || p.gpus_per_node < 1) {
    problem_ = "parallel sizes must be positive";
  } else if (p.world_size() > 65536) {
    problem_ = QString("%1 ranks: too many to draw").arg(p.world_size());
  } else {
    try {
      layout_ = make_rank_layout(p);
      experts_ = spec.model.moe.num_experts;
      placement_.clear();
      if (experts_ > 0 && experts_ % p.ep == 0) {
        try {
          placement_ = placement_for_spec(spec);  // validation names a bad placement
        } catch (const std::exception&) {
        }
      }
      valid_ = true;
    } catch (const std::exception& e) {
      problem_ = QString::fromStdString(e.what());
    }
  }
  update();
}

void LayoutView::setDimension(Dimension d) {
  dimension_ = d;
  update();
}

int64_t LayoutView::groupIndex(const RankCoord& c) const {
  switch (dimension_) {
    case Dimension::tp: return c.ep + layout_.ep * (c.dp + layout_.dp * c.pp);  // TP group id
    case Dimension::ep: return c.tp + layout_.tp * (c.dp + layout_.dp * c.pp);  // EP group id
    case Dimension::dp: return c.dp;  // DP replica
    case Dimension::pp: return c.pp;  // PP stage
  }
  return 0;
}

QRectF LayoutView::cellRect(int64_t rank) const {
  int64_t cols = layout_.gpus_per_node, rows = layout_.nodes();
  double w = std::min(96.0, (width() - kLabelWidth - 8) / double(cols));
  double h = std::min(48.0, (height() - kLegendHeight - 8) / double(rows));
  const auto& c = layout_.ranks[rank];
  return QRectF(kLabelWidth + c.local_rank * w, 4 + c.node * h, w, h);
}

int64_t LayoutView::rankAt(const QPoint& pos) const {
  if (!valid_) return -1;
  for (int64_t r = 0; r < layout_.world_size(); ++r)
    if (cellRect(r).contains(pos)) return r;
  return -1;
}

QString LayoutView::rankDescription(int64_t rank) const {
  if (!valid_ || rank < 0 || rank >= layout_.world_size()) return {};
  const auto& c = layout_.ranks[rank];
  QString text = QString("rank %1 — node %2, GPU %3\ntp %4 · ep %5 · dp %6 · pp %7")
                     .arg(rank).arg(c.node).arg(c.local_rank).arg(c.tp).arg(c.ep).arg(c.dp).arg(c.pp);
  if (!placement_.empty()) {
    const auto& lp = placement_[0];
    QStringList experts;
    for (int64_t s = c.ep * lp.slots_per_rank; s < (c.ep + 1) * lp.slots_per_rank; ++s)
      experts << QString::number(lp.phy_to_log[s]);
    if (experts.size() > 24) experts = experts.mid(0, 12) << "…" << experts.mid(experts.size() - 4);
    text += QString("\nexperts (%1): %2").arg(lp.slots_per_rank).arg(experts.join(", "));
  } else if (experts_ > 0) {
    text += "\nexperts: ep does not divide num_experts";
  }
  return text;
}

bool LayoutView::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(e);
    int64_t r = rankAt(help->pos());
    if (r >= 0) QToolTip::showText(help->globalPos(), rankDescription(r), this);
    else QToolTip::hideText();
    return true;
  }
  return QWidget::event(e);
}

void LayoutView::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QPalette& pal = palette();
  p.fillRect(rect(), pal.brush(QPalette::Base));
  p.setPen(pal.color(QPalette::Text));
  if (!valid_) {
    p.drawText(rect(), Qt::AlignCenter, problem_.isEmpty() ? "no layout" : problem_);
    return;
  }
  const int64_t world = layout_.world_size();
  const bool small = cellRect(0).width() < 18 || cellRect(0).height() < 12;
  int64_t label_every = std::max<int64_t>(1, int64_t(std::ceil(14.0 / cellRect(0).height())));
  for (int64_t node = 0; node < layout_.nodes(); node += label_every) {
    QRectF first = cellRect(std::min(world - 1, node * layout_.gpus_per_node));
    p.drawText(QRectF(0, first.top(), kLabelWidth - 6, std::max(first.height(), 14.0)),
               Qt::AlignRight | Qt::AlignVCenter, QString("node %1").arg(node));
  }
  QColor border = pal.color(QPalette::Base);
  for (int64_t r = 0; r < world; ++r) {
    QRectF cell = cellRect(r).adjusted(1, 1, -1, -1);
    QColor fill = categoryColor(int(groupIndex(layout_.ranks[r])), pal);
    p.setPen(small ? Qt::NoPen : QPen(border, 1));
    p.setBrush(fill);
    p.drawRoundedRect(cell, small ? 0 : 3, small ? 0 : 3);
    if (!small && cell.width() > 26 && cell.height() > 14) {
      p.setPen(fill.lightness() > 140 ? Qt::black : Qt::white);
      p.drawText(cell, Qt::AlignCenter, QString::number(r));
    }
  }
  static const char* names[] = {"TP group", "EP group", "DP replica", "PP stage"};
  int64_t groups = 0;
  for (const auto& c : layout_.ranks) groups = std::max(groups, groupIndex(c) + 1);
  p.setPen(pal.color(QPalette::Text));
  p.drawText(QRectF(kLabelWidth, height() - kLegendHeight, width() - kLabelWidth, kLegendHeight),
             Qt::AlignLeft | Qt::AlignVCenter,
             QString("%1 ranks on %2 nodes × %3 GPUs — colour: %4 (%5 groups); hover a GPU for its coordinates")
                 .arg(world).arg(layout_.nodes()).arg(layout_.gpus_per_node)
                 .arg(names[int(dimension_)]).arg(groups));
}

}  // namespace moe::gui
