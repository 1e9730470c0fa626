// Design workspace: edits reach the spec and the estimates, core's rules show inline on the field
// and disable Run, every preset loads into a valid design, the layout grid describes ranks, and a
// Hugging Face config.json imports into the design.
#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QFileInfo>
#include <QMenu>
#include <QMenuBar>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QThread>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <gtest/gtest.h>

#include "a2a_simulator.h"
#include "cpu_runtime_limits.h"
#include "common/qcp.h"
#include "design/a2a_scaling_view.h"
#include "design/design_workspace.h"
#include "hardware_profile.h"
#include "design/estimates_view.h"
#include "design/layout_view.h"
#include "design/spec_model.h"
#include "engine_export.h"
#include "gui_test_util.h"
#include "job_spec.h"
#include "run/run_workspace.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;

TEST(Design, EditingAFieldUpdatesSpecAndEstimates) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_FALSE(model->hasErrors());
  ASSERT_TRUE(model->plan().has_value());
  const double params_before = model->plan()->params.total;
  const double routed_before = model->plan()->params.routed_experts;
  const QString summary_before = s.window->design()->estimatesView()->summaryText();

  auto* d_expert = qobject_cast<QSpinBox*>(s.window->design()->editorFor("model.moe.d_expert"));
  ASSERT_NE(d_expert, nullptr);
  const int64_t old = model->spec().model.moe.d_expert;
  d_expert->setValue(int(old * 2));  // as a user typing a new value

  EXPECT_EQ(model->spec().model.moe.d_expert, old * 2);
  EXPECT_EQ(model->json()["model"]["moe"]["d_expert"].get<int64_t>(), old * 2);
  ASSERT_TRUE(model->plan().has_value());
  // Routed experts are 3·d·d_expert each: doubling d_expert doubles the routed-expert params.
  EXPECT_GT(model->plan()->params.total, params_before);
  EXPECT_NEAR(model->plan()->params.routed_experts, 2 * routed_before, 1e-6 * routed_before);
  EXPECT_NE(s.window->design()->estimatesView()->summaryText(), summary_before);
  EXPECT_TRUE(model->isModified());

  // A double field typed as text.
  auto* lr = qobject_cast<QLineEdit*>(s.window->design()->editorFor("train.lr"));
  ASSERT_NE(lr, nullptr);
  lr->setText("0.0005");
  Q_EMIT lr->textEdited("0.0005");
  EXPECT_DOUBLE_EQ(model->spec().train.lr, 0.0005);
}

// parallel.pp_layers, a list of whole numbers, is typed as "3, 1"; a wrong count is core's error
// under the field, a word that is not a number an inline error, and the spec keeps its last list.
TEST(Design, PipelineStageSplitIsTypedAsAList) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");  // 4 layers
  ASSERT_TRUE(model->setValue("parallel.pp", 2).isEmpty());
  ASSERT_TRUE(model->setValue("cluster.nodes.0.slots", 2).isEmpty());
  auto* split = qobject_cast<QLineEdit*>(s.window->design()->editorFor("parallel.pp_layers"));
  ASSERT_NE(split, nullptr);
  EXPECT_EQ(split->text(), "");
  split->setText("3, 1");
  Q_EMIT split->textEdited("3, 1");
  EXPECT_EQ(model->spec().parallel.pp_layers, (std::vector<int64_t>{3, 1}));
  EXPECT_FALSE(model->hasErrors());
  split->setText("3, 2");
  Q_EMIT split->textEdited("3, 2");
  EXPECT_TRUE(model->hasErrors());
  EXPECT_TRUE(s.window->design()->messageFor("parallel.pp_layers").contains("the stages hold 5 layers"))
      << s.window->design()->messageFor("parallel.pp_layers").toStdString();
  split->setText("3, x");
  Q_EMIT split->textEdited("3, x");
  EXPECT_EQ(model->spec().parallel.pp_layers, (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(s.window->design()->messageFor("parallel.pp_layers").contains("'x' is not a whole number"));
  // A spec loaded from elsewhere shows its list.
  s.window->loadPreset("tiny-cpu");
  EXPECT_EQ(split->text(), "");
}

TEST(Design, InvalidValueShowsTheRuleAndDisablesRun) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(s.window->runAction()->isEnabled());
  ASSERT_TRUE(s.window->runWorkspace()->runButton()->isEnabled());
  ASSERT_EQ(model->spec().model.moe.num_experts % 3, 8 % 3);  // tiny-cpu has 8 experts

  auto* ep = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.ep"));
  ASSERT_NE(ep, nullptr);
  ep->setValue(3);
  ASSERT_TRUE(model->hasErrors());
  // The inline message is core's rule for that path, word for word.
  std::string rule;
  for (const auto& d : model->diagnostics())
    if (d.path == "parallel.ep" && d.severity == Severity::error) rule = d.message;
  ASSERT_FALSE(rule.empty());
  EXPECT_NE(rule.find("does not divide"), std::string::npos) << rule;
  const QString shown = s.window->design()->messageFor("parallel.ep");
  EXPECT_TRUE(shown.contains(QString::fromStdString(rule))) << shown.toStdString() << " vs " << rule;
  EXPECT_FALSE(s.window->runAction()->isEnabled());
  EXPECT_FALSE(s.window->runWorkspace()->runButton()->isEnabled());
  EXPECT_FALSE(model->plan().has_value());

  ep->setValue(1);
  for (const auto& d : model->diagnostics()) ADD_FAILURE() << d.text();
  EXPECT_TRUE(s.window->design()->messageFor("parallel.ep").isEmpty());
  EXPECT_TRUE(s.window->runAction()->isEnabled());
}

