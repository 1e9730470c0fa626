// Run + Live: launching tiny-cpu from the studio runs the real run session → moe-runtime → store
// path (the code of `moe run`, in process); the heatmap gains columns while it runs, the run ends
// `completed` and appears in Compare. Stop ends a running run `cancelled` with no process left;
// closing the studio detaches a local run (its job goes on) and a new studio reattaches it to its
// end, every step once; a rank that dies fails the run naming the rank. The heatmap's fold.
#include <QAction>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QMap>
#include <QPushButton>
#include <QProgressBar>
#include <gtest/gtest.h>

#include "compare/compare_workspace.h"
#include "cost_model.h"
#include "compare/runs_model.h"
#include "design/spec_model.h"
#include "gui_test_util.h"
#include "common/qcp.h"
#include "hosts/hosts_panel.h"
#include "live/heat_columns.h"
#include "live/live_workspace.h"
#include "remote_runs.h"
#include "run/run_launcher.h"
#include "run/run_workspace.h"
#include "placement_suggest.h"
#include "run_reader.h"
#include "run_store.h"
#include "sqlite_db.h"
#include <QPlainTextEdit>
#include <QSortFilterProxyModel>
#include <optional>
#include <signal.h>

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;
using moe::gui::test::waitUntil;

TEST(RunLive, LaunchingTinyCpuFillsTheLiveViewsAndEndsCompleted) {
  ASSERT_TRUE(QFileInfo(RunLauncher::runtimePath()).isExecutable()) << RunLauncher::runtimePath().toStdString();
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(model->setValue("train.steps", 24).isEmpty());
  ASSERT_TRUE(model->setValue("train.warmup_steps", 4).isEmpty());
  ASSERT_FALSE(model->hasErrors());
  s.window->poller()->setIntervalMs(100);  // sample the growth finely

  // Record the heatmap's width at every update while the run goes.
  QList<int> columns_while_running;
  std::string trace;  // (run, last step, columns) of each update, for a failure message
  LiveWorkspace* live = s.window->live();
  QObject::connect(live, &LiveWorkspace::updated, live, [&] {
    if (live->runStatus() == "running") columns_while_running << live->heatmapColumns();
    trace += "(" + std::to_string(live->runId()) + " " + live->runStatus().toStdString() + " " +
             std::to_string(live->stepsShown()) + " " + std::to_string(live->heatmapColumns()) + ") ";
  });

  s.window->runAction()->trigger();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << s.window->runWorkspace()->statusText().toStdString();
  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 600000)) << "moe run did not end";
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "completed");

  // The store says completed with every step, and the studio shows it.
  ASSERT_TRUE(waitUntil([&] { return live->runStatus() == "completed"; }, 10000)) << live->runStatus().toStdString();
  store::RunReader reader(s.db().toStdString());
  auto runs = reader.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, "completed");
  EXPECT_EQ(runs[0].n_steps, 24);
  EXPECT_EQ(live->runId(), runs[0].id);
  EXPECT_EQ(live->stepsShown(), 24);
  EXPECT_EQ(live->heatmapColumns(), 24);  // one column per step (fewer than the bucket count)
  EXPECT_EQ(live->heatmapExperts(), model->spec().model.moe.num_experts);
  EXPECT_EQ(s.window->runWorkspace()->progressBar()->value(), 24);

  // What Live drew equals what the store computes: the heatmap (folded incrementally from new
  // rows) against the store's bucketed heatmap, and the drop lines (read incrementally per layer)
  // against the store's load-balance figures.
  {
    const int64_t E = model->spec().model.moe.num_experts;
    auto* map = qobject_cast<QCPColorMap*>(live->heatmapPlot()->plottable(0));
    ASSERT_NE(map, nullptr);
    const int64_t first_step = reader.steps_after(runs[0].id, -1).front().step;
    store::Heatmap h = reader.expert_heatmap(runs[0].id, 0, first_step, -1, 400);
    ASSERT_EQ(h.n_buckets, 24);
    ASSERT_EQ(map->data()->keySize(), 24);
    ASSERT_EQ(map->data()->valueSize(), E);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t b = 0; b < 24; ++b)
        ASSERT_NEAR(map->data()->cell(int(b), int(e)), h.values[size_t(e * h.n_buckets + b)], 1e-9) << e << " " << b;
    QCustomPlot* drops = nullptr;
    for (QCustomPlot* p : live->plots())
      if (p->objectName() == "drops_per_layer") drops = p;
    ASSERT_NE(drops, nullptr);
    ASSERT_EQ(drops->graphCount(), model->spec().model.n_layers);
    for (int l = 0; l < drops->graphCount(); ++l) {
      auto want = reader.load_balance(runs[0].id, l, 0, -1);
      ASSERT_EQ(drops->graph(l)->data()->size(), int(want.size())) << "layer " << l;
      int i = 0;
      for (auto it = drops->graph(l)->data()->constBegin(); it != drops->graph(l)->data()->constEnd(); ++it, ++i) {
        EXPECT_EQ(it->key, double(want[size_t(i)].step));
        EXPECT_NEAR(it->value, want[size_t(i)].drop_rate * 100, 1e-9);
      }
    }
  }

  // The heatmap grew while the run was going: several distinct, increasing widths.
  ASSERT_GE(columns_while_running.size(), 2);
  int increases = 0;
  for (int i = 1; i < columns_while_running.size(); ++i) {
    EXPECT_GE(columns_while_running[i], columns_while_running[i - 1]) << trace;
    increases += columns_while_running[i] > columns_while_running[i - 1];
  }
  EXPECT_GE(increases, 2) << "heatmap widths seen: " << columns_while_running.size();
  EXPECT_LT(columns_while_running.first(), 24);

  // The run is listed in Compare.
  CompareWorkspace* compare = s.window->compare();
  ASSERT_TRUE(waitUntil([&] { return compare->runsProxy()->rowCount() == 1; }, 5000));
  EXPECT_EQ(compare->runsProxy()->index(0, RunsModel::Status).data().toString(), "completed");
  EXPECT_EQ(compare->runsProxy()->index(0, RunsModel::Id).data().toLongLong(), runs[0].id);
}

