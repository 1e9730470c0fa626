// moe-studio [--db FILE] [SPEC]: parses the command line and shows the main window.
#include <QApplication>
#include <QCommandLineParser>
#include <QFileInfo>

#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("moe-studio");
  QApplication::setOrganizationName("moe-studio");
  QApplication::setApplicationDisplayName("MoE Studio");
  QApplication::setApplicationVersion("0.1.0");

  QCommandLineParser parser;
  parser.setApplicationDescription("MoE Studio: design, run and compare expert-parallel MoE training jobs.");
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption db(QStringLiteral("db"), "Run store (SQLite file); default: the app data location.", "FILE");
  parser.addOption(db);
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

  moe::gui::MainWindow window(parser.value(db));
  if (!spec.isEmpty()) window.openSpec(spec);
  window.show();
  return app.exec();
}