// A design too big for its GPU is an error (the memory rule) but still gets its estimates: they
// are what shows by how much it does not fit.
TEST(Design, ADesignThatDoesNotFitStillShowsItsEstimates) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(model->setValue("train.micro_batch", 4096).isEmpty());
  ASSERT_TRUE(model->hasErrors());
  bool memory_error = false;
  for (const auto& d : model->diagnostics())
    memory_error |= d.severity == Severity::error && d.message.find("peak memory per GPU") != std::string::npos;
  EXPECT_TRUE(memory_error);
  ASSERT_TRUE(model->plan().has_value());
  EXPECT_GT(model->plan()->memory.fraction, 1.0);
  EXPECT_FALSE(s.window->runAction()->isEnabled());
  EXPECT_TRUE(s.window->design()->estimatesView()->summaryText().contains("memory per GPU"));
  // A rule of the spec itself (not the GPU's memory): no estimates.
  ASSERT_TRUE(model->setValue("parallel.ep", 3).isEmpty());
  EXPECT_FALSE(model->plan().has_value());
}

TEST(Design, EveryPresetLoadsIntoAValidDesign) {
  Studio s;
  const QStringList presets = s.window->presetNames();
  ASSERT_GE(presets.size(), 3) << "resources/presets not found";
  for (const QString& name : presets) {
    s.window->loadPreset(name);
    SpecModel* model = s.window->specModel();
    std::string errors;
    for (const auto& d : model->diagnostics())
      if (d.severity == Severity::error) errors += d.text() + "\n";
    EXPECT_TRUE(errors.empty()) << name.toStdString() << ":\n" << errors;
    EXPECT_TRUE(model->plan().has_value()) << name.toStdString();
    EXPECT_FALSE(model->isModified());
    // The form shows the preset's values.
    auto* layers = qobject_cast<QSpinBox*>(s.window->design()->editorFor("model.n_layers"));
    ASSERT_NE(layers, nullptr);
    EXPECT_EQ(layers->value(), model->spec().model.n_layers) << name.toStdString();
  }
}

TEST(Design, LayoutViewDescribesRanksAndTheirExperts) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(model->setValue("parallel.ep", 2).isEmpty());
  ASSERT_TRUE(model->setValue("parallel.gpus_per_node", 2).isEmpty());
  ASSERT_TRUE(model->setValue("parallel.dp", 2).isEmpty());
  LayoutView* view = s.window->design()->layoutView();
  // rank = tp + TP·(ep + EP·(dp + DP·pp)): rank 3 is ep 1, dp 1, on node 1.
  const QString d = view->rankDescription(3);
  EXPECT_TRUE(d.contains("rank 3 — node 1, GPU 1")) << d.toStdString();
  EXPECT_TRUE(d.contains("tp 0 · ep 1 · dp 1 · pp 0")) << d.toStdString();
  EXPECT_TRUE(d.contains("experts (4): 4, 5, 6, 7")) << d.toStdString();
  EXPECT_TRUE(view->rankDescription(4).isEmpty());  // 4 ranks only
}