namespace {
// Live (not zombie) processes whose /proc entry says: process group `group`, or a command line
// naming `text` (a job's ranks have a group of their own and name the job's spec.json).
QList<qint64> jobProcesses(qint64 group, const QString& text) {
  QList<qint64> found;
  for (const QString& name : QDir("/proc").entryList(QDir::Dirs)) {
    bool ok = false;
    const qint64 pid = name.toLongLong(&ok);
    if (!ok) continue;
    QFile stat("/proc/" + name + "/stat");
    if (!stat.open(QIODevice::ReadOnly)) continue;
    const QStringList rest = QString::fromUtf8(stat.readAll()).section(") ", 1).split(' ');
    if (rest.size() < 3 || rest[0] == "Z" || rest[0] == "X") continue;
    QFile cmd("/proc/" + name + "/cmdline");
    const QString cmdline = cmd.open(QIODevice::ReadOnly) ? QString::fromUtf8(cmd.readAll()) : QString();
    if (rest[2].toLongLong() == group || (!text.isEmpty() && cmdline.contains(text))) found << pid;
  }
  return found;
}

// A local run's job directory (<store>-jobs/<job id>/node-0) and its process group (the wrapper's
// pid), from the store's row.
struct LocalJob {
  QString dir;
  qint64 group = -1;
  std::string job_id;
  uint64_t metrics_offset = 0;
};
std::optional<LocalJob> localJob(const QString& db, qint64 run) {
  store::RunStore st(db.toStdString());
  const auto row = store::find_remote_run(st, run);
  if (!row || row->local_root.empty()) return std::nullopt;
  LocalJob j;
  j.dir = QString::fromStdString(row->local_root + "/" + row->job_id + "/node-0");
  j.job_id = row->job_id;
  j.metrics_offset = row->metrics_offset;
  QFile pid(j.dir + "/pid");
  if (pid.open(QIODevice::ReadOnly)) j.group = pid.readAll().trimmed().toLongLong();
  return j;
}

// Sets environment variables for one test (the runs it starts inherit them), restoring them after.
struct EnvScope {
  std::vector<std::pair<const char*, std::optional<QByteArray>>> saved;
  EnvScope(std::initializer_list<std::pair<const char*, QByteArray>> vars) {
    for (const auto& [k, v] : vars) {
      saved.emplace_back(k, qEnvironmentVariableIsSet(k) ? std::optional<QByteArray>(qgetenv(k)) : std::nullopt);
      qputenv(k, v);
    }
  }
  ~EnvScope() {
    for (const auto& [k, v] : saved) v ? qputenv(k, *v) : qunsetenv(k);
  }
};

// The id and stored steps of the store's newest run (-1 while there is none or no schema yet).
std::pair<qint64, qint64> newestRun(const QString& db) {
  try {
    const auto runs = store::RunReader(db.toStdString()).list_runs();
    if (!runs.empty()) return {runs[0].id, runs[0].n_steps};
  } catch (const std::exception&) {
  }
  return {-1, -1};
}

// "; plan 16.4 % (": the cost model's idle share for the newest run's recorded spec, as Live prints it.
QString plannedIdleText(const QString& db) {
  const auto [run, n] = newestRun(db);
  const std::optional<double> share = planned_idle_share(store::RunReader(db.toStdString()).spec_json(run));
  return share ? QString("; plan %1 % (").arg(100 * *share, 0, 'f', 1) : QString("no plan");
}

// Processes descended from this one (the watcher shells and whatever they started), read from /proc.
QList<qint64> descendants() {
  QMap<qint64, qint64> parent;
  for (const QString& name : QDir("/proc").entryList(QDir::Dirs)) {
    bool ok = false;
    qint64 pid = name.toLongLong(&ok);
    if (!ok) continue;
    QFile stat("/proc/" + name + "/stat");
    if (!stat.open(QIODevice::ReadOnly)) continue;  // gone meanwhile
    const QString text = QString::fromUtf8(stat.readAll());
    // "pid (comm) state ppid …": comm may hold spaces, so parse after the last ')'.
    const QStringList rest = text.mid(text.lastIndexOf(')') + 2).split(' ');
    if (rest.size() < 2 || rest[0] == "Z") continue;  // a zombie has exited already
    parent[pid] = rest[1].toLongLong();
  }
  QList<qint64> found, frontier{QCoreApplication::applicationPid()};
  while (!frontier.isEmpty()) {
    const qint64 p = frontier.takeFirst();
    for (auto it = parent.begin(); it != parent.end(); ++it)
      if (it.value() == p) found << it.key(), frontier << it.key();
  }
  return found;
}
}  // namespace

