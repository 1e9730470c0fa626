// moe-studio [--db FILE] [SPEC]: parses the command line and shows the main window.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QTabWidget>
#include <QPalette>
#include <QPushButton>
#include <QTimer>

#include "compare/compare_workspace.h"
#include "live/live_workspace.h"
#include "common/theme.h"
#include "main_window.h"
#include "run/run_workspace.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("moe-studio");
  QApplication::setOrganizationName("moe");  // data in ~/.local/share/moe/moe-studio, settings in ~/.config/moe
  QApplication::setApplicationDisplayName("MoE Studio");
  QApplication::setApplicationVersion("0.1.0");

  QCommandLineParser parser;
  parser.setApplicationDescription("MoE Studio: design, run and compare expert-parallel MoE training jobs.");
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption db(QStringLiteral("db"), "Run store (SQLite file); default: the app data location.", "FILE");
  parser.addOption(db);
  // For scripts/screenshots: grab each workspace into DIR after SECONDS and quit.
  QCommandLineOption shots(QStringLiteral("screenshots"), "Save each workspace as DIR/<name>.png, then quit.", "DIR");
  QCommandLineOption shots_wait(QStringLiteral("screenshot-wait"), "Seconds to wait before grabbing (default 3).", "SECONDS", "3");
  QCommandLineOption run_id(QStringLiteral("run"), "Open this run in Live and select it in Compare.", "ID");
  QCommandLineOption compare(QStringLiteral("compare"), "Select these runs in Compare (comma separated).", "IDS");
  QCommandLineOption dark(QStringLiteral("dark"), "Use a dark Fusion palette (the system palette otherwise).");
  QCommandLineOption workspace(QStringLiteral("workspace"), "Start on this workspace: design, run, live or compare.", "NAME");
  QCommandLineOption start_run(QStringLiteral("start-run"), "Press Run on the Run workspace once the window is up.");
  for (auto* o : {&shots, &shots_wait, &run_id, &compare, &dark, &workspace, &start_run}) parser.addOption(*o);
  parser.addPositionalArgument("SPEC", "Job spec to open (JSON).", "[SPEC]");
  parser.process(app);
  if (parser.positionalArguments().size() > 1) {
    fprintf(stderr, "moe-studio: expected at most one SPEC, got %lld\n",
            static_cast<long long>(parser.positionalArguments().size()));
    return 2;
  }
  QString spec = parser.positionalArguments().value(0);
  if (!spec.isEmpty() && !QFileInfo(spec).isFile()) {
    fprintf(stderr, "moe-studio: %s: no such file\n", qPrintable(spec));
    return 2;
  }

  if (parser.isSet(dark)) {
    QApplication::setStyle("Fusion");
    QApplication::setPalette(moe::gui::darkPalette());
  }
  moe::gui::MainWindow window(parser.value(db));
  if (!spec.isEmpty()) window.openSpec(spec);
  window.resize(1440, 900);
  window.show();
  if (parser.isSet(run_id)) window.live()->followRun(parser.value(run_id).toLongLong());
  if (parser.isSet(workspace)) {
    const QStringList names{"design", "run", "live", "compare"};
    int i = int(names.indexOf(parser.value(workspace).toLower()));
    if (i < 0) {
      fprintf(stderr, "moe-studio: --workspace: '%s' is not one of: design, run, live, compare\n", qPrintable(parser.value(workspace)));
      return 2;
    }
    window.workspaces()->setCurrentIndex(i);
  }
  if (parser.isSet(start_run)) {
    QTimer::singleShot(500, &window, [&window] {
      window.workspaces()->setCurrentWidget(window.runWorkspace());
      if (window.runWorkspace()->canRun()) window.runWorkspace()->runButton()->click();
      else fprintf(stderr, "moe-studio: --start-run: Run is disabled for this design\n");
    });
  }
  if (parser.isSet(compare)) {
    QList<qint64> ids;
    for (const QString& s : parser.value(compare).split(',')) ids << s.toLongLong();
    QTimer::singleShot(1500, &window, [&window, ids] { window.compare()->selectRuns(ids); });
  }
  if (parser.isSet(shots)) {
    QString dir = parser.value(shots);
    QDir().mkpath(dir);
    int wait_ms = int(parser.value(shots_wait).toDouble() * 1000);
    QTimer::singleShot(wait_ms, &window, [&window, dir] {
      const char* names[] = {"design", "run", "live", "compare"};
      const QString suffix = qApp->palette().color(QPalette::Window).lightness() < 128 ? "-dark" : "";
      for (int i = 0; i < 4; ++i) {
        window.workspaces()->setCurrentIndex(i);
        QElapsedTimer t;
        t.start();
        while (t.elapsed() < 700) QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
        QString file = QDir(dir).filePath(QString("%1%2.png").arg(names[i], suffix));
        if (!window.grab().save(file)) fprintf(stderr, "moe-studio: %s: cannot be written\n", qPrintable(file));
      }
      QCoreApplication::quit();
    });
  }
  return app.exec();
}
