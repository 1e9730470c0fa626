// RunLauncher: a watcher thread drives a remote::RunSession (record, start, ingest, final status:
// the code of `moe run`, `moe run --hosts` and `moe run --attach`) and posts lines and the end to
// the GUI thread. Detaching leaves the job running, on this machine or on the nodes.
#include "run/run_launcher.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "error.h"
#include "run_session.h"
#include "spec_validation.h"

namespace moe::gui {

struct RunLauncher::Watch {
  std::mutex mu;
  std::condition_variable cv;
  RunLauncher* owner = nullptr;     // null once the launcher is gone: lines are dropped
  std::atomic<bool> stop{false};    // cancel the job
  std::atomic<bool> detach{false};  // stop watching, leave the job running
  bool done = false;
  std::thread thread;

  // Queues a call to the launcher on the GUI thread (dropped once the launcher is gone).
  void post(std::function<void(RunLauncher*)> f) {
    std::lock_guard lk(mu);
    if (!owner) return;
    RunLauncher* o = owner;
    QMetaObject::invokeMethod(o, [o, f = std::move(f)] { f(o); }, Qt::QueuedConnection);
  }
  void line(const QString& text) {  // as stderr, like the CLI's
    post([text](RunLauncher* o) { Q_EMIT o->outputLine(text, true); });
  }
  void finished(int code) {
    {
      std::lock_guard lk(mu);
      done = true;
    }
    cv.notify_all();
    post([code](RunLauncher* o) { o->handleFinished(code); });
  }
};

namespace {

// The body of a run's thread: `body` returns the exit code; an error becomes one console line and
// exit code 1. Either way the launcher hears that the run finished.
void run_thread(RunLauncher::Watch& w, const std::function<int()>& body) {
  int code = 1;
  try {
    code = body();
  } catch (const std::exception& e) {
    w.line("moe run: error: " + QString::fromUtf8(e.what()));
    code = 1;
  }
  w.finished(code);
}

// Drives a started session until it ends (cancelled on stop, detached on detach) and returns the
// exit code `moe run` would have.
int watch_session(RunLauncher::Watch& w, remote::RunSession& session) {
  bool cancel_sent = false;
  const QString where = session.local() ? QString("on this machine")
                                        : QString("on the nodes (%1 node(s))").arg(session.host_labels().size());
  while (!session.poll(std::chrono::milliseconds(200))) {
    if (w.detach && !w.stop) {
      session.detach();
      w.line(QString("moe run: detached from run %1: job %2 keeps running %3 (reattach from the Run menu)")
                 .arg(QString::number(session.run_id()), QString::fromStdString(session.job_id()), where));
      return RunLauncher::kDetachedExitCode;
    }
    if (w.stop && !cancel_sent) {
      w.line("moe run: cancelling the job " + where);
      session.cancel();
      cancel_sent = true;
    }
  }
  const remote::RunOutcome out = session.finish();
  // One arg() call: a chained .arg() would rewrite a "%2" inside the reason.
  w.line(QString("moe run: run %1 %2%3: %4 steps, final loss %5%6")
             .arg(QString::number(out.run_id), QString::fromStdString(out.status),
                  session.local() ? QString() : QString(" on %1 node(s)").arg(session.host_labels().size()),
                  QString::number(out.steps),
                  std::isnan(out.last_loss) ? QString("-") : QString::number(out.last_loss, 'f', 4),
                  out.reason.empty() ? QString() : "; " + QString::fromStdString(out.reason)));
  return out.status == "completed" ? 0 : out.status == "cancelled" ? 130 : 1;
}

remote::RunCallbacks post_callbacks(const std::shared_ptr<RunLauncher::Watch>& w) {
  remote::RunCallbacks cb;
  cb.on_log_line = [w](int, const std::string& line) { w->line(QString::fromStdString(line)); };
  cb.on_node_event = [w](int, const std::string& what) { w->line("moe run: " + QString::fromStdString(what)); };
  return cb;
}

}  // namespace

RunLauncher::RunLauncher(QObject* parent) : QObject(parent) {}

RunLauncher::~RunLauncher() {
  if (!watch_) return;
  std::shared_ptr<Watch> w = watch_;
  if (!w->stop) w->detach = true;  // closing the studio leaves the job running unless Stop was asked for
  std::unique_lock lk(w->mu);
  w->owner = nullptr;  // no slot may run from here on: the workspace and window that listen are going
  // Cancelling confirms that nothing of the job is left (a few seconds), detaching stores what was
  // read; a node that does not answer is not waited for longer: the thread is left to finish on
  // its own (the job directory records the pid).
  const bool done = w->cv.wait_for(lk, std::chrono::seconds(15), [&] { return w->done; });
  lk.unlock();
  if (done) w->thread.join();
  else w->thread.detach();
}

QString RunLauncher::runtimePath() {
  try {
    return QString::fromStdString(remote::find_runtime().string());
  } catch (const std::exception&) {
    return {};
  }
}

void RunLauncher::begin(const QString& command_line, bool remote) {
  command_line_ = command_line;
  remote_ = remote;
  timer_.start();
}

QString RunLauncher::start(const Launch& launch) {
  if (isRunning()) return "a run is already going: stop it first";
  remote::RunRequest req;
  req.db = launch.db_path.toStdString();
  req.spec = launch.spec;
  req.recorder = "moe-studio";
  // Refuse what cannot run before anything is recorded, with the library's message.
  try {
    if (launch.hosts.empty()) {
      req.runtime = remote::find_runtime();
    } else {
      if (launch.slurm) {
        if (launch.hosts.size() != 1) throw Error("Slurm: the Hosts panel must list one host, the login node");
        throw_if_invalid(validate_spec(remote::spec_for_slurm(launch.spec)));
        req.slurm = true;
        req.slurm_bin = qEnvironmentVariable("MOE_SLURM_BIN").toStdString();  // tests: the Slurm stand-ins
      } else {
        remote::check_hosts_against_spec(launch.hosts, launch.spec, "Hosts panel");
      }
      req.hosts = launch.hosts;
      req.hostfile_text = launch.hostfile_text.toStdString();
      req.hostfile_name = "Hosts panel";
      req.master_port = launch.master_port;
      req.connect = launch.connect;
    }
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
  auto w = std::make_shared<Watch>();
  w->owner = this;
  watch_ = w;
  QString command = launch.hosts.empty() ? QString("on this machine: %1").arg(QString::fromStdString(req.runtime.string()))
                    : launch.slurm       ? QString("Slurm run through the login node ")
                                         : QString("remote run on %1 node(s): ").arg(launch.hosts.size());
  for (const auto& h : launch.hosts) command += QString::fromStdString(h.label()) + " ";
  begin(command, !launch.hosts.empty());
  const std::string bundle = launch.bundle.toStdString();
  w->thread = std::thread([w, req, bundle]() mutable {
    run_thread(*w, [&]() -> int {
      if (!req.hosts.empty()) {
        std::string given = bundle;
        if (given.empty()) given = qEnvironmentVariable("MOE_BUNDLE").toStdString();
        req.bundle = remote::locate_bundle(given, remote::find_runtime(), remote::default_bundle_script(),
                                           [&](const std::string& what) { w->line("moe run: " + QString::fromStdString(what)); });
      }
      if (w->stop || w->detach) {
        w->line("moe run: stopped before launch");
        return 130;
      }
      auto session = remote::RunSession::create(req, post_callbacks(w));
      const qint64 id = session->run_id();
      w->post([id](RunLauncher* o) { Q_EMIT o->runStarted(id); });
      // One arg() call: a chained .arg() would rewrite a "%4" in the store's path.
      w->line(QString("moe run: run %1, recording into %2 (%3)")
                  .arg(QString::number(id), QString::fromStdString(req.db),
                       session->local() ? "job in " + QString::fromStdString(session->local_job_dir())
                                        : QString("job %1 on %2 node(s), bundle %3")
                                              .arg(QString::fromStdString(session->job_id()), QString::number(req.hosts.size()),
                                                   QString::fromStdString(req.bundle.string()))));
      session->start();
      return watch_session(*w, *session);
    });
  });
  Q_EMIT started();
  return {};
}

QString RunLauncher::reattach(const QString& db_path, qint64 run, const remote::ConnectOptions& connect) {
  if (isRunning()) return "a run is already going: stop it first";
  // Reading the rows and parsing the recorded hostfile touch no network: done here, so a run that
  // cannot be reattached says why at once.
  std::shared_ptr<remote::RunSession> session;
  auto w = std::make_shared<Watch>();
  w->owner = this;
  try {
    session = remote::RunSession::reattach(db_path.toStdString(), run, {}, connect, post_callbacks(w), "moe-studio");
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
  watch_ = w;
  QString command = session->local() ? QString("reattached to run %1 on this machine").arg(run)
                                     : QString("reattached to remote run %1 on %2 node(s): ").arg(run).arg(session->host_labels().size());
  if (!session->local())
    for (const auto& h : session->host_labels()) command += QString::fromStdString(h) + " ";
  begin(command, !session->local());
  w->thread = std::thread([w, db_path, session] {
    run_thread(*w, [&]() -> int {
      // The same words as a launch's "run N, recording": the console and the tests read it.
      // One arg() call: a chained .arg() would rewrite a "%4" in the store's path.
      w->line(QString("moe run: run %1, recording into %2 (reattached to job %3 from byte %4 of its metrics)")
                  .arg(QString::number(session->run_id()), db_path, QString::fromStdString(session->job_id()),
                       QString::number(static_cast<qulonglong>(session->row().metrics_offset))));
      session->start();
      return watch_session(*w, *session);
    });
  });
  Q_EMIT started();
  Q_EMIT runStarted(run);
  return {};
}

void RunLauncher::stop() {
  if (watch_) watch_->stop = true;
}

void RunLauncher::detach() {
  if (watch_) watch_->detach = true;
}

void RunLauncher::handleFinished(int exit_code) {
  if (watch_ && watch_->thread.joinable()) watch_->thread.join();  // it has posted its last line
  watch_.reset();
  Q_EMIT finished(exit_code);
}

}  // namespace moe::gui