TEST(RunLive, StopEndsTheRunCancelledAndLeavesNoProcess) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(model->setValue("train.steps", 5000).isEmpty());  // far longer than the test waits
  ASSERT_FALSE(model->hasErrors());
  s.window->poller()->setIntervalMs(100);
  LiveWorkspace* live = s.window->live();

  s.window->runAction()->trigger();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << s.window->runWorkspace()->statusText().toStdString();
  // Stop once the run is really training (steps recorded), as a user would.
  ASSERT_TRUE(waitUntil([&] { return live->runStatus() == "running" && live->stepsShown() >= 2; }, 120000))
      << live->runStatus().toStdString() << " " << live->stepsShown();
  // The job runs under setsid (so it could outlive the studio): its processes are its group's and
  // those naming its directory, not this process's descendants.
  const std::optional<LocalJob> job = localJob(s.db(), live->runId());
  ASSERT_TRUE(job.has_value());
  ASSERT_GT(job->group, 1);
  QList<qint64> running = jobProcesses(job->group, job->dir);
  ASSERT_FALSE(running.isEmpty());
  running += descendants();
  auto* stop = s.window->runWorkspace()->findChild<QPushButton*>("stopButton");
  ASSERT_NE(stop, nullptr);
  ASSERT_TRUE(stop->isEnabled());
  stop->click();

  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 30000)) << "the run did not stop";
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "cancelled");
  EXPECT_FALSE(stop->isEnabled());
  // The store records the end, and the Live view shows it.
  ASSERT_TRUE(waitUntil([&] {
    store::RunReader reader(s.db().toStdString());
    auto runs = reader.list_runs();
    return runs.size() == 1 && runs[0].status == "cancelled";
  }, 10000));
  ASSERT_TRUE(waitUntil([&] { return live->runStatus() == "cancelled"; }, 10000)) << live->runStatus().toStdString();
  EXPECT_LT(live->stepsShown(), 5000);
  // No process is left behind: neither the job (wrapper, launcher, ranks) nor a watcher (polled: an
  // exiting child may take a moment to be reaped).
  QList<qint64> left;
  const bool all_gone = waitUntil([&] {
    left.clear();
    for (qint64 pid : running)
      if (QFileInfo::exists(QString("/proc/%1").arg(pid))) {
        QFile stat(QString("/proc/%1/stat").arg(pid));
        if (stat.open(QIODevice::ReadOnly) && !QString::fromUtf8(stat.readAll()).section(") ", 1).startsWith("Z")) left << pid;
      }
    return left.isEmpty() && descendants().isEmpty() && jobProcesses(job->group, job->dir).isEmpty();
  }, 10000);
  EXPECT_TRUE(all_gone) << "still alive: " << left.size() << " of " << running.size() << " processes, "
                        << descendants().size() << " descendants";
}

