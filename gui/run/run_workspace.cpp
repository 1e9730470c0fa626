// RunWorkspace: launcher controls and console.
#include "run/run_workspace.h"

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
  run_->setToolTip("Launch the current design locally through `moe run` (Ctrl+R)");
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
  row->addWidget(run_);
  row->addWidget(stop_);
  row->addSpacing(12);
  row->addWidget(status_);
  row->addWidget(progress_, 1);
  row->addWidget(eta_);
  layout->addLayout(row);
  command_ = new QLabel;
  command_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  command_->setWordWrap(true);
  layout->addWidget(command_);
  console_ = new QPlainTextEdit;
  console_->setObjectName("console");
  console_->setReadOnly(true);
  console_->setMaximumBlockCount(20000);  // a long run keeps the recent lines, memory stays bounded
  console_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  console_->setPlaceholderText("The output of `moe run` appears here, each rank's lines in its colour.");
  layout->addWidget(console_, 1);

  connect(run_, &QPushButton::clicked, this, &RunWorkspace::runRequested);
  connect(stop_, &QPushButton::clicked, launcher_, &RunLauncher::stop);
  connect(launcher_, &RunLauncher::outputLine, this, &RunWorkspace::handleOutputLine);
  connect(launcher_, &RunLauncher::started, this, &RunWorkspace::handleStarted);
  connect(launcher_, &RunLauncher::finished, this, &RunWorkspace::handleFinished);
}

void RunWorkspace::setRunEnabled(bool enabled, const QString& why_not) {
  run_->setEnabled(enabled && !launcher_->isRunning());
  run_->setToolTip(enabled ? "Launch the current design locally through `moe run` (Ctrl+R)"
                           : "Fix the design first: " + why_not);
}

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
  auto m = rank_re.match(line);
  QString html;
  if (m.hasMatch()) {
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
  console_->clear();
  command_->setText("<code>" + launcher_->commandLine().toHtmlEscaped() + "</code>");
  setStatus("running", palette().color(QPalette::Highlight));
  run_->setEnabled(false);
  stop_->setEnabled(true);
  progress_->setValue(0);
  eta_->clear();
}

void RunWorkspace::handleFinished(int exit_code, bool crashed) {
  stop_->setEnabled(false);
  run_->setEnabled(true);
  if (crashed) setStatus("stopped (moe run was killed)", errorColor(this));
  else if (exit_code == 0) setStatus("completed", okColor(this));
  else setStatus(QString("failed (exit code %1)").arg(exit_code), errorColor(this));
  console_->appendPlainText(QString("— moe run exited with code %1 after %2 s —")
                                .arg(exit_code).arg(launcher_->elapsedMs() / 1000.0, 0, 'f', 1));
}

}  // namespace moe::gui
