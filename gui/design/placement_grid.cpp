// PlacementGrid: geometry, painting, hover/selection and tooltips of one layer's slot grid.
#include "design/placement_grid.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "common/theme.h"

namespace moe::gui {

namespace {
constexpr double kMargin = 8;
constexpr double kTop = 2;
constexpr double kNodeBand = 17;     // "node 3" over the node's columns
constexpr double kMemberHeader = 15; // "EP 5" over each column
constexpr double kFooter = 16;       // the member's share of the layer's rows
constexpr double kLegend = 18;
constexpr double kMaxCellWidth = 96, kMaxCellHeight = 30;

QString percent(double fraction) { return QString::number(fraction * 100.0, 'f', 1) + " %"; }

QColor mix(const QColor& a, const QColor& b, double t) {
  return QColor::fromRgbF(float(a.redF() + (b.redF() - a.redF()) * t), float(a.greenF() + (b.greenF() - a.greenF()) * t),
                          float(a.blueF() + (b.blueF() - a.blueF()) * t));
}
}  // namespace

PlacementGrid::PlacementGrid(QWidget* parent) : QWidget(parent) {
  setMouseTracking(true);
  setObjectName("placementGrid");
}

void PlacementGrid::setLayer(Layer layer) {
  layer_ = std::move(layer);
  problem_.clear();
  const int64_t experts = static_cast<int64_t>(layer_.placement.log_to_phy.size());
  if (selected_ >= experts) selected_ = -1;
  hovered_ = -1;
  member_share_.assign(size_t(members()), 0.0);
  const auto& lp = layer_.placement;
  for (int64_t s = 0; s < lp.slots() && lp.slots_per_rank > 0; ++s) {
    const int64_t e = lp.phy_to_log[s], m = s / lp.slots_per_rank;
    if (m < members() && e < int64_t(layer_.share.size()))
      member_share_[size_t(m)] += layer_.share[e] / double(lp.log_to_phy[e].size());
  }
  relayout();
  update();
}

void PlacementGrid::setProblem(const QString& text) {
  problem_ = text.isEmpty() ? QStringLiteral("no placement") : text;
  layer_ = {};
  cells_.clear();
  columns_.clear();
  member_share_.clear();
  hovered_ = selected_ = -1;
  update();
}

double PlacementGrid::memberShare(int64_t member) const {
  return member >= 0 && member < int64_t(member_share_.size()) ? member_share_[size_t(member)] : 0.0;
}

void PlacementGrid::resizeEvent(QResizeEvent*) { relayout(); }

void PlacementGrid::relayout() {
  cells_.clear();
  columns_.clear();
  grid_bottom_ = 0;
  if (!hasLayer()) return;
  const auto& lp = layer_.placement;
  const int64_t P = members(), S = lp.slots_per_rank;
  if (P <= 0 || S <= 0 || lp.slots() != P * S) return;
  int64_t node_changes = 0;
  for (int64_t m = 1; m < P; ++m) node_changes += layer_.node_of_member[m] != layer_.node_of_member[m - 1];
  const double gap = node_changes == 0 ? 0 : P <= 64 ? 10 : 3;
  const double w = std::clamp((width() - 2 * kMargin - gap * double(node_changes)) / double(P), 2.0, kMaxCellWidth);
  const double top = kTop + kNodeBand + kMemberHeader;
  const double h = std::clamp((height() - top - kFooter - kLegend - kTop) / double(S), 2.0, kMaxCellHeight);
  double x = kMargin;
  columns_.resize(size_t(P));
  for (int64_t m = 0; m < P; ++m) {
    if (m > 0 && layer_.node_of_member[m] != layer_.node_of_member[m - 1]) x += gap;
    columns_[size_t(m)] = QRectF(x, top, w, h * double(S));
    for (int64_t j = 0; j < S; ++j) {
      PlacementCell c;
      c.slot = m * S + j;
      c.member = m;
      c.node = layer_.node_of_member[m];
      c.expert = lp.phy_to_log[c.slot];
      c.replicas = static_cast<int64_t>(lp.log_to_phy[c.expert].size());
      c.share = c.expert < int64_t(layer_.share.size()) ? layer_.share[c.expert] : 0.0;
      c.rect = QRectF(x, top + double(j) * h, w, h);
      cells_.push_back(c);
    }
    x += w;
  }
  grid_bottom_ = top + h * double(S);
}

int64_t PlacementGrid::slotAt(const QPoint& pos) const {
  for (const auto& c : cells_)
    if (c.rect.contains(pos)) return c.slot;
  return -1;
}

std::vector<int64_t> PlacementGrid::highlightedSlots() const {
  const int64_t e = highlightedExpert();
  if (!hasLayer() || e < 0 || e >= int64_t(layer_.placement.log_to_phy.size())) return {};
  return layer_.placement.log_to_phy[e];
}

void PlacementGrid::setSelectedExpert(int64_t expert) {
  if (!hasLayer() || expert >= int64_t(layer_.placement.log_to_phy.size())) expert = -1;
  if (expert == selected_) return;
  const int64_t before = highlightedExpert();
  selected_ = expert;
  if (highlightedExpert() != before) Q_EMIT highlightChanged(highlightedExpert());
  update();
}

void PlacementGrid::setHovered(int64_t expert) {
  if (expert == hovered_) return;
  const int64_t before = highlightedExpert();
  hovered_ = expert;
  if (highlightedExpert() != before) Q_EMIT highlightChanged(highlightedExpert());
  update();
}

void PlacementGrid::mouseMoveEvent(QMouseEvent* e) {
  const int64_t slot = slotAt(e->position().toPoint());
  setHovered(slot >= 0 ? layer_.placement.phy_to_log[slot] : -1);
}

void PlacementGrid::mousePressEvent(QMouseEvent* e) {
  const int64_t slot = slotAt(e->position().toPoint());
  const int64_t expert = slot >= 0 ? layer_.placement.phy_to_log[slot] : -1;
  setSelectedExpert(expert == selected_ ? -1 : expert);  // a second click (or a click beside) releases it
}

void PlacementGrid::leaveEvent(QEvent*) { setHovered(-1); }

QString PlacementGrid::slotDescription(int64_t slot) const {
  if (!hasLayer() || slot < 0 || slot >= layer_.placement.slots()) return {};
  const auto& lp = layer_.placement;
  const int64_t S = lp.slots_per_rank, m = slot / S, e = lp.phy_to_log[slot];
  const int64_t experts = static_cast<int64_t>(lp.log_to_phy.size());
  const auto& replicas = lp.log_to_phy[e];
  QStringList ranks;
  const auto& mr = m < int64_t(layer_.member_ranks.size()) ? layer_.member_ranks[m] : std::vector<int64_t>{};
  for (size_t i = 0; i < mr.size() && i < 4; ++i) ranks << QString::number(mr[i]);
  if (mr.size() > 4) ranks << "…";
  QString text = layer_.title.isEmpty() ? QString() : layer_.title + "\n";
  text += QString("slot %1 on EP member %2 (%3 %4), node %5")
              .arg(slot).arg(m).arg(mr.size() == 1 ? "rank" : "ranks", ranks.join(", "))
              .arg(layer_.node_of_member[m]);
  text += QString("\nexpert %1").arg(e);
  if (replicas.size() > 1) {
    QStringList where;
    for (int64_t s : replicas)
      where << QString("slot %1 (member %2, node %3)").arg(s).arg(s / S).arg(layer_.node_of_member[s / S]);
    text += QString(" · %1 replicas: %2").arg(replicas.size()).arg(where.join(", "));
  } else {
    text += " · one copy";
  }
  const double share = e < int64_t(layer_.share.size()) ? layer_.share[e] : 0.0;
  text += QString("\nload: %1 of the layer's rows (mean %2)").arg(percent(share), percent(1.0 / double(experts)));
  if (replicas.size() > 1) text += QString(", %1 per replica").arg(percent(share / double(replicas.size())));
  text += layer_.recorded ? " — recorded" : " — equal load (no recorded run)";
  text += QString("\nmember %1 computes %2 of the layer's rows (mean %3)")
              .arg(m).arg(percent(memberShare(m)), percent(1.0 / double(members())));
  return text;
}

bool PlacementGrid::event(QEvent* e) {
  if (e->type() == QEvent::ToolTip) {
    auto* help = static_cast<QHelpEvent*>(e);
    const int64_t slot = slotAt(help->pos());
    if (slot >= 0) QToolTip::showText(help->globalPos(), slotDescription(slot), this);
    else QToolTip::hideText();
    return true;
  }
  return QWidget::event(e);
}

QColor PlacementGrid::loadColor(double ratio) const {
  const bool dark = isDark(palette());
  const QColor mid = dark ? QColor(72, 80, 92) : QColor(226, 231, 238);
  const QColor hot = dark ? QColor("#ff7b72") : QColor("#d1495b");
  const QColor cold = dark ? QColor("#79a8dd") : QColor("#3f6fa6");
  double t = std::clamp(std::log2(std::max(ratio, 1e-9)) / 2.0, -1.0, 1.0);  // 1: 4× the mean
  return mix(mid, t >= 0 ? hot : cold, std::abs(t));
}

void PlacementGrid::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QPalette& pal = palette();
  p.fillRect(rect(), pal.brush(QPalette::Base));
  if (!hasLayer() || cells_.empty()) {
    p.setPen(problem_.isEmpty() ? pal.color(QPalette::Text) : errorColor(pal));
    p.drawText(rect().adjusted(12, 8, -12, -8), Qt::AlignCenter | Qt::TextWordWrap,
               problem_.isEmpty() ? QStringLiteral("no placement") : problem_);
    return;
  }
  const auto& lp = layer_.placement;
  const int64_t P = members(), experts = static_cast<int64_t>(lp.log_to_phy.size());
  const QFontMetrics fm(font());
  QFont small = font();
  small.setPointSizeF(std::max(6.0, font().pointSizeF() - 1.5));
  const QFontMetrics sfm(small);
  const QColor text = pal.color(QPalette::Text);
  QColor band = pal.color(QPalette::AlternateBase);
  if (band == pal.color(QPalette::Base)) band = pal.color(QPalette::Window);

