// gui_bench [--seconds S] [--layers L] [--experts E] [--ranks R] [--rate STEPS_PER_S] [--runs N] [--screenshot PNG]
//    (--runs N: N short finished runs recorded before the live one, a store used for months)
// gui_bench --open DB [--seconds S] [--screenshot PNG] [--live-writer 1]: the studio on an existing (large) run store
//    instead — Live follows its newest run for S/2 seconds, then Compare shows up to 10 of its runs
//    for S/2 seconds, with the same event-loop probe (issue 16: p99 < 16 ms on a 100,000-step
//    store); also each plot's replot, Live's apply, and Compare's selection on the GUI thread and
//    until its worker filled the summary. The screenshot is of Compare.
//    With --live-writer 1 a writer thread records a new 64 × 256 run into DB at 10 steps/s while
//    Compare shows the others (a training run beside a comparison: every poll lists the runs
//    anew); with --live-writer 2 Compare shows that run too. The run is deleted afterwards.
// 1. Live: a writer thread ingests a synthetic stream (core/store/synthetic_stream.h) into a fresh
//    run store at the given rate while the studio's Live workspace follows the run. A 5 ms timer on
//    the GUI thread measures event-loop latency (how late it fires); each update's apply time and
//    each plot's replot time are recorded.
// 2. Design: 200 edits of train.micro_batch on the DeepSeek-V3 preset, through the spin box as a
//    user would: time of core's validation + plan, and of the whole edit (forms, grid, estimates).
#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QSlider>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <utility>
#include <thread>
#include <vector>

#include "common/qcp.h"
#include "compare/compare_workspace.h"
#include "run_reader.h"
#include "design/design_workspace.h"
#include "design/spec_model.h"
#include "ingestor.h"
#include "live/live_workspace.h"
#include "main_window.h"
#include "run_store.h"
#include "synthetic_stream.h"

using namespace moe;
using namespace moe::gui;

namespace {
// Times every event the GUI thread dispatches (outermost only), so a long event-loop turn can be
// named: the slowest are printed with their receiver and event type.
class TimedApplication : public QApplication {
 public:
  using QApplication::QApplication;
  struct Slow {
    double ms;
    QString receiver;
    int type;
  };
  std::vector<Slow> slowest;  // the 5 slowest since the last take()
  bool notify(QObject* receiver, QEvent* event) override {
    if (depth_ > 0 || QThread::currentThread() != thread()) return QApplication::notify(receiver, event);
    ++depth_;
    QElapsedTimer t;
    t.start();
    const int type = event->type();  // the event may be gone after dispatch
    const bool done = QApplication::notify(receiver, event);
    --depth_;
    const double ms = t.nsecsElapsed() / 1e6;
    if (slowest.size() < 5 || ms > slowest.back().ms) {
      QString name = receiver->metaObject()->className();
      if (!receiver->objectName().isEmpty()) name += " " + receiver->objectName();
      slowest.push_back({ms, name, type});
      std::sort(slowest.begin(), slowest.end(), [](const Slow& a, const Slow& b) { return a.ms > b.ms; });
      if (slowest.size() > 5) slowest.pop_back();
    }
    return done;
  }
  std::vector<Slow> take() { return std::exchange(slowest, {}); }

 private:
  int depth_ = 0;
};

void print_slowest(const char* phase, const std::vector<TimedApplication::Slow>& slow) {
  std::printf("%s, slowest event dispatches:", phase);
  for (const auto& s : slow) std::printf(" %.1f ms %s (event %d);", s.ms, qPrintable(s.receiver), s.type);
  std::printf("\n");
}

TimedApplication* timed_app() { return static_cast<TimedApplication*>(QCoreApplication::instance()); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size() - 1) + 0.5));
  return v[i];
}
void row(const char* what, const std::vector<double>& v, const char* unit, const char* target) {
  std::printf("| %-38s | %6zu | %8.2f | %8.2f | %8.2f | %-4s | %-10s |\n", what, v.size(), percentile(v, 50),
              percentile(v, 99), v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()), unit, target);
}
// A 5 ms timer on the GUI thread: lateness_ms gets how late each tick fired (event-loop latency).
struct LatencyProbe {
  std::vector<double> lateness_ms;
  QElapsedTimer clock;
  qint64 last = 0;
  QTimer timer;
  LatencyProbe() {
    clock.start();
    timer.setTimerType(Qt::PreciseTimer);
    QObject::connect(&timer, &QTimer::timeout, [this] {
      const qint64 now = clock.nsecsElapsed();
      if (last) lateness_ms.push_back(std::max(0.0, (now - last) / 1e6 - 5.0));
      last = now;
    });
    timer.start(5);
  }
};

