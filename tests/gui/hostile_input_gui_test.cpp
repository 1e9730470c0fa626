// Hostile input in the studio (docs/reliability.md): run names, tags and notes holding quotes, '$',
// '`', ';', '%1'-style placeholders, HTML, newlines, tabs and non-ASCII are shown as exactly that
// text in Compare (table, tooltip, filter), Live (run list, header), the reattach list, the Design
// status and baseline; the Hosts panel shows a refused field verbatim and refuses table cells the
// hostfile cannot hold; a run started from the studio on a store in a hostile directory records a
// hostile name byte for byte. Real widgets (offscreen), real SQLite files, the real runtime.
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QStatusBar>
#include <QTableWidget>
#include <QTextDocumentFragment>
#include <QTimer>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "compare/compare_workspace.h"
#include "compare/runs_model.h"
#include "design/design_workspace.h"
#include "design/estimates_view.h"
#include "design/spec_model.h"
#include "gui_test_util.h"
#include "hosts/host_prompts.h"
#include "hosts/hosts_panel.h"
#include "live/live_workspace.h"
#include "live/store_poller.h"
#include "remote_runs.h"
#include "run/run_launcher.h"
#include "run/run_workspace.h"
#include "run_reader.h"
#include "run_store.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::waitUntil;

namespace {

QString marker() { return QString("/tmp/moe-pwned-gui-%1").arg(QCoreApplication::applicationPid()); }

// Names without a line break (a one-line label folds it into a space, as HTML does).
QStringList hostileNames() {
  return {"a'b\"c",
          "$(touch " + marker() + ")",
          "`touch " + marker() + "`",
          "x; rm -rf ~",
          "two words",
          "tab\there",
          "ünïcødé ✓ 日本",
          "%2 %1 %4 %9 %%",
          "<b>not bold</b> &amp; <img src=x>"};
}

// What a label shows: its text as HTML when Qt renders it as rich text, else the text itself.
QString shownText(const QString& text, Qt::TextFormat format) {
  const bool rich = format == Qt::RichText || (format == Qt::AutoText && Qt::mightBeRichText(text));
  return rich ? QTextDocumentFragment::fromHtml(text).toPlainText() : text;
}
QString shown(const QLabel* l) { return shownText(l->text(), l->textFormat()); }

// A completed run of `steps` steps recorded through the store's own writer.
int64_t recordRun(const QString& db, const std::string& name, int steps) {
  store::RunStore st(db.toStdString());
  const int64_t id = st.create_run(name, "{\"schema\":1,\"name\":\"x\"}");
  std::vector<store::Record> records;
  const auto start = test::runStart("{\"schema\":1,\"name\":\"x\"}");
  records.push_back(start);
  for (int i = 1; i <= steps; ++i) {
    store::StepRecord s;
    s.step = i;
    s.loss = 5.0 / i;
    s.tokens = 1024;
    s.step_ms = 100;
    s.tokens_per_s = 10240;
    records.push_back(s);
  }
  store::RunEndRecord end;
  end.status = "completed";
  end.steps = steps;
  records.push_back(end);
  store::RunWriteState state;
  st.write_batch(id, records, state);
  return id;
}

}  // namespace