  // Node bands and the boundaries between nodes; one label form for every band ("node 3", or
  // "3", or every k-th number when the bands are narrower than a number).
  std::vector<std::pair<int64_t, int64_t>> bands;  // first, last member
  for (int64_t first = 0; first < P;) {
    int64_t last = first;
    while (last + 1 < P && layer_.node_of_member[last + 1] == layer_.node_of_member[first]) ++last;
    bands.emplace_back(first, last);
    first = last + 1;
  }
  double band_w = 1e9;
  for (const auto& [first, last] : bands) {
    QRectF r(columns_[first].left(), kTop, columns_[last].right() - columns_[first].left(), kNodeBand - 2);
    band_w = std::min(band_w, r.width());
    p.setPen(Qt::NoPen);
    p.setBrush(band);
    p.drawRoundedRect(r, 3, 3);
    if (last + 1 < P) {
      const double x = (columns_[last].right() + columns_[last + 1].left()) / 2;
      p.setPen(QPen(pal.color(QPalette::Mid), 1, Qt::DashLine));
      p.drawLine(QPointF(x, kTop), QPointF(x, grid_bottom_ + kFooter));
    }
  }
  const int64_t last_node = layer_.node_of_member.back();
  const bool words = fm.horizontalAdvance(QString("node %1").arg(last_node)) + 4 <= band_w;
  const double number_w = fm.horizontalAdvance(QString::number(last_node));
  const int64_t node_every = words || number_w + 2 <= band_w ? 1 : int64_t(std::ceil((number_w + 8) / band_w));
  p.setPen(text);
  for (size_t b = 0; b < bands.size(); b += size_t(node_every)) {
    const auto& [first, last] = bands[b];
    const int64_t node = layer_.node_of_member[first];
    QRectF r(columns_[first].left(), kTop, columns_[last].right() - columns_[first].left(), kNodeBand - 2);
    if (node_every == 1) p.drawText(r, Qt::AlignCenter, words ? QString("node %1").arg(node) : QString::number(node));
    else {  // the first one says what the numbers are, when it has the room
      const QString first = QString("node %1").arg(node);
      const bool long_form = b == 0 && fm.horizontalAdvance(first) + 8 <= band_w * double(node_every);
      p.drawText(r.adjusted(1, 0, band_w * double(node_every - 1), 0), Qt::AlignLeft | Qt::AlignVCenter,
                 long_form ? first : QString::number(node));
    }
  }
  // Member headers, every k-th when the columns are narrow.
  const double w = columns_[0].width();
  const int64_t label_every = std::max<int64_t>(1, int64_t(std::ceil((fm.horizontalAdvance("EP 00") + 6) / w)));
  p.setPen(text);
  for (int64_t m = 0; m < P; m += label_every) {
    const QString word = QString("EP %1").arg(m);
    const double room = m == 0 ? w * double(label_every) : w;  // the first one may say "EP" in its k columns
    const QString label = room >= fm.horizontalAdvance(word) + 6 ? word : QString::number(m);
    QRectF r(columns_[m].left(), kTop + kNodeBand, std::max(w, double(fm.horizontalAdvance(label))), kMemberHeader);
    p.drawText(r, Qt::AlignHCenter | Qt::AlignVCenter, label);
  }