// Runs the event loop for `ms` under a LatencyProbe.
std::vector<double> probe_for(int ms) {
  LatencyProbe probe;
  QEventLoop loop;
  QTimer::singleShot(ms, &loop, &QEventLoop::quit);
  loop.exec();
  return probe.lateness_ms;
}

// The bench's stream: 64 layers × 256 experts with 8 ranks' a2a (issue 16's DeepSeek-scale run).
store::SyntheticShape deepseek_scale_shape(const std::string& name) {
  store::SyntheticShape shape;
  shape.layers = 64;
  shape.experts = 256;
  shape.ranks = 8;
  shape.tokens = 8192;
  shape.top_k = 8;
  shape.name = name;
  return shape;
}

// Records a synthetic 64 × 256, 8-rank run into `db` at 10 steps/s until `stop`; returns its id
// through `run_id` (deleted by the caller).
void write_live_run(const QString& db, std::atomic<bool>& stop, std::atomic<int64_t>& run_id) {
  const store::SyntheticShape shape = deepseek_scale_shape("gui_bench live writer");
  int64_t id = 0;
  {
    store::RunStore st(db.toStdString());
    id = st.create_run(shape.name);
  }
  run_id = id;
  store::Ingestor ing(db.toStdString(), id);
  ing.feed(store::synthetic_run_start(shape));
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 1; !stop; ++s) {
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(100 * s));
    ing.feed(store::synthetic_step(shape, s));
  }
  ing.feed(store::synthetic_run_end(shape));
  ing.finish();
}

