// Compare: two runs recorded in a real store (through RunStore, as the ingestor writes them) show
// both curves, the diff table lists exactly the keys that differ, tags/notes/delete act on the store;
// a plot exports as PNG and PDF, a table and a plot's series as CSV.
#include <QFile>
#include <QFontMetrics>
#include <QFileInfo>
#include <QImage>
#include <QItemSelectionModel>
#include <QLineEdit>
#include <QTableView>
#include <QSlider>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <gtest/gtest.h>

#include "common/plot_tools.h"
#include "common/qcp.h"
#include "compare/compare_workspace.h"
#include "compare/runs_model.h"
#include "live/live_workspace.h"
#include "gui_test_util.h"
#include "job_spec.h"
#include "run_reader.h"
#include "run_store.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;
using moe::gui::test::waitUntil;

namespace {
// Records a run of `steps` steps with a loss curve decaying at `rate`; with `a2a_us`, every step
// also has all-to-all records of two ranks (dispatch fwd taking a2a_us[r] on rank r, combine bwd half that).
int64_t recordRun(const QString& db, const nlohmann::json& spec, int steps, double rate,
                  std::vector<double> a2a_us = {}) {
  store::RunStore st(db.toStdString());
  int64_t id = st.create_run(spec["name"].get<std::string>(), spec.dump());
  std::vector<store::Record> records;
  const auto start = test::runStart(spec.dump());
  records.push_back(start);
  for (int i = 0; i < steps; ++i) {
    store::StepRecord s;
    s.step = i;
    s.loss = 5.0 * std::exp(-rate * i) + 1.0;
    s.aux_loss = 0.01;
    s.z_loss = 0.001;
    s.lr = 1e-3;
    s.tokens = 1024;
    s.step_ms = 100;
    s.tokens_per_s = 10240;
    records.push_back(s);
    store::ExpertLoadRecord e;
    e.step = i;
    e.layer = 0;
    e.counts = {300, 200, 260, 264};
    e.dropped = {4, 0, 0, 0};
    records.push_back(e);
    if (!a2a_us.empty()) {
      store::A2aRecord a;
      a.step = i;
      a.phase = "dispatch", a.pass = "fwd";
      a.rank_us = a2a_us;
      a.rank_bytes.assign(a2a_us.size(), 4096);
      records.push_back(a);
      a.phase = "combine", a.pass = "bwd";
      for (double& us : a.rank_us) us /= 2;
      records.push_back(a);
    }
  }
  store::RunEndRecord end;
  end.status = "completed";
  end.steps = steps;
  records.push_back(end);
  store::RunWriteState state;
  st.write_batch(id, records, state);
  return id;
}

// Brings Compare forward, waits until a poll lists `listed` runs, selects `ids` and waits for their
// curves (read on a worker).
::testing::AssertionResult showCompare(Studio& s, const QList<qint64>& ids, int listed) {
  CompareWorkspace* compare = s.window->compare();
  s.window->workspaces()->setCurrentWidget(compare);
  s.window->poller()->refreshRuns();
  if (!waitUntil([&] { return compare->runsProxy()->rowCount() == listed; }, 5000))
    return ::testing::AssertionFailure() << "the runs table lists " << compare->runsProxy()->rowCount() << " runs, not " << listed;
  compare->selectRuns(ids);
  if (!waitUntil([&] { return !compare->curvesLoading(); }, 5000)) return ::testing::AssertionFailure() << "no curves drawn";
  return ::testing::AssertionSuccess();
}
}  // namespace

