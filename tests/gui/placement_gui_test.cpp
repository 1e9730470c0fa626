// Expert placement in the studio (docs/placement.md, docs/studio.md): the Design workspace's
// placement view draws core's placement slot by slot (members grouped by node, replicas marked,
// hovering or clicking an expert outlines all its replicas, one layer at a time), shows validation's
// message for an invalid map; "Suggest placement from this run" reads a real store file's routing,
// lists every strategy and fills the design with the chosen plan and its recorded load.
// Set MOE_GUI_SHOTS=DIR to save screenshots of the view and the dialog there.
#include <QApplication>
#include <QComboBox>
#include <QCoreApplication>
#include <QDir>
#include <QLabel>
#include <QMouseEvent>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTableView>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

#include "compare/compare_workspace.h"
#include "compare/placement_suggest_dialog.h"
#include "design/design_workspace.h"
#include "design/placement_grid.h"
#include "design/placement_view.h"
#include "design/spec_model.h"
#include "expert_placement.h"
#include "common/theme.h"
#include "gui_test_util.h"
#include "ingestor.h"
#include "job_spec.h"
#include "record_codec.h"
#include "run_store.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;
using moe::gui::test::waitUntil;

namespace {

// Saves w as DIR/name.png, and as DIR/name-dark.png on a dark palette (moe-studio --dark's), to
// check what the views look like; only with MOE_GUI_SHOTS=DIR.
void shot(QWidget* w, const QString& name) {
  const QString dir = qEnvironmentVariable("MOE_GUI_SHOTS");
  if (dir.isEmpty()) return;
  QDir().mkpath(dir);
  QCoreApplication::processEvents();
  EXPECT_TRUE(w->grab().save(QDir(dir).filePath(name + ".png"))) << name.toStdString();
  const QPalette light = QApplication::palette();
  QApplication::setPalette(darkPalette());
  QCoreApplication::processEvents();
  EXPECT_TRUE(w->grab().save(QDir(dir).filePath(name + "-dark.png"))) << name.toStdString();
  QApplication::setPalette(light);
  QCoreApplication::processEvents();
}

void settle() {
  for (int i = 0; i < 5; ++i) QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
}

// The Design workspace with its placement view in front (so the grid has its real size).
PlacementView* showPlacement(Studio& s) {
  s.window->workspaces()->setCurrentWidget(s.window->design());
  s.window->design()->viewTabs()->setCurrentIndex(1);
  settle();
  return s.window->design()->placementView();
}

void mouse(QWidget* w, QEvent::Type type, const QPointF& at, Qt::MouseButton button = Qt::NoButton) {
  QMouseEvent e(type, at, w->mapToGlobal(at), button, button == Qt::NoButton ? Qt::NoButton : Qt::MouseButtons(button),
                Qt::NoModifier);
  QCoreApplication::sendEvent(w, &e);
}

// tiny-cpu on 4 EP members, 2 GPUs per node (2 nodes), one node entry per node.
void fourMembersOnTwoNodes(SpecModel* model) {
  ASSERT_TRUE(model->setValue("parallel.ep", 4).isEmpty());
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 2).isEmpty());
  model->setNodes({NodeSpec{"localhost", 22, "", 2}, NodeSpec{"localhost", 22, "", 2}});
}

}  // namespace