int bench_open(const QString& db, double seconds, const QString& screenshot, int live_writer) {
  std::vector<qint64> ids;
  for (const auto& r : store::RunReader(db.toStdString()).list_runs())
    if (ids.size() < 10) ids.push_back(r.id);  // newest first
  if (ids.empty()) {
    std::fprintf(stderr, "gui_bench: %s holds no run\n", qPrintable(db));
    return 1;
  }
  const store::RunInfo newest = store::RunReader(db.toStdString()).run(ids.front());
  MainWindow window(db);
  window.resize(1440, 900);
  window.show();
  std::vector<double> replot_ms, apply_ms;
  std::map<QString, std::vector<double>> replot_by_plot;  // where a stall's time goes
  for (QCustomPlot* p : window.live()->plots())
    QObject::connect(p, &QCustomPlot::afterReplot, [&replot_ms, &replot_by_plot, p] {
      replot_ms.push_back(p->replotTime());
      replot_by_plot[p->objectName()].push_back(p->replotTime());
    });
  QObject::connect(window.live(), &LiveWorkspace::updated, [&] { apply_ms.push_back(window.live()->lastApplyMs()); });
  window.workspaces()->setCurrentWidget(window.live());
  window.live()->followRun(ids.front());
  timed_app()->take();
  const auto live = probe_for(int(seconds * 500));
  const auto live_slowest = timed_app()->take();
  const int64_t shown = window.live()->stepsShown();
  const auto live_replots = replot_ms;
  const auto live_by_plot = replot_by_plot;
  const auto live_applies = apply_ms;
  window.workspaces()->setCurrentWidget(window.compare());
  QElapsedTimer select_timer;  // selecting runs refreshes Compare synchronously, before the probe runs
  std::vector<double> shares_ms;  // until the worker's all-to-all shares fill the summary
  QStandardItemModel* summary = window.compare()->summaryModel();
  QObject::connect(summary, &QStandardItemModel::dataChanged, [&] {
    for (int r = 0; r < summary->rowCount(); ++r)
      if (!summary->item(r, 5) || summary->item(r, 5)->text() == "…") return;
    if (shares_ms.empty() && summary->rowCount() > 0) shares_ms.push_back(select_timer.nsecsElapsed() / 1e6);
  });
  std::vector<double> curves_ms;  // until the worker's curves are drawn
  QObject::connect(window.compare(), &CompareWorkspace::curvesDrawn, [&] {
    if (curves_ms.empty()) curves_ms.push_back(select_timer.nsecsElapsed() / 1e6);
  });
  std::atomic<bool> stop_writer{false};
  std::atomic<int64_t> writer_run{0};
  std::thread writer;
  QList<qint64> compared(ids.begin(), ids.end());
  if (live_writer) {
    writer = std::thread([&] { write_live_run(db, stop_writer, writer_run); });
    if (live_writer == 2) {  // the training run is compared too: its curve grows at every poll
      QElapsedTimer wait;
      wait.start();
      while (window.compare()->runsProxy()->rowCount() <= int(ids.size()) && wait.elapsed() < 10000)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
      compared.prepend(writer_run);
    }
  }
  select_timer.start();
  window.compare()->selectRuns(compared);
  const std::vector<double> select_ms{select_timer.nsecsElapsed() / 1e6};
  const auto compare = probe_for(int(seconds * 500));
  const auto compare_slowest = timed_app()->take();
  if (writer.joinable()) {
    stop_writer = true;
    writer.join();
    store::RunStore(db.toStdString()).delete_run(writer_run);
  }
  std::vector<double> smoothing_ms;  // each step of the smoothing slider, as a drag makes them
  if (auto* smoothing = window.compare()->findChild<QSlider*>()) {
    for (int v = 50; v < 70; ++v) {
      QElapsedTimer t;
      t.start();
      smoothing->setValue(v);
      smoothing_ms.push_back(t.nsecsElapsed() / 1e6);
    }
  }
  if (!screenshot.isEmpty() && !window.grab().save(screenshot))
    std::fprintf(stderr, "gui_bench: %s: cannot be written\n", qPrintable(screenshot));
  std::printf("gui_bench --open: %s, newest run %lld: %lld steps, %lld layers x %lld experts; Live showed %lld steps;"
              " Compare: %d run(s)%s\n",
              qPrintable(db), (long long)newest.id, (long long)newest.n_steps, (long long)newest.n_layers,
              (long long)newest.n_experts, (long long)shown, int(compared.size()),
              live_writer == 1 ? ", beside a run recorded at 10 steps/s"
              : live_writer == 2 ? ", one of them recorded at 10 steps/s meanwhile" : "");
  std::printf("| %-38s | %6s | %8s | %8s | %8s | %-4s | %-10s |\n", "measure", "n", "p50", "p99", "max", "unit", "target");
  row("Live: GUI event-loop latency (5 ms probe)", live, "ms", "p99 < 16");
  row("Live: replot, one plot", live_replots, "ms", "");
  for (const auto& [name, v] : live_by_plot) row(qPrintable("  replot " + name), v, "ms", "");
  row("Live: applying an update (GUI thread)", live_applies, "ms", "");
  row("Compare: GUI event-loop latency", compare, "ms", "p99 < 16");
  row("Compare: selecting the runs (GUI thread)", select_ms, "ms", "");
  row("Compare: curves drawn (read on a worker)", curves_ms, "ms", "");
  row("Compare: summary complete (worker thread)", shares_ms, "ms", "");
  row("Compare: redraws while shown", {double(window.compare()->redrawCount())}, "", "");
  row("Compare: one step of the smoothing slider", smoothing_ms, "ms", "");
  print_slowest("Live", live_slowest);
  print_slowest("Compare (after the selection)", compare_slowest);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  qputenv("MOE_STUDIO_NO_PROMPTS", "1");
  QStandardPaths::setTestModeEnabled(true);
  TimedApplication app(argc, argv);
  double seconds = 30, rate = 10;
  store::SyntheticShape shape = deepseek_scale_shape("bench-64x256");
  QString screenshot, open_db;
  int live_writer = 0;
  int64_t past_runs = 0;  // finished runs recorded before the live one (a store used for months)
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--open") {
      open_db = argv[i + 1];
      continue;
    }
    if (k == "--screenshot") {  // the Live view at the end of the stream, as a PNG
      screenshot = argv[i + 1];
      continue;
    }
    double v = std::atof(argv[i + 1]);
    if (k == "--live-writer") live_writer = int(v);
    else if (k == "--runs") past_runs = int64_t(v);
    else if (k == "--seconds") seconds = v;
    else if (k == "--rate") rate = v;
    else if (k == "--layers") shape.layers = int64_t(v);
    else if (k == "--experts") shape.experts = int64_t(v);
    else if (k == "--ranks") shape.ranks = int64_t(v);
    else {
      std::fprintf(stderr, "gui_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (!open_db.isEmpty()) return bench_open(open_db, seconds, screenshot, live_writer);
  shape.steps = int64_t(seconds * rate);
  shape.run_end = true;

  QTemporaryDir dir;
  const QString db = dir.filePath("bench.sqlite");
  int64_t run_id = 0;
  if (past_runs > 0) {
    store::SyntheticShape past{.steps = 5, .layers = 2, .experts = 8, .ranks = 2};
    past.run_end = true;
    for (int64_t r = 0; r < past_runs; ++r) {
      past.name = "past run " + std::to_string(r);
      int64_t id = 0;
      {
        store::RunStore st(db.toStdString());
        id = st.create_run(past.name);
      }
      store::Ingestor ing(db.toStdString(), id);
      ing.feed(store::synthetic_stream(past));
      ing.finish();
    }
  }
  {
    store::RunStore st(db.toStdString());
    run_id = st.create_run(shape.name);
  }
  MainWindow window(db);
  window.resize(1440, 900);
  window.show();
  window.workspaces()->setCurrentWidget(window.live());
  window.live()->followRun(run_id);

  timed_app()->take();
  LatencyProbe probe;

  std::vector<double> apply_ms, replot_ms, read_ms;
  QObject::connect(window.poller(), &StorePoller::liveUpdate, [&](const LiveUpdate& u) { read_ms.push_back(u.read_ms); });
  QObject::connect(window.live(), &LiveWorkspace::updated, [&] { apply_ms.push_back(window.live()->lastApplyMs()); });
  // Replot times: QCustomPlot measures each replot; sample after every queued replot ran.
  std::map<QString, std::vector<double>> replot_by_plot;  // where the replot time goes
  for (QCustomPlot* p : window.live()->plots())
    QObject::connect(p, &QCustomPlot::afterReplot, [&replot_ms, &replot_by_plot, p] {
      replot_ms.push_back(p->replotTime());
      replot_by_plot[p->objectName()].push_back(p->replotTime());
    });

  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    store::Ingestor ing(db.toStdString(), run_id);
    ing.feed(store::synthetic_run_start(shape));
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 1; s <= shape.steps; ++s) {
      std::this_thread::sleep_until(t0 + std::chrono::microseconds(int64_t(1e6 * double(s) / rate)));
      ing.feed(store::synthetic_step(shape, s));
    }
    ing.feed(store::synthetic_run_end(shape));
    ing.finish();
    writer_done = true;
  });
  QElapsedTimer wall;
  wall.start();
  // A real event loop (as app.exec() in the studio): a spinning processEvents() loop would take a
  // whole core from the writer and the poller on this 2-core machine.
  QEventLoop loop;
  QTimer done_check;
  QObject::connect(&done_check, &QTimer::timeout, [&] {
    if ((writer_done && window.live()->runStatus() == "completed") || wall.elapsed() > qint64(seconds * 1000) + 60000)
      loop.quit();
  });
  done_check.start(50);
  loop.exec();
  writer.join();
  probe.timer.stop();
  const auto live_slowest = timed_app()->take();
  const std::vector<double>& lateness_ms = probe.lateness_ms;
  const int64_t shown = window.live()->stepsShown();
  if (!screenshot.isEmpty()) {
    app.processEvents();
    if (!window.grab().save(screenshot)) std::fprintf(stderr, "gui_bench: %s: cannot be written\n", qPrintable(screenshot));
  }

  // Design: per-edit recompute on DeepSeek-V3.
  window.loadPreset("deepseek-v3");
  window.workspaces()->setCurrentWidget(window.design());
  app.processEvents();
  auto* spin = qobject_cast<QSpinBox*>(window.design()->editorFor("train.micro_batch"));
  std::vector<double> core_ms, edit_ms, edit_paint_ms;
  const int base = spin->value();
  for (int i = 0; i < 200; ++i) {
    QElapsedTimer t;
    t.start();
    spin->setValue(base + (i % 2 ? 0 : 1));
    edit_ms.push_back(t.nsecsElapsed() / 1e6);
    app.processEvents();  // the queued estimate replots and repaints
    edit_paint_ms.push_back(t.nsecsElapsed() / 1e6);
    core_ms.push_back(window.specModel()->lastRecomputeUs() / 1000.0);
  }
  const bool valid = !window.specModel()->hasErrors();

  std::printf("gui_bench: %lld layers × %lld experts, %lld ranks, %.0f steps/s for %.0f s; Live showed %lld of %lld steps;"
              " %lld finished runs beside it\n",
              (long long)shape.layers, (long long)shape.experts, (long long)shape.ranks, rate, seconds,
              (long long)shown, (long long)shape.steps, (long long)past_runs);
  std::printf("| %-38s | %6s | %8s | %8s | %8s | %-4s | %-10s |\n", "measure", "n", "p50", "p99", "max", "unit", "target");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(40, '-').c_str(), std::string(8, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(6, '-').c_str(), std::string(12, '-').c_str());
  row("GUI event-loop latency (5 ms probe)", lateness_ms, "ms", "p99 < 50");
  row("replot, one plot", replot_ms, "ms", "< 30");
  for (const auto& [name, v] : replot_by_plot) row(qPrintable("  replot " + name), v, "ms", "< 30");
  row("apply one update (GUI thread, no paint)", apply_ms, "ms", "");
  row("store read per tick (worker thread)", read_ms, "ms", "");
  row("design: core validate + plan (DSv3)", core_ms, "ms", "< 5");
  row("design: whole edit, widgets updated", edit_ms, "ms", "");
  row("design: edit + repaint + replots", edit_paint_ms, "ms", "");
  std::printf("DeepSeek-V3 design valid: %s\n", valid ? "yes" : "no");
  print_slowest("Live", live_slowest);
  return shown == shape.steps ? 0 : 1;
}