// Closing the studio mid-run detaches a local run as it does a remote one: the job goes on beside the
// store (its watchdog lets it: it was detached), the run stays `running` with its resume point, and
// a new studio on the same store offers it, reattaches and follows it to `completed`, every step
// stored exactly once. (A store_fake_runtime stream, so the steps come at a known pace.)
TEST(RunLive, ClosingTheStudioDetachesALocalRunAndANewStudioReattachesIt) {
  EnvScope env{{"MOE_RUNTIME", STORE_FAKE_RUNTIME}, {"FAKE_STEP_MS", "40"}};
  const int steps = 150;
  Studio s;
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(s.window->specModel()->setValue("train.steps", steps).isEmpty());
  s.window->runAction()->trigger();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << s.window->runWorkspace()->statusText().toStdString();
  qint64 id = -1;
  ASSERT_TRUE(waitUntil([&] {
    const auto [run, n] = newestRun(s.db());
    id = run;
    return n >= 3;
  }, 60000)) << s.window->runWorkspace()->console()->toPlainText().toStdString();
  EXPECT_TRUE(s.window->close());  // no prompts: "leave it running"
  s.window.reset();

  store::RunReader reader(s.db().toStdString());
  const store::RunInfo left = reader.run(id);
  EXPECT_EQ(left.status, "running") << left.end_reason;
  ASSERT_LT(left.n_steps, steps) << "the studio must close mid-run for this test to mean anything";
  const std::optional<LocalJob> job = localJob(s.db(), id);
  ASSERT_TRUE(job.has_value());
  EXPECT_GT(job->metrics_offset, 0u);
  EXPECT_TRUE(QFileInfo::exists(job->dir + "/detached"));
  // The job goes on without the studio, past several rounds of its watchdog.
  const qint64 size0 = QFileInfo(job->dir + "/metrics.jsonl").size();
  waitUntil([] { return false; }, 1500);
  EXPECT_FALSE(jobProcesses(job->group, QString()).isEmpty()) << "the detached job was stopped";
  EXPECT_GT(QFileInfo(job->dir + "/metrics.jsonl").size(), size0) << "its metrics did not grow";

  // A new studio on the same store finds the run and follows it to the end.
  s.window = std::make_unique<MainWindow>(s.db());
  ASSERT_EQ(s.window->detachedRuns(), QList<qint64>{id});
  const QString why = s.window->reattachRun(id);
  ASSERT_TRUE(why.isEmpty()) << why.toStdString();
  ASSERT_TRUE(s.window->launcher()->isRunning());
  // The watcher thread takes the job over: the marker goes, this studio is its recorder now.
  EXPECT_TRUE(waitUntil([&] { return !QFileInfo::exists(job->dir + "/detached"); }, 10000));
  EXPECT_TRUE(waitUntil([&] { return s.window->detachedRuns().isEmpty(); }, 10000))
      << "a run this studio records is not offered again";
  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 60000));
  const std::string console = s.window->runWorkspace()->console()->toPlainText().toStdString();
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "completed") << console;
  EXPECT_NE(console.find("reattached to job " + job->job_id), std::string::npos) << console;
  const store::RunInfo done = reader.run(id);
  EXPECT_EQ(done.status, "completed");
  EXPECT_EQ(done.n_steps, steps);
  EXPECT_EQ(done.malformed_lines, 0);
  store::Db d(s.db().toStdString(), store::Db::Mode::read_only);
  store::Stmt q(d, "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM steps WHERE run_id = ?1");
  q.bind(1, int64_t{id});
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.col_int(0), steps);
  EXPECT_EQ(q.col_int(1), steps);
  EXPECT_EQ(q.col_int(2), 1);
  EXPECT_EQ(q.col_int(3), steps);
  EXPECT_TRUE(s.window->detachedRuns().isEmpty());
}

