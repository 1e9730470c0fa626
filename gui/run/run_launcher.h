#pragma once
// RunLauncher: runs a design in process through remote::RunSession — the very code `moe run` runs,
// for a job on this machine and on the Hosts panel's nodes alike, so the studio and the CLI cannot
// drift. A watcher thread drives the session (record, start, ingest, poll, finish); its lines and
// its end reach the GUI thread as queued signals. reattach() follows a run left running by a closed
// studio or a detached/killed `moe run` again (`moe run --attach`).
#include <QElapsedTimer>
#include <QObject>
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
  // A run still going is detached (its job goes on; reattach later) unless stop() was asked for,
  // then its cancel is waited for (at most 15 s).
  ~RunLauncher() override;

  // The moe-runtime of a local run (remote::find_runtime(): $MOE_RUNTIME, else beside the studio).
  static QString runtimePath();

  struct Launch {
    JobSpec spec;
    QString db_path;
    std::vector<remote::HostEntry> hosts;  // empty: this machine; else these nodes (node 0 first) over SSH
    QString hostfile_text;                 // hosts: recorded with the run (reattach)
    remote::ConnectOptions connect;        // hosts
    QString bundle;                        // hosts; empty: $MOE_BUNDLE, else the build tree's runtime bundle
    int master_port = 29500;               // hosts
    bool slurm = false;                    // hosts: one entry, a Slurm login node (moe run --slurm)
  };
  // Records the run and starts it. Returns "" or why it could not start; bundling, deploy, launch
  // happen on the watcher thread (the first lines tell the progress).
  QString start(const Launch& launch);
  // Follows run `run` of db_path again from its stored resume point (a local or a remote run).
  // Returns "" or why it cannot be reattached.
  QString reattach(const QString& db_path, qint64 run, const remote::ConnectOptions& connect);

  void stop();    // cancel the job (the run ends `cancelled`)
  // Stop watching and leave the job running (its status stays `running`, the store keeps the
  // resume point); finished() comes with kDetachedExitCode.
  void detach();
  static constexpr int kDetachedExitCode = 75;
  struct Watch;  // the watcher thread of a run (run_launcher.cpp)
  bool isRunning() const { return watch_ != nullptr; }
  bool isRemote() const { return remote_; }  // the current (or last) run is on hosts
  qint64 elapsedMs() const { return timer_.isValid() ? timer_.elapsed() : 0; }
  QString commandLine() const { return command_line_; }

 Q_SIGNALS:
  void outputLine(const QString& line, bool is_stderr);
  void started();
  void runStarted(qint64 run);  // the run's rows are written: follow this one
  void finished(int exit_code);

 private:
  void begin(const QString& command_line, bool remote);
  void handleFinished(int exit_code);

  std::shared_ptr<Watch> watch_;
  bool remote_ = false;
  QElapsedTimer timer_;
  QString command_line_;
};

}  // namespace moe::gui