TEST(HostileGui, CompareLiveAndReattachShowNamesTagsAndNotesExactly) {
  moe::gui::test::Studio s;
  const QStringList names = hostileNames();
  QList<qint64> ids;
  for (const QString& n : names) ids << recordRun(s.db(), n.toStdString(), 3);
  const std::vector<std::string> tags = {"a'b\"c", "x; rm -rf ~", "<i>tag</i>", "%1"};
  const std::string note = "<b>bold?</b> & \"q\" $(id) %1";
  {
    store::RunStore st(s.db().toStdString());
    for (const auto& t : tags) st.add_tag(ids[0], t);
    st.set_notes(ids[0], note);
  }
  s.window->poller()->refreshRuns();
  CompareWorkspace* compare = s.window->compare();
  QSortFilterProxyModel* proxy = compare->runsProxy();
  ASSERT_TRUE(waitUntil([&] { return proxy->rowCount() == names.size(); }, 10000)) << proxy->rowCount();

  auto rowOf = [&](qint64 id) {
    for (int r = 0; r < proxy->rowCount(); ++r)
      if (proxy->index(r, RunsModel::Id).data().toLongLong() == id) return r;
    return -1;
  };
  for (int i = 0; i < names.size(); ++i) {
    const int r = rowOf(ids[i]);
    ASSERT_GE(r, 0);
    EXPECT_EQ(proxy->index(r, RunsModel::Name).data().toString(), names[i]);
  }
  const int r0 = rowOf(ids[0]);
  std::vector<std::string> sorted = tags;
  std::sort(sorted.begin(), sorted.end());
  QStringList want_tags;
  for (const auto& t : sorted) want_tags << QString::fromStdString(t);
  EXPECT_EQ(proxy->index(r0, RunsModel::Tags).data().toString(), want_tags.join(", "));
  // The note's tooltip shows the note, not the HTML it resembles.
  const QString tip = proxy->index(r0, RunsModel::Notes).data(Qt::ToolTipRole).toString();
  EXPECT_EQ(shownText(tip, Qt::AutoText).toStdString(), note);
  // The filter takes the text literally (no pattern syntax).
  for (int i = 1; i < names.size(); ++i) {
    compare->findChild<QLineEdit*>("runsFilter")->setText(names[i]);
    EXPECT_GE(rowOf(ids[i]), 0) << names[i].toStdString();
    EXPECT_LT(proxy->rowCount(), names.size()) << names[i].toStdString();
  }
  compare->findChild<QLineEdit*>("runsFilter")->clear();

  // Live: the run list has every name verbatim; the header names the followed run exactly.
  LiveWorkspace* live = s.window->live();
  auto* combo = live->findChild<QComboBox*>("liveRun");
  ASSERT_NE(combo, nullptr);
  ASSERT_TRUE(waitUntil([&] { return combo->count() >= names.size(); }, 10000));
  auto* info = live->findChild<QLabel*>("liveInfo");
  ASSERT_NE(info, nullptr);
  for (int i = 0; i < names.size(); ++i) {
    bool listed = false;
    for (int k = 0; k < combo->count(); ++k) listed |= combo->itemText(k) == QString("#%1 %2 (completed)").arg(ids[i]).arg(names[i]);
    EXPECT_TRUE(listed) << names[i].toStdString();
    live->followRun(ids[i]);
    const QString want = QString("#%1 ").arg(ids[i]) + names[i] + " · completed · step 3 · 1 rank · ";
    ASSERT_TRUE(waitUntil([&] { return shown(info).startsWith(QString("#%1 ").arg(ids[i])); }, 10000)) << shown(info).toStdString();
    // HTML folds a tab into a space, as it would a line break.
    EXPECT_EQ(shown(info).left(want.size()).toStdString(), QString(want).replace('\t', ' ').toStdString());
  }

  // Run ▸ Reattach: the list of remote runs left running names each run exactly.
  const int64_t remote = [&] {
    store::RunStore st(s.db().toStdString());
    const int64_t id = st.create_run("%2 %1 <b>r</b> $(id)");
    store::RemoteRunRow row;
    row.run_id = id;
    row.job_id = "run-" + std::to_string(id) + "-test";
    row.hostfile = "127.0.0.1 slots=1\n";
    row.master_port = 29500;
    store::add_remote_run(st, row, "[]");
    return id;
  }();
  QStringList offered;
  QTimer::singleShot(100, [&] {
    if (auto* dialog = qobject_cast<QInputDialog*>(QApplication::activeModalWidget())) {
      offered = dialog->comboBoxItems();
      dialog->reject();
    }
  });
  s.window->offerReattach(true);
  EXPECT_EQ(offered, QStringList{QString("run %1 · ").arg(remote) + "%2 %1 <b>r</b> $(id) · 0 steps stored"});
  EXPECT_FALSE(QFileInfo::exists(marker()));
}

TEST(HostileGui, DesignShowsAHostileSpecNameVerbatim) {
  moe::gui::test::Studio s;
  const QString name = "%1 %3 <b>x</b> & \"q\" ünï";
  ASSERT_TRUE(s.window->specModel()->setValue("name", name).isEmpty());
  EXPECT_TRUE(s.window->windowTitle().startsWith(name + " (")) << s.window->windowTitle().toStdString();
  // The status bar: "<name> · 1 rank · 0 errors, 0 warnings".
  bool found = false;
  for (QLabel* l : s.window->statusBar()->findChildren<QLabel*>())
    if (shown(l).startsWith(name + " · ")) {
      found = true;
      EXPECT_TRUE(shown(l).startsWith(name + " · 1 rank · 0 errors, ")) << shown(l).toStdString();
    }
  EXPECT_TRUE(found) << "no status label starts with the name";
  // Pin as Baseline: the comparison names the design exactly.
  auto* pin = s.window->design()->findChild<QPushButton*>("pinBaseline");
  ASSERT_NE(pin, nullptr);
  pin->click();
  const QString summary = shownText(s.window->design()->estimatesView()->summaryText(), Qt::RichText);
  EXPECT_TRUE(summary.contains("vs baseline " + name + " (dp 1 · tp 1 · pp 1 · ep 1): params "))
      << summary.toStdString();
}