// A rank of a local run killed with -9 (ep 2, the real runtime): the launcher stops the other rank,
// the run ends `failed` with a reason naming the rank and the signal, the console says so, and
// nothing of the job is left.
TEST(RunLive, ALocalRunWhoseRankDiesFailsNamingTheRank) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  nlohmann::json j = model->json();
  j["parallel"]["ep"] = 2;
  j["parallel"]["gpus_per_node"] = 2;
  j["cluster"]["nodes"][0]["slots"] = 2;
  j["train"]["steps"] = 5000;
  j["train"]["micro_batch"] = 2;
  j["train"]["data"]["val_fraction"] = 0.002;
  j["model"]["n_layers"] = 2;
  j["model"]["seq_len"] = 32;
  model->setSpecJson(j);
  for (const auto& d : model->diagnostics()) ASSERT_FALSE(d.severity == Severity::error) << d.text();
  s.window->runAction()->trigger();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << s.window->runWorkspace()->statusText().toStdString();
  qint64 id = -1;
  ASSERT_TRUE(waitUntil([&] {
    const auto [run, n] = newestRun(s.db());
    id = run;
    return n >= 2;
  }, 120000)) << s.window->runWorkspace()->console()->toPlainText().toStdString();
  const std::optional<LocalJob> job = localJob(s.db(), id);
  ASSERT_TRUE(job.has_value());
  // Rank 1: the job's process whose environment says MOE_RANK=1.
  qint64 rank1 = -1;
  for (qint64 pid : jobProcesses(job->group, job->dir)) {
    QFile env(QString("/proc/%1/environ").arg(pid));
    if (env.open(QIODevice::ReadOnly) && env.readAll().contains(QByteArray("MOE_RANK=1\0", 11))) rank1 = pid;
  }
  ASSERT_GT(rank1, 0);
  ASSERT_EQ(::kill(pid_t(rank1), SIGKILL), 0);

  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 60000));
  const std::string console = s.window->runWorkspace()->console()->toPlainText().toStdString();
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "failed (exit code 1)") << console;
  const store::RunInfo info = store::RunReader(s.db().toStdString()).run(id);
  EXPECT_EQ(info.status, "failed");
  EXPECT_NE(info.end_reason.find("rank 1 was killed by signal 9"), std::string::npos) << info.end_reason;
  EXPECT_NE(console.find("run " + std::to_string(id) + " failed"), std::string::npos) << console;
  EXPECT_NE(console.find("rank 1 was killed by signal 9"), std::string::npos) << console;
  QList<qint64> left;
  EXPECT_TRUE(waitUntil([&] { return (left = jobProcesses(job->group, job->dir)).isEmpty(); }, 10000))
      << left.size() << " process(es) of the job left";
}

// A run that re-places its experts (placement.replace_every) says so in Live's header, with what
// the last move cost, as the store recorded it.
namespace {
// Loads tiny-cpu with `settings`, runs it from the studio and waits until Live shows it completed.
void runTinyCpuToCompletion(Studio& s, const std::vector<std::pair<QString, QVariant>>& settings) {
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  for (const auto& [path, value] : settings) ASSERT_TRUE(model->setValue(path, value).isEmpty()) << path.toStdString();
  ASSERT_FALSE(model->hasErrors());
  s.window->poller()->setIntervalMs(100);
  s.window->runAction()->trigger();
  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 600000)) << "moe run did not end";
  LiveWorkspace* live = s.window->live();
  ASSERT_TRUE(waitUntil([&] { return live->runStatus() == "completed"; }, 10000)) << live->runStatus().toStdString();
}
}  // namespace