TEST(Compare, TwoRunsShowBothCurvesAndExactlyTheDifferingKeys) {
  Studio s;
  nlohmann::json a = spec_to_json(JobSpec{});
  a["name"] = "baseline";
  nlohmann::json b = a;
  b["train"]["lr"] = 0.01;
  b["model"]["moe"]["top_k"] = 1;
  b["parallel"]["ep"] = 2;
  const int64_t id_a = recordRun(s.db(), a, 30, 0.05);
  const int64_t id_b = recordRun(s.db(), b, 20, 0.1);

  CompareWorkspace* compare = s.window->compare();
  s.window->poller()->refreshRuns();
  ASSERT_TRUE(waitUntil([&] { return compare->runsProxy()->rowCount() == 2; }, 5000));
  compare->selectRuns({id_a, id_b});
  EXPECT_EQ(compare->selectedRuns(), (QList<qint64>{id_a, id_b}));
  ASSERT_TRUE(waitUntil([&] { return !compare->curvesLoading(); }, 5000));  // read on a worker

  QCustomPlot* plot = compare->curvesPlot();
  ASSERT_EQ(plot->graphCount(), 2);
  EXPECT_EQ(plot->graph(0)->data()->size(), 30);
  EXPECT_EQ(plot->graph(1)->data()->size(), 20);
  EXPECT_TRUE(plot->graph(0)->name().contains(QString("#%1").arg(id_a)));

  QStandardItemModel* diff = compare->diffModel();
  QStringList keys;
  for (int r = 0; r < diff->rowCount(); ++r) keys << diff->item(r, 0)->text();
  keys.sort();
  EXPECT_EQ(keys, (QStringList{"model.moe.top_k", "parallel.ep", "train.lr"}));
  for (int r = 0; r < diff->rowCount(); ++r)
    if (diff->item(r, 0)->text() == "model.moe.top_k") {
      EXPECT_EQ(diff->item(r, 1)->text(), "2");
      EXPECT_EQ(diff->item(r, 2)->text(), "1");
    }

  // The smoothing slider redraws from the series as read: at 0 the recorded losses themselves,
  // back at 0.6 their smoothing.
  auto* smoothing = compare->findChild<QSlider*>();
  ASSERT_NE(smoothing, nullptr);
  QVector<double> raw;
  for (int i = 0; i < 30; ++i) raw << 5.0 * std::exp(-0.05 * i) + 1.0;
  auto curve = [&] {
    QVector<double> v;
    for (auto it = plot->graph(0)->data()->constBegin(); it != plot->graph(0)->data()->constEnd(); ++it) v << it->value;
    return v;
  };
  smoothing->setValue(0);
  EXPECT_EQ(curve(), raw);
  smoothing->setValue(60);
  EXPECT_EQ(curve(), emaSmooth(raw, 0.6));
  ASSERT_EQ(plot->graphCount(), 2);

  // Summary: one row per run, final loss as recorded.
  QStandardItemModel* summary = compare->summaryModel();
  ASSERT_EQ(summary->rowCount(), 2);
  EXPECT_NEAR(summary->item(0, 1)->text().toDouble(), 5.0 * std::exp(-0.05 * 29) + 1.0, 1e-3);

  // CSV export of the curves has both series.
  const QString csv = plotToCsv(plot);
  EXPECT_EQ(csv.count(QString("#%1 baseline").arg(id_a)), 30);

  // Filtering, tagging and deleting go through the store.
  compare->filter()->setText("nomatch-xyz");
  EXPECT_EQ(compare->runsProxy()->rowCount(), 0);
  compare->filter()->clear();
  compare->selectRuns({id_b});
  compare->addTag("lr-sweep");
  ASSERT_TRUE(waitUntil([&] {
    store::RunReader r(s.db().toStdString());
    return r.run(id_b).tags == std::vector<std::string>{"lr-sweep"};
  }, 3000));
  compare->deleteSelected(/*confirmed=*/true);
  ASSERT_TRUE(waitUntil([&] { return compare->runsProxy()->rowCount() == 1; }, 5000));
  store::RunReader r(s.db().toStdString());
  EXPECT_EQ(r.list_runs().size(), 1u);
}