  // Cells.
  const int64_t lit = highlightedExpert();
  const bool roomy = w >= 10 && cells_[0].rect.height() >= 8;
  const QColor accent = isDark(pal) ? QColor("#ffd166") : QColor("#111111");
  for (const auto& c : cells_) {
    const QRectF r = c.rect.adjusted(1, 1, -1, -1);
    const QColor fill = loadColor(c.share * double(experts));
    p.setOpacity(lit >= 0 && c.expert != lit ? 0.3 : 1.0);
    p.setPen(Qt::NoPen);
    p.setBrush(fill);
    p.drawRoundedRect(r, roomy ? 3 : 0, roomy ? 3 : 0);
    const QColor ink = fill.lightness() > 150 ? QColor(Qt::black) : QColor(Qt::white);
    if (c.replicas > 1 && roomy) {  // replicated: a dashed outline in the cell's ink
      p.setPen(QPen(ink, 1.5, Qt::DashLine));
      p.setBrush(Qt::NoBrush);
      p.drawRoundedRect(r.adjusted(1.5, 1.5, -1.5, -1.5), 2, 2);
    } else if (c.replicas > 1 && r.width() >= 3 && r.height() >= 3) {  // too small for an outline: a corner mark
      const double k = std::min({4.0, r.width() / 2, r.height() / 2});
      p.setPen(Qt::NoPen);
      p.setBrush(ink);
      p.drawPolygon(QPolygonF({r.topRight(), r.topRight() + QPointF(-k, 0), r.topRight() + QPointF(0, k)}));
    }
    const QString number = QString::number(c.expert);
    const QString badge = QString("×%1").arg(c.replicas);
    const double nw = fm.horizontalAdvance(number), bw = sfm.horizontalAdvance(badge);
    p.setPen(ink);
    if (c.replicas > 1 && r.width() >= nw + bw + 12 && r.height() >= fm.height()) {
      QRectF left = r.adjusted(2, 0, -bw - 4, 0);
      p.drawText(left, Qt::AlignCenter, number);
      p.setFont(small);
      p.drawText(r.adjusted(0, 2, -4, 0), Qt::AlignRight | Qt::AlignTop, badge);
      p.setFont(font());
    } else if (r.width() >= nw + 4 && r.height() >= fm.height() - 2) {
      p.drawText(r, Qt::AlignCenter, number);
    }
    if (lit >= 0 && c.expert == lit) {
      p.setOpacity(1.0);
      p.setPen(QPen(accent, 2.5));
      p.setBrush(Qt::NoBrush);
      p.drawRoundedRect(c.rect.adjusted(0.5, 0.5, -0.5, -0.5), 3, 3);
    }
  }
  p.setOpacity(1.0);

