#pragma once
// RunWorkspace: Run and Stop, a clear status line, a progress bar with ETA (steps from the run
// store), and the console of the run with each rank's lines coloured by rank.
#include <QWidget>

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace moe::gui {

class RunLauncher;

class RunWorkspace : public QWidget {
  Q_OBJECT
 public:
  RunWorkspace(RunLauncher* launcher, QWidget* parent = nullptr);

  void setRunEnabled(bool enabled, const QString& why_not = {});
  // Called by the main window from the store poller: the newest step of the followed run.
  void setProgress(qint64 run_id, qint64 step, qint64 total_steps, const QString& store_status);
  void setStatus(const QString& text, const QColor& colour);
  QString statusText() const;
  QPlainTextEdit* console() const { return console_; }
  QPushButton* runButton() const { return run_; }
  QPushButton* stopButton() const { return stop_; }
  QProgressBar* progressBar() const { return progress_; }

 Q_SIGNALS:
  void runRequested();

 private:
  void handleOutputLine(const QString& line, bool is_stderr);
  void handleStarted();
  void handleFinished(int exit_code, bool crashed);

  RunLauncher* launcher_;
  QPushButton* run_;
  QPushButton* stop_;
  QLabel* status_;
  QLabel* command_;
  QProgressBar* progress_;
  QLabel* eta_;
  QPlainTextEdit* console_;
  qint64 first_step_ = -1;
  qint64 first_step_ms_ = 0;
};

}  // namespace moe::gui