TEST(Compare, ExportsPlotAsPngAndPdfAndTablesAsCsv) {
  Studio s;
  nlohmann::json a = spec_to_json(JobSpec{});
  a["name"] = "export-a";
  nlohmann::json b = a;
  b["name"] = "export-b";
  b["train"]["lr"] = 0.02;
  const int64_t id_a = recordRun(s.db(), a, 12, 0.05);
  const int64_t id_b = recordRun(s.db(), b, 12, 0.1);
  CompareWorkspace* compare = s.window->compare();
  ASSERT_TRUE(showCompare(s, {id_a, id_b}, 2));
  ASSERT_EQ(compare->curvesPlot()->graphCount(), 2);

  QTemporaryDir out;
  // The plot as PNG (a real image of the widget's size at 2×) and as PDF.
  const QString png = out.filePath("curves.png"), pdf = out.filePath("curves.pdf");
  ASSERT_EQ(savePlot(compare->curvesPlot(), png), QString());
  ASSERT_EQ(savePlot(compare->curvesPlot(), pdf), QString());
  QImage image(png);
  ASSERT_FALSE(image.isNull()) << png.toStdString();
  EXPECT_EQ(image.width(), 2 * compare->curvesPlot()->width());
  QFile pdf_file(pdf);
  ASSERT_TRUE(pdf_file.open(QIODevice::ReadOnly));
  EXPECT_GT(pdf_file.size(), 1000);
  EXPECT_TRUE(pdf_file.read(5) == "%PDF-");
  // An unknown extension is refused with a reason, and nothing is written.
  EXPECT_TRUE(savePlot(compare->curvesPlot(), out.filePath("curves.bmp")).contains("unknown format"));
  EXPECT_FALSE(QFileInfo::exists(out.filePath("curves.bmp")));

  // The summary table as CSV: its header, then one row per run, in the table's order.
  QStandardItemModel* summary = compare->summaryModel();
  ASSERT_EQ(summary->rowCount(), 2);
  const QString csv = out.filePath("summary.csv");
  ASSERT_EQ(saveTable(summary, csv), QString());
  QFile csv_file(csv);
  ASSERT_TRUE(csv_file.open(QIODevice::ReadOnly | QIODevice::Text));
  const QStringList lines = QString::fromUtf8(csv_file.readAll()).split('\n', Qt::SkipEmptyParts);
  ASSERT_EQ(lines.size(), 1 + summary->rowCount());
  QStringList header;
  for (int c = 0; c < summary->columnCount(); ++c) header << summary->headerData(c, Qt::Horizontal).toString();
  EXPECT_EQ(lines[0].split(',').size(), summary->columnCount());
  EXPECT_TRUE(lines[0].startsWith(header[0])) << lines[0].toStdString();
  for (int r = 0; r < summary->rowCount(); ++r)
    EXPECT_TRUE(lines[1 + r].startsWith(summary->item(r, 0)->text())) << lines[1 + r].toStdString();
  EXPECT_TRUE(lines[1].contains("export-") && lines[2].contains("export-"));

  // The curves as CSV: a header and one row per point of each run.
  const QString curves_csv = out.filePath("curves.csv");
  ASSERT_EQ(savePlot(compare->curvesPlot(), curves_csv), QString());
  QFile cf(curves_csv);
  ASSERT_TRUE(cf.open(QIODevice::ReadOnly | QIODevice::Text));
  const QStringList rows = QString::fromUtf8(cf.readAll()).split('\n', Qt::SkipEmptyParts);
  EXPECT_EQ(rows.count("series,x,y"), 2);
  EXPECT_EQ(rows.size(), 2 + 12 + 12);
}

// The all-to-all share reads every step of each run, so a worker computes it: the cells show "…"
// first, then the slowest rank's time per step over the mean step time, on the right rows even
// when the user sorted the table meanwhile.
TEST(Compare, SummaryFillsTheAllToAllShareFromAWorker) {
  Studio s;
  nlohmann::json a = spec_to_json(JobSpec{});
  a["name"] = "slow-a2a";
  nlohmann::json b = a;
  b["name"] = "no-a2a";
  // Rank 1 is the slowest: 3000 µs dispatch + 1500 µs combine per step of 100 ms → 4.5 %.
  const int64_t id_a = recordRun(s.db(), a, 40, 0.05, {1000, 3000});
  const int64_t id_b = recordRun(s.db(), b, 20, 0.1);
  CompareWorkspace* compare = s.window->compare();
  s.window->workspaces()->setCurrentWidget(compare);
  s.window->poller()->refreshRuns();
  ASSERT_TRUE(waitUntil([&] { return compare->runsProxy()->rowCount() == 2; }, 5000));
  compare->selectRuns({id_a, id_b});
  QStandardItemModel* summary = compare->summaryModel();
  ASSERT_EQ(summary->rowCount(), 2);
  summary->sort(0, Qt::DescendingOrder);  // "#2 no-a2a" first now
  auto row_of = [&](int64_t id) {
    for (int r = 0; r < summary->rowCount(); ++r)
      if (summary->item(r, 0)->text().startsWith(QString("#%1 ").arg(id))) return r;
    return -1;
  };
  ASSERT_TRUE(waitUntil([&] {
    for (int r = 0; r < summary->rowCount(); ++r)
      if (summary->item(r, 5)->text() == "…") return false;
    return true;
  }, 10000));
  EXPECT_EQ(summary->item(row_of(id_a), 5)->text(), "4.5 %");
  EXPECT_NEAR(summary->item(row_of(id_a), 5)->data(Qt::UserRole).toDouble(), 4.5, 1e-9);
  EXPECT_EQ(summary->item(row_of(id_b), 5)->text(), "–");
}

