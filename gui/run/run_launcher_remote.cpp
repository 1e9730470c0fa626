// RunLauncher's remote half: a watcher thread drives a remote::RunSession (bundle, deploy, launch,
// ingest, final status: the code of `moe run --hosts`, or of `moe run --attach` for reattachRemote())
// and posts lines and the end to the GUI thread. Detaching leaves the job running on the nodes.
#include <QDir>
#include <QFileInfo>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "run/run_launcher.h"
#include "run_session.h"

namespace moe::gui {

struct RunLauncher::Remote {
  std::mutex mu;
  std::condition_variable cv;
  RunLauncher* owner = nullptr;  // null once the launcher is gone: lines are dropped
  std::atomic<bool> stop{false};    // cancel the job on every node
  std::atomic<bool> detach{false};  // stop watching, leave the job running
  bool done = false;
  std::thread thread;

  // Queues a line to the GUI thread (as stderr, like the CLI's).
  void post(const QString& line) {
    std::lock_guard lk(mu);
    if (!owner) return;
    RunLauncher* o = owner;
    QMetaObject::invokeMethod(o, [o, line] { Q_EMIT o->outputLine(line, true); }, Qt::QueuedConnection);
  }
  void post_finished(int code) {
    std::lock_guard lk(mu);
    done = true;
    cv.notify_all();
    if (!owner) return;
    RunLauncher* o = owner;
    QMetaObject::invokeMethod(o, [o, code] { o->handleRemoteFinished(code); }, Qt::QueuedConnection);
  }
};

namespace {

// The runtime the bundle is made from: $MOE_RUNTIME, else the build tree beside the moe CLI.
std::filesystem::path runtime_exe() {
  const QString env = qEnvironmentVariable("MOE_RUNTIME");
  if (!env.isEmpty()) return env.toStdString();
  QFileInfo cli(RunLauncher::cliPath());
  const QString path = QDir(cli.absolutePath()).filePath("../runtime/app/moe-runtime");
  const QString canonical = QFileInfo(path).canonicalFilePath();  // "" when it does not exist
  return (canonical.isEmpty() ? QDir::cleanPath(path) : canonical).toStdString();
}


// The body of a run's thread: `body` returns the exit code; an error becomes one console line and
// exit code 1. Either way the launcher hears that the run finished.
void finish_run(RunLauncher::Remote& r, const std::function<int()>& body) {
  int code = 1;
  try {
    code = body();
  } catch (const std::exception& e) {
    r.post("moe run: error: " + QString::fromUtf8(e.what()));
    code = 1;
  }
  r.post_finished(code);
}

// Drives a started session until it ends (cancelled on stop, detached on detach) and returns the
// launcher's exit code.
int watch_session(RunLauncher::Remote& r, remote::RunSession& session, size_t nodes) {
  bool cancel_sent = false;
  while (!session.poll(std::chrono::milliseconds(200))) {
    if (r.detach && !r.stop) {
      session.detach();
      r.post(QString("moe run: detached from run %1: job %2 keeps running on the nodes (reattach from the Run menu)")
                 .arg(session.run_id())
                 .arg(QString::fromStdString(session.job_id())));
      return RunLauncher::kDetachedExitCode;
    }
    if (r.stop && !cancel_sent) {
      r.post("moe run: cancelling the job on every node");
      session.cancel();
      cancel_sent = true;
    }
  }
  const remote::RunOutcome out = session.finish();
  r.post(QString("moe run: run %1 %2 on %3 node(s): %4 steps, final loss %5%6")
             .arg(out.run_id)
             .arg(QString::fromStdString(out.status))
             .arg(nodes)
             .arg(out.steps)
             .arg(std::isnan(out.last_loss) ? QString("-") : QString::number(out.last_loss, 'f', 4))
             .arg(out.reason.empty() ? QString() : "; " + QString::fromStdString(out.reason)));
  return out.status == "completed" ? 0 : out.status == "cancelled" ? 130 : 1;
}

remote::RunCallbacks post_callbacks(const std::shared_ptr<RunLauncher::Remote>& r) {
  remote::RunCallbacks cb;
  cb.on_log_line = [r](int, const std::string& line) { r->post(QString::fromStdString(line)); };
  cb.on_node_event = [r](int, const std::string& what) { r->post("moe run: " + QString::fromStdString(what)); };
  return cb;
}

}  // namespace

QString RunLauncher::startRemote(const RemoteLaunch& launch) {
  if (isRunning()) return "a run is already going: stop it first";
  if (launch.hosts.empty()) return "no hosts: add them in the Hosts panel";
  // Refuse a misfit before anything is recorded, with the library's message.
  try {
    remote::check_hosts_against_spec(launch.hosts, launch.spec, "Hosts panel");
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
  auto r = std::make_shared<Remote>();
  r->owner = this;
  remote_ = r;
  command_line_ = QString("remote run on %1 node(s): ").arg(launch.hosts.size());
  for (const auto& h : launch.hosts) command_line_ += QString::fromStdString(h.label()) + " ";
  timer_.start();

  r->thread = std::thread([r, launch] {
    finish_run(*r, [&]() -> int {
      std::string given = launch.bundle.toStdString();
      if (given.empty()) given = qEnvironmentVariable("MOE_BUNDLE").toStdString();
      remote::RunRequest req;
      req.bundle = remote::locate_bundle(given, runtime_exe(), remote::default_bundle_script(),
                                         [&](const std::string& what) { r->post("moe run: " + QString::fromStdString(what)); });
      req.db = launch.db_path.toStdString();
      req.spec = launch.spec;
      req.hosts = launch.hosts;
      req.hostfile_text = launch.hostfile_text.toStdString();
      req.hostfile_name = "Hosts panel";
      req.master_port = launch.master_port;
      req.connect = launch.connect;
      if (r->stop || r->detach) {
        r->post("moe run: stopped before launch");
        return 130;
      }
      auto session = remote::RunSession::create(req, post_callbacks(r));
      // The same line as the CLI's: the main window follows this run id.
      r->post(QString("moe run: run %1, job %2 on %3 node(s), recording into %4 (bundle %5)")
                  .arg(session->run_id())
                  .arg(QString::fromStdString(session->job_id()))
                  .arg(req.hosts.size())
                  .arg(launch.db_path, QString::fromStdString(req.bundle.string())));
      session->start();
      return watch_session(*r, *session, req.hosts.size());
    });
  });
  Q_EMIT started();
  return {};
}

QString RunLauncher::reattachRemote(const QString& db_path, qint64 run, const remote::ConnectOptions& connect) {
  if (isRunning()) return "a run is already going: stop it first";
  // Reading the rows and parsing the recorded hostfile touch no network: done here, so a run that
  // cannot be reattached says why at once.
  std::unique_ptr<remote::RunSession> session;
  auto r = std::make_shared<Remote>();
  r->owner = this;
  try {
    session = remote::RunSession::reattach(db_path.toStdString(), run, {}, connect, post_callbacks(r));
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
  remote_ = r;
  command_line_ = QString("reattached to remote run %1 on %2 node(s): ").arg(run).arg(session->host_labels().size());
  for (const auto& h : session->host_labels()) command_line_ += QString::fromStdString(h) + " ";
  timer_.start();
  r->thread = std::thread([r, db_path, s = std::shared_ptr<remote::RunSession>(std::move(session))] {
    finish_run(*r, [&]() -> int {
      // The same words as the CLI's "run N, recording": the main window follows this run id.
      // One arg() call: a chained .arg() would rewrite a "%4" in the store's path.
      r->post(QString("moe run: run %1, recording into %2 (reattached to job %3 from byte %4 of its metrics)")
                  .arg(QString::number(s->run_id()), db_path, QString::fromStdString(s->job_id()),
                       QString::number(static_cast<qulonglong>(s->row().metrics_offset))));
      s->start();
      return watch_session(*r, *s, s->host_labels().size());
    });
  });
  Q_EMIT started();
  return {};
}

void RunLauncher::stopRemote() {
  if (remote_) remote_->stop = true;
}

void RunLauncher::detachRemote() {
  if (remote_) remote_->detach = true;
}

void RunLauncher::stopRemoteForExit() {
  if (!remote_) return;
  std::shared_ptr<Remote> r = remote_;
  if (!r->stop) r->detach = true;  // closing the studio leaves the job running unless Stop was asked for
  std::unique_lock lk(r->mu);
  r->owner = nullptr;
  // Cancelling confirms on every node (a few seconds), detaching stores what was read; a node that
  // does not answer is not waited for longer: the thread is left to finish on its own (its job
  // directory records the pid).
  const bool done = r->cv.wait_for(lk, std::chrono::seconds(15), [&] { return r->done; });
  lk.unlock();
  if (done) r->thread.join();
  else r->thread.detach();
  remote_.reset();
}

void RunLauncher::handleRemoteFinished(int exit_code) {
  if (remote_ && remote_->thread.joinable()) remote_->thread.join();  // it has posted its last line
  remote_.reset();
  Q_EMIT finished(exit_code, false);
}

}  // namespace moe::gui
