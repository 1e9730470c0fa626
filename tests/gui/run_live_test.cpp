// Run + Live: launching tiny-cpu from the studio runs the real `moe run` → moe-runtime → store
// path; the heatmap gains columns while it runs, the run ends `completed` and appears in Compare.
#include <QAction>
#include <QFileInfo>
#include <QProgressBar>
#include <gtest/gtest.h>

#include "compare/compare_workspace.h"
#include "compare/runs_model.h"
#include "design/spec_model.h"
#include "gui_test_util.h"
#include "live/live_workspace.h"
#include "run/run_launcher.h"
#include "run/run_workspace.h"
#include "run_reader.h"
#include <QSortFilterProxyModel>

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;
using moe::gui::test::waitUntil;

TEST(RunLive, LaunchingTinyCpuFillsTheLiveViewsAndEndsCompleted) {
  ASSERT_TRUE(QFileInfo(RunLauncher::cliPath()).isExecutable()) << RunLauncher::cliPath().toStdString();
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
