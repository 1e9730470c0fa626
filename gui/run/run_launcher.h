#pragma once
// RunLauncher: starts `moe run SPEC --db FILE` as a child process — the very path the command line
// uses, so the studio and the CLI cannot drift — and reports its output lines and its end.
#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QTemporaryDir>
#include <memory>

namespace moe::gui {

class RunLauncher : public QObject {
  Q_OBJECT
 public:
  explicit RunLauncher(QObject* parent = nullptr);
  ~RunLauncher() override;

  // $MOE_CLI, else `moe` beside moe-studio's build folder (../core/cli/moe) or install folder, else PATH.
  static QString cliPath();

  // Writes the spec JSON to a temporary file and starts the CLI. Returns "" or the reason it could not.
  QString start(const QByteArray& spec_json, const QString& db_path, const QStringList& extra_args = {});
  void stop();  // SIGTERM (moe run records `cancelled`), then SIGKILL after a grace period
  bool isRunning() const;
  qint64 elapsedMs() const { return timer_.isValid() ? timer_.elapsed() : 0; }
  QString commandLine() const { return command_line_; }

 Q_SIGNALS:
  void outputLine(const QString& line, bool is_stderr);
  void started();
  void finished(int exit_code, bool crashed);

 private:
  void handleReadyRead(QProcess::ProcessChannel channel);
  void handleFinished(int exit_code, QProcess::ExitStatus status);

  QProcess* process_ = nullptr;
  std::unique_ptr<QTemporaryDir> spec_dir_;
  QByteArray pending_[2];
  QElapsedTimer timer_;
  QString command_line_;
};

}  // namespace moe::gui