TEST(Design, SaveAndLoadRoundTrip) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  ASSERT_TRUE(model->setValue("routing.type", QString("expert_choice")).isEmpty());
  const QString file = s.dir.filePath("design.json");
  model->save(file);
  s.window->loadPreset("mixtral-8x7b");
  ASSERT_NE(model->spec().routing.type, "expert_choice");
  s.window->openSpec(file);
  EXPECT_EQ(model->spec().routing.type, "expert_choice");
  EXPECT_EQ(model->filePath(), file);
}

TEST(Design, ImportHuggingFaceConfigFillsTheDesign) {
  Studio s;
  SpecModel* model = s.window->specModel();
  const QString dir = QString(MOE_SOURCE_DIR) + "/tests/core/data/hf-configs/";
  // Experts, top-k, layers and width come from each config's own keys.
  for (const char* name : {"mixtral-8x7b-v0.1.json", "deepseek-v3.json", "qwen3-30b-a3b.json"}) {
    SCOPED_TRACE(name);
    QFile f(dir + name);
    ASSERT_TRUE(f.open(QIODevice::ReadOnly)) << (dir + name).toStdString();
    const auto config = nlohmann::json::parse(f.readAll().toStdString());
    s.window->loadPreset("tiny-cpu");
    const int64_t tiny_layers = model->spec().model.n_layers;
    s.window->importHfConfig(dir + name);
    const JobSpec& spec = model->spec();
    EXPECT_EQ(spec.model.d_model, config["hidden_size"].get<int64_t>());
    EXPECT_EQ(spec.model.n_layers, config["num_hidden_layers"].get<int64_t>());
    EXPECT_NE(spec.model.n_layers, tiny_layers);
    EXPECT_EQ(spec.model.moe.top_k, config["num_experts_per_tok"].get<int64_t>());
    const char* experts_key = config.contains("num_local_experts") ? "num_local_experts"
                              : config.contains("n_routed_experts") ? "n_routed_experts" : "num_experts";
    EXPECT_EQ(spec.model.moe.num_experts, config[experts_key].get<int64_t>());
    EXPECT_EQ(s.window->workspaces()->currentWidget(), s.window->design());
    // The form shows the imported value, not the preset's.
    auto* layers = qobject_cast<QSpinBox*>(s.window->design()->editorFor("model.n_layers"));
    ASSERT_NE(layers, nullptr);
    EXPECT_EQ(layers->value(), spec.model.n_layers);
  }
  // A file that is not a supported config leaves the design as it was.
  QTemporaryDir tmp;
  QFile bad(tmp.filePath("config.json"));
  ASSERT_TRUE(bad.open(QIODevice::WriteOnly));
  bad.write(R"({"architectures": ["NoSuchForCausalLM"], "hidden_size": 8})");
  bad.close();
  const int64_t before = model->spec().model.d_model;
  s.window->importHfConfig(bad.fileName());
  EXPECT_EQ(model->spec().model.d_model, before);
}

TEST(Design, ExportDesignToMegatronAndDeepSpeed) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("mixtral-8x7b");
  // The menu offers both engines.
  QStringList entries;
  for (QAction* a : s.window->menuBar()->actions())
    if (a->menu())
      for (QAction* b : a->menu()->actions())
        if (b->menu())
          for (QAction* c : b->menu()->actions()) entries << c->text();
  EXPECT_TRUE(entries.filter("Megatron-Core").size() == 1) << entries.join(", ").toStdString();
  EXPECT_TRUE(entries.filter("DeepSpeed").size() == 1) << entries.join(", ").toStdString();

  const QString script = s.dir.filePath("mixtral.megatron.sh");
  ASSERT_EQ(s.window->exportDesign("megatron", script), "");
  QFile f(script);
  ASSERT_TRUE(f.open(QIODevice::ReadOnly));
  const std::string text = f.readAll().toStdString();
  EXPECT_EQ(text, export_megatron(model->spec()).text) << "the studio writes core's export, unchanged";
  EXPECT_TRUE(QFileInfo(script).isExecutable());

  // An edit in the form reaches the export; an invalid design is refused naming the field.
  ASSERT_TRUE(model->setValue("routing.type", QString("expert_choice")).isEmpty());
  ASSERT_TRUE(model->setValue("routing.capacity_factor", 1.25).isEmpty());  // expert choice has a capacity
  ASSERT_FALSE(model->hasErrors());
  const QString ds = s.dir.filePath("mixtral.deepspeed.json");
  ASSERT_EQ(s.window->exportDesign("deepspeed", ds), "");
  QFile d(ds);
  ASSERT_TRUE(d.open(QIODevice::ReadOnly));
  const auto doc = nlohmann::json::parse(d.readAll().toStdString());
  EXPECT_EQ(doc["not_exported"][0]["field"], "routing.type");
  ASSERT_TRUE(model->setValue("parallel.ep", 3).isEmpty());  // 8 experts do not split over 3 ranks
  ASSERT_TRUE(model->hasErrors());
  const QString why = s.window->exportDesign("megatron", s.dir.filePath("bad.sh"));
  EXPECT_TRUE(why.contains("parallel.ep")) << why.toStdString();
  EXPECT_FALSE(QFileInfo::exists(s.dir.filePath("bad.sh")));
}

