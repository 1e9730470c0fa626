#pragma once
// Plot helpers shared by every workspace: a context menu to export a plot as PNG or PDF and its
// data as CSV, double-click to reset the zoom, and tooltips with the value under the cursor.
#include <QString>

class QCustomPlot;
class QTableView;
class QAbstractItemModel;
class QWidget;

namespace moe::gui {

// Export menu, zoom reset and hover tooltips.
void installPlotTools(QCustomPlot* plot);
// By extension: .png (at 2× for HiDPI), .pdf, or .csv (the plot's data). Returns "" or the reason.
QString savePlot(QCustomPlot* plot, const QString& file);
// The data of every graph (step,value columns per graph) and colour map (one row per cell row).
QString plotToCsv(QCustomPlot* plot);
QString modelToCsv(const QAbstractItemModel* model);
// Writes modelToCsv(model) to `file`. Returns "" or the reason.
QString saveTable(const QAbstractItemModel* model, const QString& file);
// Asks for a file and saves; errors go to a message box.
void exportPlotDialog(QCustomPlot* plot, QWidget* parent);
void exportTableDialog(const QAbstractItemModel* model, QWidget* parent, const QString& suggested);

}  // namespace moe::gui