TEST(HostileGui, HostsPanelShowsRefusedFieldsVerbatimAndRefusesCellsAHostfileCannotHold) {
  QTemporaryDir dir;
  HostPrompts prompts{nullptr};
  HostsPanel panel{&prompts};
  auto* label = panel.findChild<QLabel*>("hostsValidation");
  ASSERT_NE(label, nullptr);
  panel.setHostfileText("a'b\"c&d<i>x</i> slots=1\n");
  EXPECT_TRUE(shown(label).startsWith("Hosts panel:1: host 'a'b\"c&d<i>x</i>' is not a host name or address"))
      << shown(label).toStdString();
  // Without a '<' the escaped text was shown as is: host 'a&quot;b&amp;c'.
  panel.setHostfileText("a\"b&c slots=1\n");
  EXPECT_TRUE(shown(label).startsWith("Hosts panel:1: host 'a\"b&c' is not a host name or address"))
      << shown(label).toStdString();
  panel.setHostfileText("127.0.0.1 slots=1 user=$(touch${IFS}" + marker() + ")\n");
  EXPECT_TRUE(shown(label).startsWith("Hosts panel:1: user '$(touch${IFS}" + marker() + ")' may hold only"))
      << shown(label).toStdString();
  EXPECT_EQ(panel.table()->rowCount(), 0);

  // Cells: a blank splits a field, a line break makes another host line; both are refused.
  remote::HostEntry h;
  h.host = "127.0.0.1";
  h.port = 2222;
  h.slots = 1;
  panel.addHost(h);
  ASSERT_EQ(panel.hosts().size(), 1u) << shown(label).toStdString();
  panel.table()->item(0, HostsPanel::colUser)->setText("alice bob");
  EXPECT_TRUE(panel.hosts().empty());
  EXPECT_EQ(shown(label).toStdString(), "Hosts panel:1: user 'alice bob' must not contain spaces, tabs or line breaks");
  panel.table()->item(0, HostsPanel::colUser)->setText("");
  panel.table()->item(0, HostsPanel::colHost)->setText("127.0.0.1\nevil.example slots=64");
  EXPECT_TRUE(panel.hosts().empty()) << "a line break in a cell added a host";
  EXPECT_EQ(shown(label).toStdString(),
            "Hosts panel:1: host '127.0.0.1\\nevil.example slots=64' must not contain spaces, tabs or line breaks");
  panel.table()->item(0, HostsPanel::colHost)->setText("#127.0.0.1");
  EXPECT_TRUE(panel.hosts().empty()) << "a '#' commented the row out";
  // A key path with quotes, '$', '#' and non-ASCII (no blank) is kept exactly.
  panel.table()->item(0, HostsPanel::colHost)->setText("127.0.0.1");
  panel.table()->item(0, HostsPanel::colKey)->setText("/keys/'q'\"$HOME#1ü/id");
  const auto hs = panel.hosts();
  ASSERT_EQ(hs.size(), 1u) << shown(label).toStdString();
  EXPECT_EQ(hs[0].key, "/keys/'q'\"$HOME#1ü/id");
  EXPECT_FALSE(QFileInfo::exists(marker()));
}

// The studio on a store in a directory named with quotes, '$', '`', ';', '%1' and non-ASCII runs
// tiny-cpu (shrunk) through the run session and the real runtime; the design's hostile name (with a line
// break) is the run's name in the store, byte for byte, and Compare lists it.
TEST(HostileGui, ARunStartedFromTheStudioRecordsAHostileNameExactly) {
  ASSERT_TRUE(QFileInfo(RunLauncher::runtimePath()).isExecutable()) << RunLauncher::runtimePath().toStdString();
  QTemporaryDir tmp;
  const QString dir = tmp.filePath("d 'q' \"dq\" $HOME `id` ; ü ✓ 日本 %1");
  ASSERT_TRUE(QDir().mkpath(dir));
  const QString db = dir + "/runs $x 'y'.sqlite";
  MainWindow w(db);
  w.show();
  SpecModel* model = w.specModel();
  w.loadPreset("tiny-cpu");
  const QString name = "a'b\"c $(touch " + marker() + ") `id` x; rm -rf ~\nline2\ttab ünïcødé ✓ 日本 %1";
  for (const auto& [k, v] : std::vector<std::pair<QString, QVariant>>{
           {"name", name}, {"train.steps", 3}, {"train.warmup_steps", 1}, {"model.n_layers", 2},
           {"model.d_model", 32}, {"model.n_heads", 2}, {"model.n_kv_heads", 2}, {"model.moe.d_expert", 32},
           {"model.seq_len", 32}}) {
    ASSERT_TRUE(model->setValue(k, v).isEmpty()) << k.toStdString();
  }
  ASSERT_FALSE(model->hasErrors());
  w.runAction()->trigger();
  ASSERT_TRUE(w.launcher()->isRunning()) << w.runWorkspace()->statusText().toStdString();
  ASSERT_TRUE(waitUntil([&] { return !w.launcher()->isRunning(); }, 300000)) << "the run did not end";
  EXPECT_EQ(w.runWorkspace()->statusText(), "completed");
  store::RunReader reader(db.toStdString());
  const auto runs = reader.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, "completed");
  EXPECT_EQ(runs[0].name, name.toStdString());
  EXPECT_EQ(runs[0].n_steps, 3);
  w.poller()->refreshRuns();
  QSortFilterProxyModel* proxy = w.compare()->runsProxy();
  ASSERT_TRUE(waitUntil([&] { return proxy->rowCount() == 1; }, 10000));
  EXPECT_EQ(proxy->index(0, RunsModel::Name).data().toString(), name);
  EXPECT_FALSE(QFileInfo::exists(marker()));
}