TEST(RunLive, ARunThatRePlacesItsExpertsShowsTheMovesInTheHeader) {
  Studio s;
  runTinyCpuToCompletion(s, {{"train.steps", 12}, {"train.warmup_steps", 4}, {"model.seq_len", 32}, {"model.n_layers", 2},
                             {"parallel.ep", 4}, {"cluster.nodes.0.slots", 4}, {"train.micro_batch", 2},
                             {"placement.strategy", "replicate"}, {"placement.slots_per_rank", 3},
                             {"placement.replace_every", 5}});
  if (::testing::Test::HasFatalFailure()) return;
  LiveWorkspace* live = s.window->live();
  store::RunReader reader(s.db().toStdString());
  std::vector<store::PlacementRow> moves;
  for (const auto& row : store::recorded_placements(reader, live->runId()))
    if (row.step > 0 && row.migrated_bytes > 0) moves.push_back(row);
  ASSERT_FALSE(moves.empty()) << "the run never moved an expert";
  ASSERT_TRUE(waitUntil([&] { return !live->replacementText().isEmpty(); }, 10000));
  const QString text = live->replacementText();
  EXPECT_TRUE(text.startsWith(QString("experts re-placed %1×").arg(moves.size()))) << text.toStdString();
  EXPECT_TRUE(text.contains(QString("the last from step %1").arg(moves.back().step))) << text.toStdString();
}

// A pipeline-parallel run launched from the studio (pp 2, 4 micro-batches) trains to the end, and
// Live shows its latest step's 1F1B timeline: every op of both stages, the measured idle share
// beside the cost model's for the run and the formula's. A run without pp keeps the timeline hidden.
TEST(RunLive, APipelineRunShowsItsTimeline) {
  Studio s;
  runTinyCpuToCompletion(s, {{"train.steps", 4}, {"train.warmup_steps", 2}, {"model.seq_len", 32}, {"model.n_layers", 2},
                             {"parallel.pp", 2}, {"train.grad_accum", 4}, {"cluster.nodes.0.slots", 2}, {"train.micro_batch", 2}});
  if (::testing::Test::HasFatalFailure()) return;
  LiveWorkspace* live = s.window->live();
  ASSERT_TRUE(waitUntil([&] { return !live->pipelineText().isEmpty(); }, 10000));
  const QString text = live->pipelineText();
  EXPECT_TRUE(text.startsWith("pipeline step 4: idle ")) << text.toStdString();
  EXPECT_TRUE(text.contains(plannedIdleText(s.db()))) << text.toStdString();
  EXPECT_TRUE(text.endsWith("(1F1B with 2 stages, 4 micro-batches, equal stages: 20.0 %)")) << text.toStdString();
  EXPECT_FALSE(live->pipelinePlot()->isHidden());
  // Stage 0: 4 forwards, 4 recomputes, 4 backwards; stage 1 (the last): 4 forwards, 4 backwards.
  EXPECT_EQ(live->pipelinePlot()->itemCount(), 2 * 20);  // a bar and its label per op
}

// The interleaved schedule (pp 2 × 2 chunks over 4 layers): the timeline labels each op with its
// chunk and the formula is the interleaved one, (pp − 1)/(v·m + pp − 1).
TEST(RunLive, AnInterleavedPipelineRunShowsItsChunks) {
  Studio s;
  runTinyCpuToCompletion(s, {{"train.steps", 3}, {"train.warmup_steps", 2}, {"model.seq_len", 32}, {"model.n_layers", 4},
                             {"parallel.pp", 2}, {"parallel.vpp", 2}, {"train.grad_accum", 4}, {"cluster.nodes.0.slots", 2},
                             {"train.micro_batch", 2}});
  if (::testing::Test::HasFatalFailure()) return;
  LiveWorkspace* live = s.window->live();
  ASSERT_TRUE(waitUntil([&] { return !live->pipelineText().isEmpty(); }, 10000));
  const QString text = live->pipelineText();
  EXPECT_TRUE(text.contains(plannedIdleText(s.db()))) << text.toStdString();
  EXPECT_TRUE(text.endsWith("(interleaved 1F1B with 2 stages × 2 chunks, 4 micro-batches, equal stages: 11.1 %)")) << text.toStdString();
  // At least every forward and backward of both stages' two chunks, a bar and a label each.
  EXPECT_GE(live->pipelinePlot()->itemCount(), 2 * 2 * 2 * 2 * 4);
  bool chunk_label = false;
  for (int i = 0; i < live->pipelinePlot()->itemCount(); ++i)
    if (auto* t = qobject_cast<QCPItemText*>(live->pipelinePlot()->item(i))) chunk_label = chunk_label || t->text() == "F3c1";
  EXPECT_TRUE(chunk_label) << "no label for micro-batch 3's forward in chunk 1";
}

