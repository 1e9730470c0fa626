#pragma once
// Colours that read on the system palette, light or dark: status colours, a categorical palette
// for groups, and a helper that dresses a QCustomPlot in the widget's palette.
#include <QColor>
#include <QPalette>

class QWidget;
class QCustomPlot;

namespace moe::gui {

bool isDark(const QPalette& palette);
// The studio's dark palette (moe-studio --dark; the GUI tests' dark screenshots).
QPalette darkPalette();
QColor errorColor(const QWidget* w);
QColor warningColor(const QWidget* w);
QColor okColor(const QWidget* w);
QColor errorColor(const QPalette& p);
QColor warningColor(const QPalette& p);
QColor okColor(const QPalette& p);
// The i-th colour of a categorical palette (Tableau 10), lightened on dark backgrounds.
QColor categoryColor(int i, const QPalette& palette);
// Background, axes, grid, labels and legend from the palette; zoom and pan by mouse.
void stylePlot(QCustomPlot* plot);
// For plots of 2 px curves with thousands of points: drawn segment by segment. Qt's rasterizer
// fills one stroked path in time growing with its edges squared (10 runs × 600 points: ~120 ms;
// 20,000 steps: ~20 ms); segments take a few ms. Thin cosmetic lines are faster as one polyline.
void drawWideCurvesBySegments(QCustomPlot* plot, bool on = true);

}  // namespace moe::gui
