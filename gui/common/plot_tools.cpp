// Plot tools: exports (PNG/PDF/CSV), context menus and value tooltips for QCustomPlot.
#include "common/plot_tools.h"

#include <QAbstractItemModel>
#include <QFile>
#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>
#include <QTextStream>
#include <QToolTip>
#include "common/qcp.h"

namespace moe::gui {

namespace {
QString csvField(QString s) {
  if (s.contains(',') || s.contains('"') || s.contains('\n')) s = '"' + s.replace("\"", "\"\"") + '"';
  return s;
}

QString writeText(const QString& file, const QString& text) {
  QFile f(file);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return file + ": cannot be written (" + f.errorString() + ")";
  QByteArray bytes = text.toUtf8();
  if (f.write(bytes) != bytes.size()) return file + ": write failed (" + f.errorString() + ")";
  return {};
}

QString hoverText(QCustomPlot* plot, const QPoint& pos) {
  for (int i = plot->plottableCount() - 1; i >= 0; --i) {
    if (auto* map = qobject_cast<QCPColorMap*>(plot->plottable(i))) {
      if (!map->visible()) continue;
      double key = map->keyAxis()->pixelToCoord(pos.x()), value = map->valueAxis()->pixelToCoord(pos.y());
      int kx, vy;
      map->data()->coordToCell(key, value, &kx, &vy);
      if (kx < 0 || vy < 0 || kx >= map->data()->keySize() || vy >= map->data()->valueSize()) continue;
      double k, v;
      map->data()->cellToCoord(kx, vy, &k, &v);
      return QString("%1 %2 · %3 %4\n%5: %6")
          .arg(map->keyAxis()->label().section(' ', 0, 0)).arg(k, 0, 'f', 0)
          .arg(map->valueAxis()->label().section(' ', 0, 0)).arg(v, 0, 'f', 0)
          .arg(map->name().isEmpty() ? "value" : map->name())
          .arg(map->data()->cell(kx, vy), 0, 'g', 4);
    }
  }
  // Graphs: the nearest point of each visible graph at the cursor's x.
  QStringList lines;
  for (int i = 0; i < plot->graphCount() && lines.size() < 10; ++i) {
    QCPGraph* g = plot->graph(i);
    if (!g->visible() || g->data()->isEmpty()) continue;
    double key = g->keyAxis()->pixelToCoord(pos.x());
    auto it = g->data()->findBegin(key, true);
    if (it == g->data()->constEnd()) continue;
    auto next = it + 1;
    if (next != g->data()->constEnd() && std::abs(next->key - key) < std::abs(it->key - key)) it = next;
    if (std::abs(g->keyAxis()->coordToPixel(it->key) - pos.x()) > 30) continue;
    lines << QString("%1 @ %2: %3").arg(g->name()).arg(it->key, 0, 'g', 6).arg(it->value, 0, 'g', 5);
  }
  return lines.join('\n');
}

class HoverFilter : public QObject {
 public:
  using QObject::QObject;
  bool eventFilter(QObject* o, QEvent* e) override {
    if (e->type() == QEvent::ToolTip) {
      auto* plot = static_cast<QCustomPlot*>(o);
      auto* help = static_cast<QHelpEvent*>(e);
      QString text = hoverText(plot, help->pos());
      if (text.isEmpty()) QToolTip::hideText();
      else QToolTip::showText(help->globalPos(), text, plot);
      return true;
    }
    return false;
  }
};
}  // namespace

QString plotToCsv(QCustomPlot* plot) {
  QString out;
  QTextStream ts(&out);
  for (int i = 0; i < plot->plottableCount(); ++i) {
    QCPAbstractPlottable* p = plot->plottable(i);
    QString name = p->name().isEmpty() ? QString("series %1").arg(i) : p->name();
    if (auto* g = qobject_cast<QCPGraph*>(p)) {
      ts << "series,x,y\n";
      for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
        ts << csvField(name) << ',' << QString::number(it->key, 'g', 10) << ',' << QString::number(it->value, 'g', 10) << '\n';
    } else if (auto* b = qobject_cast<QCPBars*>(p)) {
      ts << "series,x,y\n";
      for (auto it = b->data()->constBegin(); it != b->data()->constEnd(); ++it)
        ts << csvField(name) << ',' << QString::number(it->key, 'g', 10) << ',' << QString::number(it->value, 'g', 10) << '\n';
    } else if (auto* m = qobject_cast<QCPColorMap*>(p)) {
      QCPColorMapData* d = m->data();
      ts << csvField(m->valueAxis()->label() + " \\ " + m->keyAxis()->label());
      for (int x = 0; x < d->keySize(); ++x) {
        double k, v;
        d->cellToCoord(x, 0, &k, &v);
        ts << ',' << QString::number(k, 'g', 10);
      }
      ts << '\n';
      for (int y = 0; y < d->valueSize(); ++y) {
        double k, v;
        d->cellToCoord(0, y, &k, &v);
        ts << QString::number(v, 'g', 10);
        for (int x = 0; x < d->keySize(); ++x) ts << ',' << QString::number(d->cell(x, y), 'g', 8);
        ts << '\n';
      }
    }
  }
  return out;
}

QString modelToCsv(const QAbstractItemModel* model) {
  QString out;
  QStringList row;
  for (int c = 0; c < model->columnCount(); ++c) row << csvField(model->headerData(c, Qt::Horizontal).toString());
  out += row.join(',') + '\n';
  for (int r = 0; r < model->rowCount(); ++r) {
    row.clear();
    for (int c = 0; c < model->columnCount(); ++c) row << csvField(model->index(r, c).data().toString());
    out += row.join(',') + '\n';
  }
  return out;
}

QString saveTable(const QAbstractItemModel* model, const QString& file) { return writeText(file, modelToCsv(model)); }

QString savePlot(QCustomPlot* plot, const QString& file) {
  QString lower = file.toLower();
  bool ok = true;
  if (lower.endsWith(".png")) ok = plot->savePng(file, plot->width(), plot->height(), 2.0);
  else if (lower.endsWith(".pdf")) ok = plot->savePdf(file);
  else if (lower.endsWith(".csv")) return writeText(file, plotToCsv(plot));
  else return file + ": unknown format (use .png, .pdf or .csv)";
  return ok ? QString() : file + ": cannot be written";
}

void exportPlotDialog(QCustomPlot* plot, QWidget* parent) {
  QString file = QFileDialog::getSaveFileName(parent, "Export Plot", plot->objectName() + ".png",
                                              "PNG image (*.png);;PDF document (*.pdf);;CSV data (*.csv)");
  if (file.isEmpty()) return;
  QString why = savePlot(plot, file);
  if (!why.isEmpty()) QMessageBox::warning(parent, "Export failed", why);
}

void exportTableDialog(const QAbstractItemModel* model, QWidget* parent, const QString& suggested) {
  QString file = QFileDialog::getSaveFileName(parent, "Export Table", suggested, "CSV (*.csv)");
  if (file.isEmpty()) return;
  QString why = saveTable(model, file);
  if (!why.isEmpty()) QMessageBox::warning(parent, "Export failed", why);
}

void installPlotTools(QCustomPlot* plot) {
  plot->setContextMenuPolicy(Qt::CustomContextMenu);
  QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot](const QPoint& pos) {
    QMenu menu(plot);
    menu.addAction("Reset Zoom", plot, [plot] {
      plot->rescaleAxes();
      plot->replot();
    });
    menu.addSeparator();
    menu.addAction("Export as PNG, PDF or CSV…", plot, [plot] { exportPlotDialog(plot, plot->window()); });
    menu.exec(plot->mapToGlobal(pos));
  });
  QObject::connect(plot, &QCustomPlot::mouseDoubleClick, plot, [plot](QMouseEvent*) {
    plot->rescaleAxes();
    plot->replot();
  });
  plot->installEventFilter(new HoverFilter(plot));
}

}  // namespace moe::gui