TEST(PlacementGui, ReplicateSpecDrawsEverySlotAndHighlightsReplicas) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  fourMembersOnTwoNodes(model);
  ASSERT_TRUE(model->setValue("placement.strategy", QString("replicate")).isEmpty());
  ASSERT_TRUE(model->setValue("placement.slots_per_rank", 3).isEmpty());
  for (const auto& d : model->diagnostics())
    if (d.path.rfind("placement", 0) == 0 || d.path.rfind("parallel", 0) == 0) ADD_FAILURE() << d.text();

  PlacementView* view = showPlacement(s);
  PlacementGrid* grid = view->grid();
  const Placement expected = placement_for_spec(model->spec());  // what a run of this design starts with
  ASSERT_EQ(view->placement(), expected);
  ASSERT_EQ(view->layerCount(), 4);  // tiny-cpu: 4 MoE layers
  EXPECT_TRUE(view->problem().isEmpty()) << view->problem().toStdString();

  // One cell per physical slot: 4 members × 3 slots, each the slot's logical expert.
  const LayerPlacement& lp = expected[0];
  ASSERT_EQ(lp.slots_per_rank, 3);
  const auto& cells = grid->cells();
  ASSERT_EQ(cells.size(), 12u);
  std::set<int64_t> experts;
  int replicated_cells = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    const PlacementCell& c = cells[i];
    EXPECT_EQ(c.slot, int64_t(i));
    EXPECT_EQ(c.member, c.slot / 3);
    EXPECT_EQ(c.node, c.member / 2);  // 2 GPUs per node
    EXPECT_EQ(c.expert, lp.phy_to_log[c.slot]);
    EXPECT_EQ(c.replicas, int64_t(lp.log_to_phy[c.expert].size()));
    EXPECT_NEAR(c.share, 1.0 / 8, 1e-12);  // a fresh design: equal load
    EXPECT_FALSE(c.rect.isEmpty());
    experts.insert(c.expert);
    replicated_cells += c.replicas > 1;
  }
  EXPECT_EQ(experts.size(), 8u);          // every expert has a slot
  EXPECT_EQ(replicated_cells, 12 - 8 + 4);  // 4 spare slots: 4 experts twice
  // Columns are members, slots stack within a column; nodes are apart.
  EXPECT_DOUBLE_EQ(cells[0].rect.left(), cells[2].rect.left());
  EXPECT_GT(cells[3].rect.left(), cells[0].rect.right() - 0.5);
  const double same_node_gap = cells[3].rect.left() - cells[2].rect.right();
  const double node_gap = cells[6].rect.left() - cells[5].rect.right();  // member 1 → member 2: node 0 → 1
  EXPECT_GT(node_gap, same_node_gap + 4);
  EXPECT_FALSE(view->showsRecordedLoad());
  EXPECT_TRUE(view->loadLabel()->text().contains("equal load")) << view->loadLabel()->text().toStdString();

  // The tooltip names slot, member, node, expert, its replicas and the load.
  int64_t rep_slot = -1;
  for (const auto& c : cells)
    if (c.replicas > 1 && rep_slot < 0) rep_slot = c.slot;
  ASSERT_GE(rep_slot, 0);
  const int64_t e = lp.phy_to_log[rep_slot];
  const auto& replicas = lp.log_to_phy[e];
  const QString tip = grid->slotDescription(rep_slot);
  EXPECT_TRUE(tip.contains(QString("slot %1 on EP member %2").arg(rep_slot).arg(rep_slot / 3))) << tip.toStdString();
  EXPECT_TRUE(tip.contains(QString("node %1").arg(rep_slot / 3 / 2))) << tip.toStdString();
  EXPECT_TRUE(tip.contains(QString("expert %1 · 2 replicas").arg(e))) << tip.toStdString();
  for (int64_t r : replicas) EXPECT_TRUE(tip.contains(QString("slot %1 (member %2").arg(r).arg(r / 3))) << tip.toStdString();
  EXPECT_TRUE(tip.contains("load: 12.5 %")) << tip.toStdString();
  EXPECT_TRUE(tip.contains("6.2 % per replica") || tip.contains("6.3 % per replica")) << tip.toStdString();

  // Hovering a replica outlines every replica of its expert; leaving clears it.
  mouse(grid, QEvent::MouseMove, cells[size_t(rep_slot)].rect.center());
  EXPECT_EQ(grid->highlightedExpert(), e);
  EXPECT_EQ(grid->highlightedSlots(), replicas);
  EXPECT_EQ(grid->slotAt(cells[size_t(replicas.back())].rect.center().toPoint()), replicas.back());
  shot(s.window.get(), "design-placement-hover");
  QEvent leave(QEvent::Leave);
  QCoreApplication::sendEvent(grid, &leave);
  EXPECT_EQ(grid->highlightedExpert(), -1);
  EXPECT_TRUE(grid->highlightedSlots().empty());
  // A click keeps the selection while the mouse is elsewhere; hovering another expert shows that
  // one, leaving goes back to the selected one; a second click releases it.
  mouse(grid, QEvent::MouseButtonPress, cells[size_t(replicas.front())].rect.center(), Qt::LeftButton);
  EXPECT_EQ(grid->selectedExpert(), e);
  QCoreApplication::sendEvent(grid, &leave);
  EXPECT_EQ(grid->highlightedSlots(), replicas);
  int64_t other = -1;
  for (const auto& c : cells)
    if (c.expert != e) { other = c.slot; break; }
  mouse(grid, QEvent::MouseMove, cells[size_t(other)].rect.center());
  EXPECT_EQ(grid->highlightedExpert(), lp.phy_to_log[other]);
  QCoreApplication::sendEvent(grid, &leave);
  EXPECT_EQ(grid->highlightedExpert(), e);
  mouse(grid, QEvent::MouseButtonPress, cells[size_t(replicas.front())].rect.center(), Qt::LeftButton);
  EXPECT_EQ(grid->selectedExpert(), -1);

  // Member shares: Σ share / replicas over each member's slots; with equal load every member
  // computes 1/4 when each holds 2 "expert equivalents" (what replicate balances to).
  double total = 0;
  for (int64_t m = 0; m < 4; ++m) total += grid->memberShare(m);
  EXPECT_NEAR(total, 1.0, 1e-12);

  // The view follows the spec: two slots per rank (no spare) is the uniform placement, no replica.
  ASSERT_TRUE(model->setValue("placement.slots_per_rank", 2).isEmpty());
  ASSERT_EQ(grid->cells().size(), 8u);
  for (const auto& c : grid->cells()) EXPECT_EQ(c.replicas, 1);
  ASSERT_TRUE(model->setValue("placement.slots_per_rank", 3).isEmpty());
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 4).isEmpty());  // one node now
  ASSERT_EQ(grid->cells().size(), 12u);
  for (const auto& c : grid->cells()) EXPECT_EQ(c.node, 0);
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 2).isEmpty());
  mouse(grid, QEvent::MouseMove, grid->cells()[size_t(rep_slot)].rect.center());
  shot(s.window.get(), "design-placement");
}