TEST(Design, PublishedRunLayoutsLoadFromThePresetsMenu) {
  Studio s;
  const QStringList published = s.window->presetNames("published");
  ASSERT_TRUE(published.contains("published/deepseek-v3-h800x2048")) << published.join(", ").toStdString();
  s.window->loadPreset("published/deepseek-v3-h800x2048");
  EXPECT_EQ(s.window->specModel()->spec().name, "published-deepseek-v3-h800x2048");
  EXPECT_EQ(s.window->specModel()->spec().cluster.hardware, "H800");
  EXPECT_EQ(s.window->specModel()->spec().parallel.pp, 16);
}

// Design ▸ A2A Scaling: core's simulator swept for the design on screen, off the GUI thread.
TEST(Design, A2aScalingViewSimulatesTheDesign) {
  Studio s;
  s.window->loadPreset("deepseek-v3");
  DesignWorkspace* design = s.window->design();
  A2aScalingView* view = design->a2aScaling();
  int done = 0;
  QObject::connect(view, &A2aScalingView::simulated, [&done] { ++done; });
  design->viewTabs()->setCurrentWidget(view);
  ASSERT_TRUE(test::waitUntil([&] { return done == 1; }, 60000)) << "no simulation";
  ASSERT_EQ(view->results().size(), 44u);  // 11 GPU counts × flat/hierarchical × uniform/skewed
  ASSERT_EQ(view->plot()->graphCount(), 4);
  for (int g = 0; g < 4; ++g) EXPECT_EQ(view->plot()->graph(g)->dataCount(), 11);
  // The curve is core's sweep, point for point.
  const auto core = simulate_a2a_sweep(s.window->specModel()->spec(),
                                       find_hardware(builtin_hardware_profiles(), "H100-SXM"), {0.0, 0.5});
  ASSERT_EQ(core.size(), view->results().size());
  for (size_t i = 0; i < core.size(); ++i) EXPECT_DOUBLE_EQ(core[i].seconds, view->results()[i].seconds);
  // docs/screenshots/a2a-scaling.png: MOE_SCREENSHOT_DIR=docs/screenshots ctest -R Design.A2aScaling
  if (const QString dir = qEnvironmentVariable("MOE_SCREENSHOT_DIR"); !dir.isEmpty()) {
    s.window->resize(1440, 900);
    test::waitUntil([] { return false; }, 300);  // let the layout settle
    EXPECT_TRUE(s.window->grab().save(dir + "/a2a-scaling.png"));
  }
  // An edit re-simulates; a broken design says why and draws nothing.
  ASSERT_TRUE(s.window->specModel()->setValue("model.moe.top_k", 4).isEmpty());
  ASSERT_TRUE(test::waitUntil([&] { return done == 2; }, 60000));
  ASSERT_TRUE(s.window->specModel()->setValue("parallel.ep", 3).isEmpty());
  EXPECT_EQ(view->plot()->graphCount(), 0);
  EXPECT_TRUE(view->results().empty());
}