// While a run trains, every poll lists the runs anew. The selected runs did not change, so Compare
// redraws nothing (10 runs × 100,000 steps cost 50 ms of GUI time a redraw, twice a second); a
// selected run that grows is redrawn with its new steps.
TEST(Compare, OnlyAChangeToASelectedRunRedrawsIt) {
  Studio s;
  nlohmann::json a = spec_to_json(JobSpec{});
  a["name"] = "finished-a";
  nlohmann::json b = a;
  b["name"] = "finished-b";
  const int64_t id_a = recordRun(s.db(), a, 30, 0.05);
  const int64_t id_b = recordRun(s.db(), b, 20, 0.1);
  CompareWorkspace* compare = s.window->compare();
  ASSERT_TRUE(showCompare(s, {id_a, id_b}, 2));
  const int redraws = compare->redrawCount();

  // A third run trains beside them, step by step, as the ingestor writes it.
  store::RunStore st(s.db().toStdString());
  nlohmann::json c = a;
  c["name"] = "training";
  const int64_t id_c = st.create_run("training", c.dump());
  store::RunWriteState state;
  auto steps_shown = [&] {
    for (int r = 0; r < compare->runsProxy()->rowCount(); ++r)
      if (compare->runsProxy()->index(r, RunsModel::Id).data(Qt::UserRole).toLongLong() == id_c)
        return compare->runsProxy()->index(r, RunsModel::Steps).data(Qt::UserRole).toLongLong();
    return qint64(-1);
  };
  auto record_steps = [&](int first, int last) {
    std::vector<store::Record> records;
    if (first == 0) {
      const auto start = test::runStart(c.dump());
      records.push_back(start);
    }
    for (int i = first; i < last; ++i) {
      store::StepRecord step;
      step.step = i;
      step.loss = 4.0 - 0.01 * i;
      step.tokens = 1024;
      step.step_ms = 100;
      records.push_back(step);
    }
    st.write_batch(id_c, records, state);
    ASSERT_TRUE(waitUntil([&] { return steps_shown() == last; }, 5000)) << steps_shown();
  };
  record_steps(0, 5);
  // From here on the same runs are listed: rows update in place (no reset, which re-measured every
  // row's columns and made the selection be restored), and the selection stays.
  int resets = 0;
  QObject::connect(compare->runsProxy(), &QAbstractItemModel::modelReset, [&] { ++resets; });
  for (int k = 1; k < 4; ++k) record_steps(5 * k, 5 * k + 5);
  EXPECT_EQ(compare->redrawCount(), redraws) << "a run outside the selection changed";
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(compare->runsView()->selectionModel()->selectedRows().size(), 2);

  // Selected, the training run's curve grows with it.
  compare->selectRuns({id_a, id_b, id_c});
  ASSERT_TRUE(waitUntil([&] { return !compare->curvesLoading(); }, 5000));
  auto points_of_c = [&] {
    for (int g = 0; g < compare->curvesPlot()->graphCount(); ++g)
      if (compare->curvesPlot()->graph(g)->name().startsWith(QString("#%1 ").arg(id_c)))
        return compare->curvesPlot()->graph(g)->data()->size();
    return -1;
  };
  EXPECT_EQ(points_of_c(), 20);
  record_steps(20, 25);
  EXPECT_TRUE(waitUntil([&] { return points_of_c() == 25; }, 5000)) << points_of_c();
  EXPECT_EQ(compare->summaryModel()->rowCount(), 3);

  // A row updated in place widens the column it outgrew (tokens/s with many digits).
  store::StepRecord fast;
  fast.step = 25;
  fast.loss = 3.0;
  fast.tokens = 1024;
  fast.tokens_per_s = 123456789012.0;
  st.write_batch(id_c, std::vector<store::Record>{fast}, state);
  const int wide = QFontMetrics(compare->runsView()->font()).horizontalAdvance("123456789012");
  EXPECT_TRUE(waitUntil([&] { return compare->runsView()->columnWidth(RunsModel::TokensPerS) >= wide; }, 5000))
      << compare->runsView()->columnWidth(RunsModel::TokensPerS) << " < " << wide;
}
