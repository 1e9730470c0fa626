// RunWorkspace: launcher controls and console.
#include "run/run_workspace.h"

#include <QComboBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QStyle>
#include <QVBoxLayout>

#include "common/theme.h"
#include "run/run_launcher.h"

namespace moe::gui {

RunWorkspace::RunWorkspace(RunLauncher* launcher, QWidget* parent) : QWidget(parent), launcher_(launcher) {
  auto* layout = new QVBoxLayout(this);
  auto* row = new QHBoxLayout;
  run_ = new QPushButton(style()->standardIcon(QStyle::SP_MediaPlay), "Run");
  run_->setObjectName("runButton");
  run_->setToolTip("Launch the current design on this machine (Ctrl+R)");
  stop_ = new QPushButton(style()->standardIcon(QStyle::SP_MediaStop), "Stop");
  stop_->setObjectName("stopButton");
  stop_->setEnabled(false);
  status_ = new QLabel("idle");
  status_->setObjectName("runStatus");
  QFont bold = status_->font();
  bold.setBold(true);
  status_->setFont(bold);
  progress_ = new QProgressBar;
  progress_->setRange(0, 1);
  progress_->setValue(0);
  progress_->setFormat("step %v / %m");
  eta_ = new QLabel;
  eta_->setMinimumWidth(160);
  where_ = new QComboBox;
  where_->setObjectName("runWhere");
  where_->addItem(style()->standardIcon(QStyle::SP_ComputerIcon), "This machine");
  where_->addItem(style()->standardIcon(QStyle::SP_DriveNetIcon), "Hosts (Hosts panel)");
  where_->addItem(style()->standardIcon(QStyle::SP_DriveNetIcon), "Slurm (login node: the Hosts panel's host)");
  where_->setToolTip("Where the run goes: local processes, the nodes of the Hosts panel over SSH, or a Slurm "
                     "cluster through its login node (sbatch/srun; cluster.slurm in the design)");
  row->addWidget(where_);
  row->addWidget(run_);
  row->addWidget(stop_);
  row->addSpacing(12);
  row->addWidget(status_);
  row->addWidget(progress_, 1);
  row->addWidget(eta_);
  layout->addLayout(row);
  where_note_ = new QLabel;
  where_note_->setObjectName("runWhereNote");
  where_note_->setWordWrap(true);
  layout->addWidget(where_note_);
  command_ = new QLabel;
  command_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  command_->setWordWrap(true);
  layout->addWidget(command_);
  console_ = new QPlainTextEdit;
  console_->setObjectName("console");
  console_->setReadOnly(true);
  console_->setMaximumBlockCount(20000);  // a long run keeps the recent lines, memory stays bounded
  console_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  console_->setPlaceholderText("The output of the run appears here, each rank's lines in its colour.");
  layout->addWidget(console_, 1);

  connect(run_, &QPushButton::clicked, this, &RunWorkspace::runRequested);
  connect(where_, &QComboBox::currentIndexChanged, this, [this] { updateRunButton(); });
  connect(stop_, &QPushButton::clicked, launcher_, &RunLauncher::stop);
  connect(launcher_, &RunLauncher::outputLine, this, &RunWorkspace::handleOutputLine);
  connect(launcher_, &RunLauncher::started, this, &RunWorkspace::handleStarted);
  connect(launcher_, &RunLauncher::finished, this, &RunWorkspace::handleFinished);
}

void RunWorkspace::setDesignErrors(const DesignErrors& errors) {
  design_errors_ = errors;
  updateRunButton();
}

void RunWorkspace::setSpecNodes(int nodes) {
  spec_nodes_ = nodes;
  updateRunButton();
}

void RunWorkspace::setHostsSummary(const QString& summary, bool valid) {
  hosts_summary_ = summary;
  hosts_valid_ = valid;
  updateRunButton();
}

RunWorkspace::Where RunWorkspace::where() const {
  const int i = where_->currentIndex();
  return i == 1 ? Where::hosts : i == 2 ? Where::slurm : Where::local;
}

void RunWorkspace::setWhere(Where w) { where_->setCurrentIndex(w == Where::hosts ? 1 : w == Where::slurm ? 2 : 0); }

void RunWorkspace::updateRunButton() {
  QString why;
  const QString& design_error = where() == Where::hosts   ? design_errors_.hosts
                                : where() == Where::slurm ? design_errors_.slurm
                                                          : design_errors_.local;
  const bool design_ok = design_error.isEmpty();
  if (!design_ok) why = "Fix the design first: " + design_error;
  else if (where() == Where::local && spec_nodes_ > 1)
    why = QString("The design's cluster.nodes lists %1 nodes: a local run would put every rank on this machine. "
                  "Choose \"Hosts\" to run on the nodes of the Hosts panel.").arg(spec_nodes_);
  else if (where() != Where::local && !hosts_valid_)
    why = "The Hosts panel cannot be used: " + (hosts_summary_.isEmpty() ? QString("no hosts") : hosts_summary_);
  const bool ok = why.isEmpty();
  run_->setEnabled(ok && !launcher_->isRunning());
  run_->setToolTip(ok ? (where() == Where::hosts ? "Launch the current design on the hosts over SSH (Ctrl+R)"
                                                 : "Launch the current design on this machine (Ctrl+R)")
                      : why);
  where_->setEnabled(!launcher_->isRunning());
  if (!ok && design_ok) {
    where_note_->setText(why);
    where_note_->setStyleSheet(QString("color: %1").arg(errorColor(this).name()));
  } else if (where() == Where::hosts) {
    where_note_->setText("On the hosts: " + hosts_summary_ + " · the runtime bundle is deployed once per node "
                         "(content-hashed), per-node output is prefixed with the host, Stop cancels every node.");
    where_note_->setStyleSheet({});
  } else if (where() == Where::slurm) {
    where_note_->setText("Through the Slurm login node " + hosts_summary_ + " · the bundle is deployed there, the job "
                         "is submitted with sbatch (cluster.slurm: partition, account, time limit), Slurm's states "
                         "appear below, Stop runs scancel (docs/remote.md, \"Slurm\").");
    where_note_->setStyleSheet({});
  } else {
    where_note_->clear();
  }
}

bool RunWorkspace::canRun() const { return run_->isEnabled(); }

void RunWorkspace::setStatus(const QString& text, const QColor& colour) {
  status_->setText(text);
  status_->setStyleSheet(QString("color: %1").arg(colour.name()));
}

QString RunWorkspace::statusText() const { return status_->text(); }

void RunWorkspace::setProgress(qint64 run_id, qint64 step, qint64 total_steps, const QString& store_status) {
  if (total_steps <= 0) return;
  progress_->setRange(0, int(total_steps));
  progress_->setValue(int(std::min(step + 1, total_steps)));
  if (launcher_->isRunning() && step >= 0) {
    qint64 now = launcher_->elapsedMs();
    if (first_step_ < 0) first_step_ = step, first_step_ms_ = now;
    qint64 done = step - first_step_;
    if (done > 0) {
      double per_step = double(now - first_step_ms_) / done;
      qint64 left_s = qint64(per_step * (total_steps - 1 - step) / 1000.0);
      eta_->setText(QString("run %1 · ETA %2:%3").arg(run_id).arg(left_s / 60).arg(left_s % 60, 2, 10, QChar('0')));
    }
  } else {
    eta_->setText(QString("run %1 · %2").arg(run_id).arg(store_status));
  }
}

void RunWorkspace::handleOutputLine(const QString& line, bool is_stderr) {
  // "[rank 3] …" or "rank 3: …": colour the prefix by rank so interleaved ranks stay readable.
  static const QRegularExpression rank_re(R"(^\[?rank\s*(\d+)\]?:?)");
  // "[alice@node-a:22] …": a remote node's line, coloured by node.
  static const QRegularExpression node_re(R"(^\[([^\]]+)\])");
  auto m = rank_re.match(line);
  auto n = node_re.match(line);
  QString html;
  if (!m.hasMatch() && n.hasMatch()) {
    int& index = node_index_[n.captured(1)];
    if (index == 0) index = int(node_index_.size());
    QColor c = categoryColor(index - 1, palette());
    html = QString("<span style='color:%1;font-weight:bold'>%2</span>%3")
               .arg(c.name(), n.captured(0).toHtmlEscaped(), line.mid(n.capturedLength()).toHtmlEscaped());
  } else if (m.hasMatch()) {
    QColor c = categoryColor(m.captured(1).toInt(), palette());
    html = QString("<span style='color:%1;font-weight:bold'>%2</span>%3")
               .arg(c.name(), m.captured(0).toHtmlEscaped(), line.mid(m.capturedLength()).toHtmlEscaped());
  } else {
    QString escaped = line.toHtmlEscaped();
    bool bad = line.contains("error", Qt::CaseInsensitive) || line.contains("failed", Qt::CaseInsensitive);
    html = bad ? QString("<span style='color:%1'>%2</span>").arg(errorColor(this).name(), escaped)
               : (is_stderr ? escaped : QString("<span style='color:%1'>%2</span>")
                                            .arg(palette().color(QPalette::PlaceholderText).name(), escaped));
  }
  console_->appendHtml(html);
}

void RunWorkspace::handleStarted() {
  first_step_ = -1;
  node_index_.clear();
  remote_run_ = launcher_->isRemote();
  console_->clear();
  command_->setText("<code>" + launcher_->commandLine().toHtmlEscaped() + "</code>");
  setStatus(launcher_->isRemote() ? "running on the hosts" : "running", palette().color(QPalette::Highlight));
  run_->setEnabled(false);
  where_->setEnabled(false);
  stop_->setEnabled(true);
  progress_->setValue(0);
  eta_->clear();
}

void RunWorkspace::handleFinished(int exit_code) {
  stop_->setEnabled(false);
  if (exit_code == 0) setStatus("completed", okColor(this));
  else if (exit_code == 130) setStatus("cancelled", warningColor(this));
  else if (exit_code == RunLauncher::kDetachedExitCode)
    setStatus(remote_run_ ? "detached: still running on the nodes" : "detached: still running on this machine",
              warningColor(this));
  else setStatus(QString("failed (exit code %1)").arg(exit_code), errorColor(this));
  console_->appendPlainText(QString("— %1 ended with code %2 after %3 s —")
                                .arg(remote_run_ ? "remote run" : "run")
                                .arg(exit_code).arg(launcher_->elapsedMs() / 1000.0, 0, 'f', 1));
  updateRunButton();
}

}  // namespace moe::gui
