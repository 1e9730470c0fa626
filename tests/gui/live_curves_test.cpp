// Live's loss and throughput curves are extended step by step (only the new steps are smoothed and
// appended): after several polls of a growing run they must equal one smoothing of the whole
// series, exactly, and a new smoothing factor redraws them from the start.
#include <gtest/gtest.h>

#include <cmath>

#include "common/qcp.h"
#include "gui_test_util.h"
#include "job_spec.h"
#include "live/live_workspace.h"
#include "run_store.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;
using moe::gui::test::waitUntil;

namespace {

double lossAt(int step) { return step == 7 ? NAN : 4.0 / (1 + 0.1 * step) + 0.3 * std::sin(step); }

void writeSteps(store::RunStore& st, int64_t run, store::RunWriteState& state, int from, int to) {
  std::vector<store::Record> records;
  if (from == 0) {
    const auto start = test::runStart(spec_to_json(JobSpec{}).dump());
    records.push_back(start);
  }
  for (int i = from; i < to; ++i) {
    store::StepRecord s;
    s.step = i;
    s.loss = lossAt(i);
    s.aux_loss = 0.01 + 0.001 * (i % 5);
    s.z_loss = 0.002;
    s.lr = 1e-3;
    s.tokens = 1024;
    s.step_ms = 100;
    s.tokens_per_s = 10000 + 37 * (i % 11);
    records.push_back(s);
  }
  st.write_batch(run, records, state);
}

QVector<double> values(QCPGraph* g) {
  QVector<double> v;
  for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) v << it->value;
  return v;
}

void expectSameBits(const QVector<double>& got, const QVector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (int i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) EXPECT_TRUE(std::isnan(got[i])) << i;
    else EXPECT_EQ(got[i], want[i]) << i;
  }
}

}  // namespace

TEST(LiveCurves, GrowingRunEqualsOneSmoothingOfTheWholeSeries) {
  Studio s;
  store::RunStore st(s.db().toStdString());
  const int64_t run = st.create_run("growing", spec_to_json(JobSpec{}).dump());
  store::RunWriteState state;
  writeSteps(st, run, state, 0, 40);
  LiveWorkspace* live = s.window->live();
  s.window->workspaces()->setCurrentWidget(live);
  live->followRun(run);
  QCPGraph* smoothed = live->lossPlot()->graph(0);
  ASSERT_TRUE(waitUntil([&] { return smoothed->dataCount() == 40; }, 10000));
  writeSteps(st, run, state, 40, 70);  // two more polls' worth
  ASSERT_TRUE(waitUntil([&] { return smoothed->dataCount() == 70; }, 10000));
  writeSteps(st, run, state, 70, 75);
  ASSERT_TRUE(waitUntil([&] { return smoothed->dataCount() == 75; }, 10000));

  QVector<double> loss, aux;
  for (int i = 0; i < 75; ++i) loss << lossAt(i), aux << 0.01 + 0.001 * (i % 5);
  expectSameBits(values(smoothed), emaSmooth(loss, 0.6));
  expectSameBits(values(live->lossPlot()->graph(1)), loss);
  expectSameBits(values(live->lossPlot()->graph(2)), emaSmooth(aux, 0.6));

  live->setEma(0.3);  // another smoothing: redrawn from the first step
  expectSameBits(values(smoothed), emaSmooth(loss, 0.3));
  EXPECT_EQ(live->lossPlot()->graph(1)->dataCount(), 75);
}
