#pragma once
// RunWorkspace: Run and Stop, where to run (this machine or the Hosts panel's nodes), a clear status
// line, a progress bar with ETA (steps from the run store), and the console of the run with each
// rank's (and each node's) lines coloured. A multi-node spec is never run locally by accident: the
// local Run is disabled with the reason until the hosts are chosen.
#include <QMap>
#include <QWidget>

class QComboBox;
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

  enum class Where { local, hosts, slurm };  // slurm: the Hosts panel's one host is a login node
  // The design's first error for each place a run can go ("" = it can go there): as written for
  // this machine; as a launch rewrites it for the Hosts panel's nodes and for Slurm (their nodes
  // replace the design's cluster.nodes, which then do not limit the run).
  struct DesignErrors {
    QString local, hosts, slurm;
  };
  void setDesignErrors(const DesignErrors& errors);
  // cluster.nodes of the design: more than one node cannot run locally.
  void setSpecNodes(int nodes);
  // What the Hosts panel holds ("2 hosts, 4 slots"), or why it cannot be used.
  void setHostsSummary(const QString& summary, bool valid);
  Where where() const;
  void setWhere(Where w);
  QComboBox* whereBox() const { return where_; }
  bool canRun() const;  // the Run button's state (design valid, where possible, nothing running)
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
  void handleFinished(int exit_code);
  void updateRunButton();

  RunLauncher* launcher_;
  QComboBox* where_;
  QLabel* where_note_;
  DesignErrors design_errors_;
  int spec_nodes_ = 1;
  bool hosts_valid_ = false;
  QString hosts_summary_;
  QMap<QString, int> node_index_;  // console colour per remote node
  bool remote_run_ = false;        // the current (or last) run went to the hosts
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