TEST(HeatColumns, FoldsStepsIntoBoundedColumnsKeepingTheMeans) {
  HeatColumns h(4);
  for (int64_t s = 10; s < 14; ++s) h.add(s, {s, 2 * s});
  EXPECT_EQ(h.columns(), 4);
  EXPECT_EQ(h.width(), 1);
  EXPECT_EQ(h.origin(), 10);
  EXPECT_EQ(h.experts(), 2);
  EXPECT_EQ(h.value(3, 1), 26.0);
  EXPECT_EQ(h.take_first_changed(), 0);
  EXPECT_EQ(h.take_first_changed(), 4);  // nothing new
  // A fifth step does not fit: pairs merge (width 2), the new step opens the third column.
  h.add(14, {14, 28});
  EXPECT_EQ(h.columns(), 3);
  EXPECT_EQ(h.width(), 2);
  EXPECT_EQ(h.value(0, 0), 10.5);
  EXPECT_EQ(h.value(1, 0), 12.5);
  EXPECT_EQ(h.value(2, 0), 14.0);
  EXPECT_EQ(h.take_first_changed(), 0);
  h.add(15, {15, 30});
  EXPECT_EQ(h.value(2, 1), 29.0);
  EXPECT_EQ(h.take_first_changed(), 2);  // only the last column changed
  h.add(15, {99, 99});                   // a step already folded is ignored
  EXPECT_EQ(h.value(2, 0), 14.5);

  // A long run: the columns stay bounded and each is the mean of exactly its steps.
  HeatColumns big(512);
  std::vector<double> raw;
  for (int64_t s = 0; s < 5000; ++s) {
    const int64_t v = (s * 7919) % 1000;
    raw.push_back(double(v));
    big.add(s, {v});
  }
  EXPECT_LE(big.columns(), 512);
  EXPECT_EQ(big.width(), 16);  // 5000 steps / 512 columns → 16 steps per column
  EXPECT_EQ(big.columns(), (5000 + 15) / 16);
  for (int64_t c = 0; c < big.columns(); ++c) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t s = c * 16; s < std::min<int64_t>(5000, (c + 1) * 16); ++s) sum += raw[size_t(s)], ++n;
    ASSERT_DOUBLE_EQ(big.value(c, 0), sum / double(n)) << "column " << c;
  }
}

// Run ▸ where: Slurm takes the Hosts panel's one host as the login node; anything else is refused
// before a run is recorded, with the reason (the end-to-end Slurm path: tests/remote/slurm_run_test.cpp).
TEST(RunWhere, SlurmNeedsOneLoginNodeAndAValidSlurmDesign) {
  Studio s;
  s.window->loadPreset("tiny-cpu");
  s.window->runWorkspace()->setWhere(RunWorkspace::Where::slurm);
  EXPECT_EQ(s.window->runWorkspace()->where(), RunWorkspace::Where::slurm);
  remote::HostEntry a, b;
  a.host = "login-a";
  b.host = "login-b";
  RunLauncher::Launch l;
  l.spec = s.window->specModel()->spec();
  l.db_path = s.dir.filePath("runs.sqlite");
  l.slurm = true;
  l.hosts = {a, b};
  EXPECT_EQ(s.window->launcher()->start(l), "Slurm: the Hosts panel must list one host, the login node");
  l.hosts = {a};
  l.spec.cluster.slurm.partition = "gpu\n#SBATCH --uid=0";
  EXPECT_TRUE(s.window->launcher()->start(l).contains("cluster.slurm.partition"));
  EXPECT_FALSE(s.window->launcher()->isRunning());
  EXPECT_FALSE(QFileInfo::exists(l.db_path)) << "nothing recorded";
}