TEST(PlacementGui, LayerSelectorSwitchesLayersOfAnExplicitMap) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  fourMembersOnTwoNodes(model);
  ASSERT_TRUE(model->setValue("placement.strategy", QString("explicit")).isEmpty());
  // The map typed into the Placement form: one line per MoE layer, each a different permutation.
  const std::vector<std::vector<int64_t>> rows = {
      {0, 1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4, 3, 2, 1, 0}, {0, 4, 1, 5, 2, 6, 3, 7}, {3, 2, 1, 0, 7, 6, 5, 4}};
  QStringList lines;
  for (const auto& r : rows) {
    QStringList cells;
    for (int64_t v : r) cells << QString::number(v);
    lines << cells.join(", ");
  }
  auto* editor = qobject_cast<QPlainTextEdit*>(s.window->design()->editorFor("placement.map"));
  ASSERT_NE(editor, nullptr) << "placement.map has a rows editor";
  editor->setPlainText(lines.join('\n'));
  ASSERT_EQ(model->spec().placement.map, rows);
  for (const auto& d : model->diagnostics())
    if (d.path.rfind("placement", 0) == 0) ADD_FAILURE() << d.text();

  PlacementView* view = showPlacement(s);
  QComboBox* layers = view->layerSelector();
  ASSERT_EQ(layers->count(), 4);
  EXPECT_TRUE(layers->isEnabled());
  for (int l = 0; l < 4; ++l) {
    layers->setCurrentIndex(l);  // as a user picking the layer
    EXPECT_EQ(view->currentLayer(), l);
    ASSERT_EQ(view->grid()->cells().size(), 8u);
    for (const auto& c : view->grid()->cells()) EXPECT_EQ(c.expert, rows[size_t(l)][size_t(c.slot)]) << "layer " << l;
    EXPECT_TRUE(view->grid()->slotDescription(0).startsWith(QString("layer %1\n").arg(l)));
  }
  // The chosen layer survives an edit that keeps the layer count.
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 4).isEmpty());
  EXPECT_EQ(view->currentLayer(), 3);
  EXPECT_EQ(view->grid()->cells()[0].expert, 3);
  // Loading a spec back shows the map in the form.
  const QString file = s.dir.filePath("explicit.json");
  model->save(file);
  s.window->loadPreset("tiny-cpu");
  EXPECT_TRUE(editor->toPlainText().isEmpty());
  s.window->openSpec(file);
  EXPECT_EQ(editor->toPlainText(), lines.join('\n'));
}