// Design says whether this machine can train the layout (issue 15): tp and pp run, more stages
// than layers do not, and more ranks than cores run oversubscribed. The words are core's (local_run_fit).
TEST(Design, MarksWhetherThisMachineCanRunTheLayout) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("tiny-cpu");
  QLabel* label = s.window->design()->localRun();
  ASSERT_NE(label, nullptr);
  EXPECT_TRUE(label->text().startsWith("This machine: runs here")) << label->text().toStdString();

  auto* tp = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.tp"));
  ASSERT_NE(tp, nullptr);
  tp->setValue(2);
  EXPECT_TRUE(label->text().startsWith("This machine: runs here")) << label->text().toStdString();
  EXPECT_EQ(label->text().toStdString(),
            "This machine: " + local_run_fit(model->spec(), QThread::idealThreadCount()).text);
  // Sequence parallelism is a check box, experts split over tp a number; an etp that does not
  // divide tp is one of the runtime's limits (and an error of the design).
  auto* sp = qobject_cast<QCheckBox*>(s.window->design()->editorFor("parallel.sequence_parallel"));
  auto* etp = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.etp"));
  auto* chunks = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.overlap_chunks"));
  ASSERT_NE(sp, nullptr);
  ASSERT_NE(etp, nullptr);
  ASSERT_NE(chunks, nullptr);
  sp->setChecked(true);
  etp->setValue(2);
  EXPECT_TRUE(model->spec().parallel.sequence_parallel);
  EXPECT_EQ(model->spec().parallel.etp, 2);
  EXPECT_TRUE(label->text().startsWith("This machine: runs here")) << label->text().toStdString();
  chunks->setValue(2);  // split experts overlap their exchange too
  EXPECT_TRUE(label->text().startsWith("This machine: runs here")) << label->text().toStdString();
  chunks->setValue(1);
  etp->setValue(3);
  EXPECT_TRUE(label->text().contains("cannot run here: parallel.etp: 3 must divide parallel.tp (2)")) << label->text().toStdString();
  etp->setValue(1);

  auto* pp = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.pp"));
  ASSERT_NE(pp, nullptr);
  pp->setValue(2);
  EXPECT_TRUE(label->text().startsWith("This machine: runs here")) << label->text().toStdString();
  pp->setValue(5);  // tiny-cpu has 4 layers
  EXPECT_TRUE(label->text().contains("cannot run here: parallel.pp: 5 exceeds model.n_layers")) << label->text().toStdString();
  pp->setValue(1);

  // 32 ranks on this machine's few cores.
  auto* ep = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.ep"));
  auto* dp = qobject_cast<QSpinBox*>(s.window->design()->editorFor("parallel.dp"));
  ASSERT_NE(ep, nullptr);
  ASSERT_NE(dp, nullptr);
  ep->setValue(8);
  dp->setValue(4);
  if (QThread::idealThreadCount() < 32) {
    EXPECT_TRUE(label->text().contains("oversubscribed")) << label->text().toStdString();
  }
}

// A field with no effect in the design (core's unused_field_reason) is greyed out, its tooltip
// naming the field that decides, and comes back when that field changes; a 0 that means "auto"
// says so in its spin box.
TEST(Design, FieldsWithoutEffectAreGreyedOutWithTheirReason) {
  Studio s;
  SpecModel* model = s.window->specModel();
  s.window->loadPreset("mixtral-8x7b");  // gqa attention, no dense layers, tp 1
  DesignWorkspace* design = s.window->design();
  QWidget* kv_lora = design->editorFor("model.mla.kv_lora_rank");
  auto* head_dim = qobject_cast<QSpinBox*>(design->editorFor("model.head_dim"));
  auto* attention = qobject_cast<QComboBox*>(design->editorFor("model.attention"));
  ASSERT_NE(kv_lora, nullptr);
  ASSERT_NE(head_dim, nullptr);
  ASSERT_NE(attention, nullptr);
  EXPECT_FALSE(kv_lora->isEnabled());
  EXPECT_TRUE(kv_lora->toolTip().contains("only with model.attention mla (it is gqa)")) << kv_lora->toolTip().toStdString();
  EXPECT_TRUE(head_dim->isEnabled());
  ASSERT_EQ(model->spec().model.head_dim, 0);
  EXPECT_EQ(head_dim->text(), "0 (auto: d_model / n_heads)");
  EXPECT_FALSE(design->editorFor("model.d_ff")->isEnabled());      // every layer is MoE
  EXPECT_FALSE(design->editorFor("parallel.etp")->isEnabled());    // tp 1
  EXPECT_TRUE(design->editorFor("model.moe.d_expert")->isEnabled());

  attention->setCurrentText("mla");  // as a user picking it
  EXPECT_EQ(model->spec().model.attention, "mla");
  EXPECT_TRUE(kv_lora->isEnabled());
  EXPECT_FALSE(kv_lora->toolTip().contains("No effect"));
  EXPECT_FALSE(head_dim->isEnabled());

  s.window->loadPreset("tiny-cpu");  // a replaced spec is judged anew
  EXPECT_EQ(kv_lora->isEnabled(), model->spec().model.attention == "mla");
}