// A remote launch replaces the design's nodes — with the Hosts panel's, or for Slurm with nodes made
// from the layout — so a design whose own cluster.nodes hold fewer slots than its world (an error
// for this machine) can still go there; what the launch itself refuses (too few slots on the
// hosts, a layout Slurm cannot split) is refused with the launch's message.
TEST(RunWhere, RemoteRunsIgnoreTheDesignsOwnNodes) {
  Studio s;
  s.window->loadPreset("tiny-cpu");
  SpecModel* model = s.window->specModel();
  ASSERT_TRUE(model->setValue("parallel.ep", 4).isEmpty());  // world 4 on the design's 1 slot
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 2).isEmpty());
  ASSERT_TRUE(model->hasErrors());
  s.window->hosts()->setHostfileText("node-a slots=2\nnode-b slots=2\n");
  RunWorkspace* run = s.window->runWorkspace();
  run->setWhere(RunWorkspace::Where::local);
  EXPECT_FALSE(run->canRun());
  EXPECT_FALSE(s.window->runAction()->isEnabled());
  run->setWhere(RunWorkspace::Where::hosts);
  EXPECT_TRUE(run->canRun()) << run->runButton()->toolTip().toStdString();
  EXPECT_TRUE(s.window->runAction()->isEnabled());
  run->setWhere(RunWorkspace::Where::slurm);
  EXPECT_TRUE(run->canRun()) << run->runButton()->toolTip().toStdString();
  // Three slots on the hosts for four ranks: the launch's own check.
  s.window->hosts()->setHostfileText("node-a slots=3\n");
  run->setWhere(RunWorkspace::Where::hosts);
  EXPECT_FALSE(run->canRun());
  EXPECT_TRUE(run->runButton()->toolTip().contains("1 node(s) × 3 slots = 3 processes, but the spec needs dp·tp·pp·ep = 4"))
      << run->runButton()->toolTip().toStdString();
  // 8 ranks over nodes of 3 GPUs: Slurm cannot split them; the reason is the launch's.
  run->setWhere(RunWorkspace::Where::slurm);
  ASSERT_TRUE(model->setValue("parallel.ep", 8).isEmpty());
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 3).isEmpty());
  EXPECT_FALSE(run->canRun());
  EXPECT_FALSE(s.window->runAction()->isEnabled());
  EXPECT_TRUE(run->runButton()->toolTip().contains("8 ranks do not split evenly over 3 nodes")) << run->runButton()->toolTip().toStdString();
}

// A tensor-parallel run launched from the studio (tp 2 × ep 2, experts split over tp, 4 processes)
// trains to the end, and Live's header shows its tp all-reduce payload per step and the expert
// rows' gathers, the figures the step records carry.
TEST(RunLive, ATensorParallelRunShowsItsAllReducePayload) {
  Studio s;
  runTinyCpuToCompletion(s, {{"train.steps", 6}, {"train.warmup_steps", 2}, {"model.seq_len", 32}, {"model.n_layers", 2},
                             {"parallel.tp", 2}, {"parallel.etp", 2}, {"parallel.ep", 2}, {"cluster.nodes.0.slots", 4},
                             {"train.micro_batch", 4}});
  if (::testing::Test::HasFatalFailure()) return;
  LiveWorkspace* live = s.window->live();
  store::RunReader reader(s.db().toStdString());
  const auto bytes = reader.last_step_extension(live->runId(), "tp_bytes");
  ASSERT_TRUE(bytes.has_value());
  // 4 all-reduces × 2 layers, the embedding's and the head's, of micro_batch · seq_len · d_model floats.
  EXPECT_EQ(*bytes, int64_t{4 * 2 + 2} * 4 * 32 * 128 * 4);
  ASSERT_TRUE(waitUntil([&] { return !live->tensorParallelText().isEmpty(); }, 10000));
  const auto etp = reader.last_step_extension(live->runId(), "etp_bytes");
  ASSERT_TRUE(etp.has_value());
  EXPECT_GT(*etp, 0);
  auto mib = [](int64_t b) { return QString::number(double(b) / (1024.0 * 1024.0), 'f', 2); };
  EXPECT_EQ(live->tensorParallelText(), "tp collectives " + mib(*bytes) + " MiB per step (+ expert rows " + mib(*etp) + " MiB)");
  EXPECT_TRUE(live->pipelinePlot()->isHidden()) << "no pipeline in a pp 1 run";
  // The gradient sums per group: dense over dp × ep, the MoE blocks' over tp (no dp replicas here).
  ASSERT_TRUE(waitUntil([&] { return !live->gradientText().isEmpty(); }, 10000));
  EXPECT_TRUE(live->gradientText().startsWith("gradient sums per step: dense_dp ")) << live->gradientText().toStdString();
  EXPECT_TRUE(live->gradientText().contains(", tp ")) << live->gradientText().toStdString();
  EXPECT_FALSE(live->gradientText().contains("expert_dp")) << live->gradientText().toStdString();
}