TEST(PlacementGui, InvalidExplicitMapShowsTheValidationMessage) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  fourMembersOnTwoNodes(model);
  PlacementView* view = showPlacement(s);
  ASSERT_EQ(view->grid()->cells().size(), 8u);  // uniform
  ASSERT_TRUE(model->setValue("placement.strategy", QString("explicit")).isEmpty());
  // Expert 0 twice on EP member 0 (slots 0 and 1): core refuses two replicas on one member.
  ASSERT_TRUE(model->setJsonValue("placement.slots_per_rank", nlohmann::json(3)).isEmpty());
  using Map = std::vector<std::vector<int64_t>>;
  ASSERT_TRUE(model->setJsonValue("placement.map", nlohmann::json(Map{{0, 0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3}})).isEmpty());
  std::string rule;
  for (const auto& d : model->diagnostics())
    if (d.severity == Severity::error && d.path.rfind("placement.map", 0) == 0 && rule.empty()) rule = d.path + ": " + d.message;
  ASSERT_FALSE(rule.empty()) << "validation reports the map";
  EXPECT_NE(rule.find("two replicas"), std::string::npos) << rule;
  EXPECT_EQ(view->problem(), QString::fromStdString("✖ " + rule));
  EXPECT_TRUE(view->grid()->cells().empty());
  EXPECT_FALSE(view->grid()->hasLayer());
  EXPECT_EQ(view->layerCount(), 0);
  // The form shows the same rule under the map.
  EXPECT_TRUE(s.window->design()->messageFor("placement.map").contains("two replicas"));
  shot(s.window.get(), "design-placement-invalid");
  // A valid map brings the grid back.
  ASSERT_TRUE(model->setJsonValue("placement.map", nlohmann::json(Map{{0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3}})).isEmpty());
  // Slot 8 (member 2) holds expert 0 again, slot 0 (member 0) the first: allowed.
  EXPECT_TRUE(view->problem().isEmpty()) << view->problem().toStdString();
  ASSERT_EQ(view->grid()->cells().size(), 12u);
  EXPECT_EQ(view->grid()->cells()[8].expert, 0);
  EXPECT_EQ(view->grid()->cells()[8].replicas, 2);
}