  // Under each column: the share of the layer's rows the member computes; the busiest in bold.
  const double busiest = *std::max_element(member_share_.begin(), member_share_.end());
  const QString widest = "100.0 %";
  for (int64_t m = 0; m < P; ++m) {
    const QString label = percent(member_share_[m]);
    if (fm.horizontalAdvance(widest) + 4 > w && (m % label_every) != 0) continue;
    if (fm.horizontalAdvance(label) + 2 > w * double(label_every)) continue;
    QFont f = small;
    f.setBold(P > 1 && member_share_[m] >= busiest - 1e-12 && busiest > 1.0 / double(P) + 1e-9);
    p.setFont(f);
    p.setPen(text);
    p.drawText(QRectF(columns_[m].left() - 10, grid_bottom_ + 1, w + 20, kFooter - 2), Qt::AlignHCenter | Qt::AlignTop, label);
  }
  p.setFont(font());

  // Legend: what the figures are, and the colour scale.
  const double ly = grid_bottom_ + kFooter;
  const double strip_w = 150;
  const bool strip = width() >= 520;
  const int64_t extra = lp.slots() - experts;
  double busiest_ratio = busiest * double(P);
  QString legend = QString("%1 experts in %2 slots (%3) · %4 · member max/mean %5")
                       .arg(experts).arg(lp.slots())
                       .arg(extra > 0 ? QString("%1 replica%2").arg(extra).arg(extra == 1 ? "" : "s") : QString("no replicas"))
                       .arg(layer_.recorded ? "recorded load" : "equal load (no recorded run)")
                       .arg(QString::number(busiest_ratio, 'f', 2));
  const double legend_w = width() - kMargin * 2 - (strip ? strip_w + 60 : 0);
  p.setPen(text);
  p.drawText(QRectF(kMargin, ly, legend_w, kLegend), Qt::AlignLeft | Qt::AlignVCenter,
             fm.elidedText(legend, Qt::ElideRight, int(legend_w)));
  if (strip) {
    const double sx = width() - kMargin - strip_w - 26, sy = ly + (kLegend - 10) / 2;
    QLinearGradient g(sx, 0, sx + strip_w, 0);
    for (int i = 0; i <= 8; ++i) g.setColorAt(i / 8.0, loadColor(std::pow(2.0, (i - 4) / 2.0)));
    p.setPen(Qt::NoPen);
    p.setBrush(g);
    p.drawRect(QRectF(sx, sy, strip_w, 10));
    p.setPen(text);
    p.setFont(small);
    p.drawText(QRectF(sx - 26, ly, 24, kLegend), Qt::AlignRight | Qt::AlignVCenter, "¼×");
    p.drawText(QRectF(sx + strip_w + 3, ly, 24, kLegend), Qt::AlignLeft | Qt::AlignVCenter, "4×");
    p.setFont(font());
  }
}

}  // namespace moe::gui
