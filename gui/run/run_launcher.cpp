// RunLauncher: QProcess around the `moe` CLI, split into lines per channel.
#include "run/run_launcher.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>
#include <QTimer>

namespace moe::gui {

RunLauncher::RunLauncher(QObject* parent) : QObject(parent) {}

RunLauncher::~RunLauncher() {
  stopRemoteForExit();
  if (process_ && process_->state() != QProcess::NotRunning) {
    // No slot may run from here on: the workspace and window that listen are being destroyed.
    process_->disconnect();
    blockSignals(true);
    process_->terminate();
    if (!process_->waitForFinished(3000)) process_->kill();
    process_->waitForFinished(1000);
  }
}

QString RunLauncher::cliPath() {
  QString env = qEnvironmentVariable("MOE_CLI");
  if (!env.isEmpty()) return env;
  QDir app(QCoreApplication::applicationDirPath());
  for (const char* rel : {"../cli/moe", "moe", "../bin/moe"}) {
    QFileInfo fi(app.filePath(rel));
    if (fi.isFile() && fi.isExecutable()) return fi.canonicalFilePath();
  }
  QString found = QStandardPaths::findExecutable("moe");
  return found.isEmpty() ? QStringLiteral("moe") : found;
}

bool RunLauncher::isRunning() const { return remote_ || (process_ && process_->state() != QProcess::NotRunning); }

QString RunLauncher::start(const QByteArray& spec_json, const QString& db_path, const QStringList& extra_args) {
  if (isRunning()) return "a run is already going: stop it first";
  spec_dir_ = std::make_unique<QTemporaryDir>();
  if (!spec_dir_->isValid()) return "cannot create a temporary folder for the spec: " + spec_dir_->errorString();
  QString spec_file = spec_dir_->filePath("spec.json");
  QFile f(spec_file);
  if (!f.open(QIODevice::WriteOnly) || f.write(spec_json) != spec_json.size() || !f.flush())
    return spec_file + ": cannot be written";
  f.close();
  QString cli = cliPath();
  QStringList args = QStringList{"run", spec_file, "--db", db_path} + extra_args;
  command_line_ = cli + " " + args.join(' ');
  if (process_) process_->deleteLater();
  process_ = new QProcess(this);
  pending_[0].clear();
  pending_[1].clear();
  connect(process_, &QProcess::readyReadStandardOutput, this,
          [this] { handleReadyRead(QProcess::StandardOutput); });
  connect(process_, &QProcess::readyReadStandardError, this,
          [this] { handleReadyRead(QProcess::StandardError); });
  connect(process_, &QProcess::finished, this, &RunLauncher::handleFinished);
  process_->start(cli, args);
  if (!process_->waitForStarted(5000)) {
    QString why = cli + ": cannot start (" + process_->errorString() + "); set MOE_CLI to the moe program";
    process_->deleteLater();
    process_ = nullptr;
    return why;
  }
  timer_.start();
  Q_EMIT started();
  return {};
}

void RunLauncher::stop() {
  if (remote_) return stopRemote();
  if (!isRunning()) return;
  process_->terminate();
  QProcess* p = process_;
  QTimer::singleShot(10000, p, [p] {
    if (p->state() != QProcess::NotRunning) p->kill();
  });
}

void RunLauncher::handleReadyRead(QProcess::ProcessChannel channel) {
  int c = channel == QProcess::StandardError ? 1 : 0;
  process_->setReadChannel(channel);
  pending_[c] += process_->readAll();
  qsizetype nl;
  while ((nl = pending_[c].indexOf('\n')) >= 0) {
    QString line = QString::fromUtf8(pending_[c].left(nl)).trimmed();
    pending_[c].remove(0, nl + 1);
    Q_EMIT outputLine(line, c == 1);
  }
}

void RunLauncher::handleFinished(int exit_code, QProcess::ExitStatus status) {
  for (int c = 0; c < 2; ++c)
    if (!pending_[c].isEmpty()) Q_EMIT outputLine(QString::fromUtf8(pending_[c]).trimmed(), c == 1);
  pending_[0].clear();
  pending_[1].clear();
  Q_EMIT finished(exit_code, status == QProcess::CrashExit);
}

}  // namespace moe::gui