namespace {

// A spec recorded by a run: 8 experts, top-2, 2 MoE layers, ep 4 on 2 nodes × 2 GPUs.
JobSpec recordedSpec() {
  JobSpec spec;
  spec.name = "routed-run";
  spec.model.vocab_size = 256;
  spec.model.seq_len = 64;
  spec.model.d_model = 64;
  spec.model.n_layers = 2;
  spec.model.n_heads = 4;
  spec.model.n_kv_heads = 4;
  spec.model.moe.num_experts = 8;
  spec.model.moe.top_k = 2;
  spec.model.moe.d_expert = 128;
  spec.parallel.ep = 4;
  spec.parallel.gpus_per_node = 2;
  spec.cluster.nodes = {NodeSpec{"localhost", 22, "", 2}, NodeSpec{"localhost", 22, "", 2}};
  return spec;
}

// Expert loads of a layer: a hot expert and a long tail, different per layer.
std::vector<int64_t> layerCounts(int64_t layer, int64_t step) {
  std::vector<int64_t> counts(8);
  for (int64_t e = 0; e < 8; ++e) counts[size_t(e)] = 1600 / (1 + ((e + 3 * layer) % 8)) + (step % 3);
  return counts;
}

// Writes the run's metrics stream (JSON Lines through core's writer) and ingests it into the store.
int64_t ingestRoutedRun(const QString& db, const JobSpec& spec, int64_t steps) {
  const std::string spec_text = spec_to_json(spec).dump();
  int64_t id = 0;
  {
    store::RunStore st(db.toStdString());
    id = st.create_run(spec.name, spec_text);
  }
  std::string stream;
  const auto start = test::runStart(spec_text, 4);
  metrics::append_line(stream, start);
  for (int64_t layer = 0; layer < 2; ++layer) {
    metrics::PlacementRecord p;
    p.layer = layer;
    p.slots_per_rank = 2;
    p.phy_to_log = {0, 1, 2, 3, 4, 5, 6, 7};
    metrics::append_line(stream, p);
  }
  for (int64_t step = 1; step <= steps; ++step) {
    metrics::StepRecord r;
    r.step = step;
    r.loss = 5.0 / double(step);
    r.lr = 1e-3;
    r.tokens = 4096;
    r.step_ms = 50;
    r.tokens_per_s = 81920;
    metrics::append_line(stream, r);
    for (int64_t layer = 0; layer < 2; ++layer) {
      metrics::ExpertLoadRecord l;
      l.step = step;
      l.layer = layer;
      l.counts = layerCounts(layer, step);
      l.dropped.assign(8, 0);
      metrics::append_line(stream, l);
      if (step % 5 == 0) {  // pairs {0,5}, {1,6}, {2,7}, {3,4} chosen together far more often
        metrics::CoselectionRecord c;
        c.step = step;
        c.layer = layer;
        c.experts = 8;
        for (int64_t a = 0; a < 8; ++a)
          for (int64_t b = a + 1; b < 8; ++b) {
            const bool pair = (a < 4 && b == a + 5) || (a == 3 && b == 4);
            c.pairs.insert(c.pairs.end(), {a, b, pair ? 500 : 5});
          }
        metrics::append_line(stream, c);
      }
    }
  }
  metrics::RunEndRecord end;
  end.status = "completed";
  end.steps = steps;
  metrics::append_line(stream, end);
  store::Ingestor ing(db.toStdString(), id);
  ing.feed(stream);
  const store::IngestResult r = ing.finish();
  EXPECT_EQ(r.malformed, 0);
  EXPECT_EQ(r.status, "completed");
  return id;
}

}  // namespace

