#pragma once
// RunLauncher: starts `moe run SPEC --db FILE` as a child process — the very path the command line
// uses, so the studio and the CLI cannot drift — and reports its output lines and its end.
// startRemote() runs on cluster nodes instead, in process, through remote::RunSession, the same
// code `moe run --hosts` runs (run_launcher_remote.cpp): a watcher thread drives the session, the
// nodes' workers deliver their lines, and everything reaches the GUI thread as queued signals.
// reattachRemote() follows such a run again after the studio closed (`moe run --attach`).
#include <QElapsedTimer>
#include <QObject>
#include <QProcess>
#include <QTemporaryDir>
#include <memory>
#include <vector>

#include "connect_options.h"
#include "hostfile.h"
#include "job_spec.h"

namespace moe::gui {

class RunLauncher : public QObject {
  Q_OBJECT
 public:
  explicit RunLauncher(QObject* parent = nullptr);
  ~RunLauncher() override;

  // $MOE_CLI, else `moe` beside moe-studio's build folder (../cli/moe) or install folder, else PATH.
  static QString cliPath();

  // Writes the spec JSON to a temporary file and starts the CLI. Returns "" or the reason it could not.
  QString start(const QByteArray& spec_json, const QString& db_path, const QStringList& extra_args = {});
  // Runs `spec` on `hosts` (node 0 first), recording into db_path. Returns "" or why it could not start;
  // bundling, deploy and launch happen on a worker thread (the first lines tell the progress).
  struct RemoteLaunch {
    JobSpec spec;
    QString db_path;
    std::vector<remote::HostEntry> hosts;
    QString hostfile_text;  // recorded with the run (reattach)
    remote::ConnectOptions connect;
    QString bundle;         // empty: $MOE_BUNDLE, else the build tree's runtime bundle
    int master_port = 29500;
  };
  QString startRemote(const RemoteLaunch& launch);
  // Follows remote run `run` of db_path again (left running by a closed studio or a killed
  // `moe run`): the path of `moe run --attach`, ingesting from the stored resume point on a worker
  // thread. Hosts: the run's recorded hostfile. Returns "" or why it could not start.
  QString reattachRemote(const QString& db_path, qint64 run, const remote::ConnectOptions& connect);
  bool isRemote() const { return remote_ != nullptr; }

  void stop();  // SIGTERM (moe run records `cancelled`), then SIGKILL after a grace period; remote: cancel every node
  // Remote: stop watching and leave the job running on the nodes (its status stays `running`, the
  // store keeps the resume point); finished() comes with kDetachedExitCode. Destroying the launcher
  // does the same unless stop() was asked for first.
  void detachRemote();
  static constexpr int kDetachedExitCode = 75;
  struct Remote;  // the watcher thread of a remote run (run_launcher_remote.cpp)
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
  void handleRemoteFinished(int exit_code);
  void stopRemote();
  void stopRemoteForExit();  // cancel (when stop() was asked for) or detach, and wait (bounded)

  std::shared_ptr<Remote> remote_;

  QProcess* process_ = nullptr;
  std::unique_ptr<QTemporaryDir> spec_dir_;
  QByteArray pending_[2];
  QElapsedTimer timer_;
  QString command_line_;
};

}  // namespace moe::gui
