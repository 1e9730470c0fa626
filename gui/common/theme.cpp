// Theme: palette-aware colours so the studio reads in both light and dark system themes.
#include "common/theme.h"

#include <QWidget>
#include "common/qcp.h"

namespace moe::gui {

QPalette darkPalette() {
  QPalette p;
  p.setColor(QPalette::Window, QColor(37, 37, 38));
  p.setColor(QPalette::WindowText, QColor(220, 220, 220));
  p.setColor(QPalette::Base, QColor(30, 30, 30));
  p.setColor(QPalette::AlternateBase, QColor(45, 45, 48));
  p.setColor(QPalette::Text, QColor(220, 220, 220));
  p.setColor(QPalette::Button, QColor(50, 50, 52));
  p.setColor(QPalette::ButtonText, QColor(220, 220, 220));
  p.setColor(QPalette::Highlight, QColor(38, 79, 120));
  p.setColor(QPalette::HighlightedText, Qt::white);
  p.setColor(QPalette::ToolTipBase, QColor(50, 50, 52));
  p.setColor(QPalette::ToolTipText, QColor(220, 220, 220));
  p.setColor(QPalette::PlaceholderText, QColor(140, 140, 140));
  p.setColor(QPalette::Mid, QColor(90, 90, 90));
  p.setColor(QPalette::Disabled, QPalette::Text, QColor(120, 120, 120));
  p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(120, 120, 120));
  p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(120, 120, 120));
  return p;
}

bool isDark(const QPalette& palette) { return palette.color(QPalette::Window).lightness() < 128; }

QColor errorColor(const QPalette& p) { return isDark(p) ? QColor("#ff7b72") : QColor("#c62828"); }
QColor warningColor(const QPalette& p) { return isDark(p) ? QColor("#e3b341") : QColor("#9a6700"); }
QColor okColor(const QPalette& p) { return isDark(p) ? QColor("#56d364") : QColor("#1a7f37"); }
QColor errorColor(const QWidget* w) { return errorColor(w->palette()); }
QColor warningColor(const QWidget* w) { return warningColor(w->palette()); }
QColor okColor(const QWidget* w) { return okColor(w->palette()); }

QColor categoryColor(int i, const QPalette& palette) {
  static const char* tableau[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  QColor c(tableau[((i % 10) + 10) % 10]);
  if (i >= 10) c = c.darker(100 + 25 * ((i / 10) % 3));  // more than 10 groups: vary the shade
  return isDark(palette) ? c.lighter(115) : c;
}

static void styleAxis(QCPAxis* axis, const QPalette& p) {
  QColor fg = p.color(QPalette::WindowText);
  QColor grid = p.color(QPalette::Mid);
  grid.setAlpha(90);
  axis->setBasePen(QPen(fg, 1));
  axis->setTickPen(QPen(fg, 1));
  axis->setSubTickPen(QPen(fg, 1));
  axis->setTickLabelColor(fg);
  axis->setLabelColor(fg);
  axis->grid()->setPen(QPen(grid, 1, Qt::DotLine));
  axis->grid()->setSubGridVisible(false);
}

void stylePlot(QCustomPlot* plot) {
  const QPalette& p = plot->palette();
  plot->setBackground(p.brush(QPalette::Base));
  for (auto* axis : plot->axisRect()->axes()) styleAxis(axis, p);
  plot->axisRect()->setBackground(p.brush(QPalette::Base));
  plot->legend->setBrush(p.brush(QPalette::Base));
  plot->legend->setTextColor(p.color(QPalette::Text));
  plot->legend->setBorderPen(QPen(p.color(QPalette::Mid)));
  plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot->setNoAntialiasingOnDrag(true);
}

void drawWideCurvesBySegments(QCustomPlot* plot, bool on) { plot->setPlottingHint(QCP::phFastPolylines, on); }

}  // namespace moe::gui