TEST(PlacementGui, SuggestDialogListsEveryStrategyAndUsesOneInDesign) {
  Studio s;
  const JobSpec spec = recordedSpec();
  const int64_t run = ingestRoutedRun(s.db(), spec, 20);
  CompareWorkspace* compare = s.window->compare();
  s.window->workspaces()->setCurrentWidget(compare);
  s.window->poller()->refreshRuns();
  ASSERT_TRUE(waitUntil([&] { return compare->runsProxy()->rowCount() == 1; }, 5000));
  compare->selectRuns({run});
  ASSERT_TRUE(waitUntil([&] { return !compare->curvesLoading(); }, 5000));
  auto* suggest = compare->findChild<QPushButton*>("suggestPlacement");
  ASSERT_NE(suggest, nullptr);
  EXPECT_TRUE(suggest->isEnabled());  // one run selected
  shot(s.window.get(), "compare-suggest-button");

  PlacementSuggestDialog* dialog = compare->suggestPlacement(run);
  ASSERT_NE(dialog, nullptr);
  EXPECT_TRUE(dialog->isVisible());
  ASSERT_TRUE(waitUntil([&] { return dialog->isReady(); }, 30000)) << dialog->status().toStdString();
  EXPECT_EQ(dialog->gpusPerNode()->value(), 2);
  EXPECT_EQ(dialog->slotsPerRank()->value(), 0);

  // Every strategy, in core's order, with its figures (no spare slot: all four place the layout).
  QStandardItemModel* table = dialog->table();
  ASSERT_EQ(table->rowCount(), 4) << dialog->status().toStdString();
  const QStringList expected{"uniform", "replicate", "hierarchical", "data_driven"};
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(table->item(r, PlacementSuggestDialog::Strategy)->text(), expected[r]);
    EXPECT_FALSE(table->item(r, PlacementSuggestDialog::Strategy)->toolTip().isEmpty());  // core's description
    const auto& sg = dialog->suggestions()[size_t(r)];
    EXPECT_TRUE(sg.error.empty()) << sg.strategy << ": " << sg.error;
    EXPECT_EQ(table->item(r, PlacementSuggestDialog::MaxOverMean)->text(), QString::number(sg.max_over_mean, 'f', 3));
    EXPECT_TRUE(table->item(r, PlacementSuggestDialog::InterShare)->text().endsWith(" %"));
    EXPECT_NE(table->item(r, PlacementSuggestDialog::A2aMs)->text(), "–");  // H100-SXM links are priced
  }
  // Data-driven keeps the co-selected pairs on one node: fewer hierarchical cross-node rows than uniform.
  EXPECT_LT(dialog->suggestions()[3].hier_inter_rows, dialog->suggestions()[0].hier_inter_rows);

  // One spare slot per rank: uniform refuses spare slots (its note says why), the others replicate
  // the hot experts and balance the members better than uniform did.
  const double uniform_imbalance = dialog->suggestions()[0].max_over_mean;
  dialog->slotsPerRank()->setValue(3);
  ASSERT_TRUE(waitUntil([&] { return dialog->isReady(); }, 30000)) << dialog->status().toStdString();
  ASSERT_EQ(table->rowCount(), 4);
  EXPECT_FALSE(dialog->suggestions()[0].error.empty());
  EXPECT_FALSE(table->item(0, PlacementSuggestDialog::Note)->text().isEmpty());
  EXPECT_EQ(table->item(0, PlacementSuggestDialog::MaxOverMean)->text(), "–");
  const auto& replicate = dialog->suggestions()[1];
  ASSERT_TRUE(replicate.error.empty()) << replicate.error;
  EXPECT_LT(replicate.max_over_mean, uniform_imbalance);
  EXPECT_EQ(replicate.placement.size(), 2u);
  EXPECT_EQ(replicate.placement[0].slots(), 12);
  EXPECT_NE(replicate.placement[0].phy_to_log, replicate.placement[1].phy_to_log);  // the layers' loads differ
  EXPECT_TRUE(dialog->findChild<QLabel*>("layoutNote")->text().contains("4 spare"));
  // The GPUs per node change the layout the strategies plan for.
  dialog->gpusPerNode()->setValue(4);
  ASSERT_TRUE(waitUntil([&] { return dialog->isReady(); }, 30000));
  EXPECT_EQ(dialog->plannedSpec().parallel.gpus_per_node, 4);
  EXPECT_TRUE(dialog->findChild<QLabel*>("layoutNote")->text().contains("on 1 node"));
  dialog->gpusPerNode()->setValue(2);
  ASSERT_TRUE(waitUntil([&] { return dialog->isReady(); }, 30000));
  ASSERT_TRUE(dialog->selectStrategy("replicate"));
  ASSERT_TRUE(dialog->useButton()->isEnabled());
  shot(dialog, "placement-suggest-dialog");

  // Use in Design: the run's spec, strategy explicit, the chosen map; the view shows the recorded load.
  const store::PlacementSuggestion chosen = dialog->suggestions()[1];
  dialog->useButton()->click();
  SpecModel* model = s.window->specModel();
  EXPECT_EQ(s.window->workspaces()->currentWidget(), s.window->design());
  const JobSpec& design = model->spec();
  EXPECT_EQ(design.name, spec.name);
  EXPECT_EQ(design.placement.strategy, "explicit");
  EXPECT_EQ(design.placement.slots_per_rank, 3);
  ASSERT_EQ(design.placement.map.size(), 2u);
  for (size_t l = 0; l < 2; ++l) EXPECT_EQ(design.placement.map[l], chosen.placement[l].phy_to_log);
  for (const auto& d : model->diagnostics())
    if (d.path.rfind("placement", 0) == 0) ADD_FAILURE() << d.text();
  settle();
  PlacementView* view = s.window->design()->placementView();
  EXPECT_EQ(s.window->design()->viewTabs()->currentIndex(), 1);
  EXPECT_TRUE(view->hasRecordedLoad());
  EXPECT_TRUE(view->showsRecordedLoad());
  EXPECT_TRUE(view->loadLabel()->text().contains(QString("run #%1").arg(run))) << view->loadLabel()->text().toStdString();
  ASSERT_EQ(view->placement(), chosen.placement);
  // Layer 1's cells: its map, coloured by its recorded share (the mean kept rows over the 20 steps).
  view->setCurrentLayer(1);
  std::vector<double> mean(8, 0.0);
  for (int64_t step = 1; step <= 20; ++step)
    for (int64_t e = 0; e < 8; ++e) mean[size_t(e)] += double(layerCounts(1, step)[size_t(e)]) / 20.0;
  const double total = std::accumulate(mean.begin(), mean.end(), 0.0);
  ASSERT_EQ(view->grid()->cells().size(), 12u);
  for (const auto& c : view->grid()->cells()) {
    EXPECT_EQ(c.expert, chosen.placement[1].phy_to_log[size_t(c.slot)]);
    EXPECT_NEAR(c.share, mean[size_t(c.expert)] / total, 1e-9);
  }
  EXPECT_TRUE(view->grid()->slotDescription(0).contains("recorded"));
  // The Placement form shows the map; choosing that form keeps the placement view in front.
  s.window->design()->formTabs()->setCurrentIndex(3);
  settle();
  EXPECT_EQ(s.window->design()->viewTabs()->currentIndex(), 1);
  auto* map_editor = qobject_cast<QPlainTextEdit*>(s.window->design()->editorFor("placement.map"));
  ASSERT_NE(map_editor, nullptr);
  EXPECT_EQ(map_editor->toPlainText().count('\n'), 1);  // two rows
  shot(s.window.get(), "design-placement-recorded");
  s.window->design()->formTabs()->setCurrentIndex(2);  // Parallel: the layout comes forward
  EXPECT_EQ(s.window->design()->viewTabs()->currentIndex(), 0);
  // A new design forgets the recorded load.
  s.window->loadPreset("tiny-cpu");
  EXPECT_FALSE(view->hasRecordedLoad());
}

TEST(PlacementGui, SuggestDialogExplainsARunWithoutRouting) {
  Studio s;
  int64_t id = 0;
  {
    store::RunStore st(s.db().toStdString());
    id = st.create_run("no-routing", spec_to_json(recordedSpec()).dump());
  }
  CompareWorkspace* compare = s.window->compare();
  PlacementSuggestDialog* dialog = compare->suggestPlacement(id);
  ASSERT_TRUE(waitUntil([&] { return dialog->isReady(); }, 30000));
  EXPECT_EQ(dialog->table()->rowCount(), 0);
  EXPECT_TRUE(dialog->status().contains("no expert_load records")) << dialog->status().toStdString();
  EXPECT_FALSE(dialog->useButton()->isEnabled());
  EXPECT_FALSE(dialog->useSelected().isEmpty());
  dialog->close();
}
