// MainWindow: menus, status bar, settings and the wiring between workspaces.
#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QCloseEvent>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyle>
#include <QTabWidget>
#include <QTimer>
#include <algorithm>
#include <functional>

#include "common/theme.h"
#include "compare/compare_workspace.h"
#include "design/design_workspace.h"
#include "design/placement_view.h"
#include "design/spec_model.h"
#include "engine_export.h"
#include "error.h"
#include "hf_import.h"
#include "hosts/host_prompts.h"
#include "hosts/hosts_panel.h"
#include "live/live_workspace.h"
#include "live/store_poller.h"
#include "remote_runs.h"
#include "resources.h"
#include "run/run_launcher.h"
#include "run/run_workspace.h"
#include "run_session.h"
#include "run_reader.h"
#include "run_store.h"
#include "run_writers.h"

namespace moe::gui {

QString MainWindow::defaultStorePath() {
  QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
  QDir().mkpath(dir);
  return QDir(dir).filePath("runs.sqlite");
}

MainWindow::MainWindow(const QString& db_path, QWidget* parent) : QMainWindow(parent) {
  setWindowTitle("MoE Studio");
  setWindowIcon(QIcon::fromTheme("applications-science"));
  model_ = new SpecModel(this);
  launcher_ = new RunLauncher(this);
  poller_ = new StorePoller(this);

  tabs_ = new QTabWidget;
  tabs_->setDocumentMode(true);
  design_ = new DesignWorkspace(model_);
  run_ = new RunWorkspace(launcher_);
  live_ = new LiveWorkspace(poller_);
  compare_ = new CompareWorkspace(poller_);
  tabs_->addTab(design_, "Design");
  tabs_->addTab(run_, "Run");
  tabs_->addTab(live_, "Live");
  tabs_->addTab(compare_, "Compare");
  host_prompts_ = new HostPrompts(this, this);
  hosts_ = new HostsPanel(host_prompts_);
  tabs_->addTab(hosts_, "Hosts");
  setCentralWidget(tabs_);

  spec_status_ = new QLabel;
  store_status_ = new QLabel;
  store_status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  statusBar()->addWidget(spec_status_, 1);
  statusBar()->addPermanentWidget(store_status_);

  buildMenus();
  connect(model_, &SpecModel::specChanged, this, &MainWindow::handleSpecChanged);
  connect(model_, &SpecModel::modifiedChanged, this, [this](bool m) { setWindowModified(m); });
  connect(run_, &RunWorkspace::runRequested, this, &MainWindow::handleRun);
  // Where the run goes decides which design checks apply (Slurm makes its own nodes).
  connect(run_->whereBox(), &QComboBox::currentIndexChanged, this, [this] { run_action_->setEnabled(run_->canRun()); });
  connect(hosts_, &HostsPanel::hostsChanged, this, &MainWindow::handleSpecChanged);
  connect(launcher_, &RunLauncher::finished, this, &MainWindow::handleRunFinished);
  connect(launcher_, &RunLauncher::runStarted, live_, &LiveWorkspace::followRun);  // exactly the run launched
  connect(compare_, &CompareWorkspace::openRunRequested, this, [this](qint64 id) {
    live_->followRun(id);
    tabs_->setCurrentWidget(live_);
  });
  connect(compare_, &CompareWorkspace::placementChosen, this, [this](const JobSpec& spec, const PlacementLoad& load) {
    if (!confirmDiscard()) return;
    try {
      model_->setSpecJson(spec_to_json(spec));  // a new, unsaved design (as a preset)
    } catch (const std::exception& e) {
      return showError("Cannot use the placement", e.what());
    }
    design_->showRecordedLoad(load);
    tabs_->setCurrentWidget(design_);
    statusBar()->showMessage("Design filled from " + load.source + ": placement.strategy explicit", 8000);
  });
  connect(poller_, &StorePoller::liveUpdate, this, [this](const LiveUpdate& u) {
    run_->setProgress(u.run.id, u.run.last_step, u.planned_steps, QString::fromStdString(u.run.status));
  });
  connect(poller_, &StorePoller::storeError, this,
          [this](const QString& message) { statusBar()->showMessage(message, 8000); });

  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  restoreState(settings.value("window/state").toByteArray());
  tabs_->setCurrentIndex(settings.value("window/workspace", 0).toInt());
  if (!db_path.isEmpty()) setStorePath(db_path);
  else setStorePath(settings.value("store/path", defaultStorePath()).toString());
  if (!isWindowModified() && model_->filePath().isEmpty()) {
    try {
      model_->load(QString::fromStdString(preset_path("tiny-cpu").string()));
      model_->setSpecJson(model_->json());  // a preset starts as an unsaved new design
    } catch (const std::exception&) {
      // no presets installed: the defaults stay
    }
  }
  handleSpecChanged();
  // Jobs left running by the last session (here or on the nodes): offer to follow them again (once
  // the window is up). Without prompts only when asked for ($MOE_STUDIO_REATTACH=1).
  const bool no_prompts = qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS");
  if (!no_prompts || qEnvironmentVariable("MOE_STUDIO_REATTACH") == "1")
    QTimer::singleShot(0, this, [this, no_prompts] { offerReattach(!no_prompts); });
}

MainWindow::~MainWindow() = default;

QList<qint64> MainWindow::detachedRuns() const {
  QList<qint64> out;
  try {
    store::RunReader reader(store_path_.toStdString());
    std::vector<int64_t> candidates;
    for (const auto& r : reader.list_runs())
      if (!store::is_final_status(r.status)) candidates.push_back(r.id);
    if (candidates.empty()) return out;
    store::RunStore st(store_path_.toStdString());
    for (int64_t id : candidates)  // a job to follow, that no live process records now
      if (store::find_remote_run(st, id) && !store::live_writer(st, id)) out.push_back(id);
  } catch (const std::exception&) {
    // an unreadable store has no runs to offer; the poller reports the error
  }
  std::sort(out.begin(), out.end(), std::greater<>());
  return out;
}

QString MainWindow::reattachRun(qint64 run) {
  remote::ConnectOptions connect = hosts_->connectOptions();
  connect.keepalive_interval_s = 3;  // a lost node fails the run within ~15 s (as the CLI)
  connect.keepalive_timeout_s = 4;
  const QString why = launcher_->reattach(store_path_, run, connect);
  if (!why.isEmpty()) {
    run_->setStatus("not reattached: " + why, errorColor(this));
    return why;
  }
  run_action_->setEnabled(false);
  live_->followRun(run);
  tabs_->setCurrentWidget(run_);
  return {};
}

void MainWindow::offerReattach(bool ask) {
  if (launcher_->isRunning()) {
    if (ask) statusBar()->showMessage("A run is going: stop or detach it first", 6000);
    return;
  }
  const QList<qint64> runs = detachedRuns();
  if (runs.isEmpty()) {
    if (ask) statusBar()->showMessage("No detached run of this store is still running", 6000);
    return;
  }
  qint64 chosen = runs.front();
  if (ask) {
    QStringList items;
    for (qint64 id : runs) {
      QString label = QString("run %1").arg(id);
      try {
        const store::RunInfo info = store::RunReader(store_path_.toStdString()).run(id);
        // One arg() call: a chained .arg() would rewrite a "%2" inside the name.
        label += QString(" · %1 · %2 steps stored").arg(QString::fromStdString(info.name), QString::number(info.n_steps));
      } catch (const std::exception&) {
      }
      items << label;
    }
    bool ok = false;
    const QString item = QInputDialog::getItem(this, "Reattach to a run",
                                               "These runs were left running (here or on their nodes).\n"
                                               "Follow one again (its records resume where they stopped)?",
                                               items, 0, false, &ok);
    if (!ok) return;
    chosen = runs[items.indexOf(item)];
  }
  reattachRun(chosen);
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu("&File");
  file->addAction("&New Design", QKeySequence::New, this, &MainWindow::handleNew);
  file->addAction("&Open Spec…", QKeySequence::Open, this, &MainWindow::handleOpen);
  recent_menu_ = file->addMenu("Open &Recent");
  QMenu* presets = file->addMenu("&Presets");
  for (const QString& name : presetNames())
    presets->addAction(name, this, [this, name] { loadPreset(name); });
  if (presets->isEmpty()) presets->addAction("(no presets found)")->setEnabled(false);
  // Layouts of published large runs (docs/cost-model.md §8): what the cost model is checked against.
  const QStringList published = presetNames("published");
  if (!published.isEmpty()) {
    QMenu* runs = presets->addMenu("Published &Runs");
    for (const QString& name : published)
      runs->addAction(name.section('/', 1), this, [this, name] { loadPreset(name); });
  }
  file->addAction("&Import Hugging Face config…", QKeySequence(Qt::CTRL | Qt::Key_I), this, &MainWindow::handleImportHf);
  file->addSeparator();
  file->addAction("&Save Spec", QKeySequence::Save, this, &MainWindow::handleSave);
  file->addAction("Save Spec &As…", QKeySequence::SaveAs, this, &MainWindow::handleSaveAs);
  QMenu* engines = file->addMenu("Export Design &To");
  engines->addAction("&Megatron-Core (pretrain_gpt.py arguments)…", this, [this] { handleExportDesign("megatron"); });
  engines->addAction("&DeepSpeed (ds_config and MoE layer)…", this, [this] { handleExportDesign("deepspeed"); });
  file->addSeparator();
  file->addAction("Open Run &Store…", QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O), this, &MainWindow::handleOpenStore);
  file->addAction("&Export Plot or Table…", QKeySequence(Qt::CTRL | Qt::Key_E), this, &MainWindow::handleExport);
  file->addSeparator();
  file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);
  rebuildRecentMenu();

  QMenu* run = menuBar()->addMenu("&Run");
  run_action_ = run->addAction(style()->standardIcon(QStyle::SP_MediaPlay), "&Run",
                               QKeySequence(Qt::CTRL | Qt::Key_R), this, &MainWindow::handleRun);
  stop_action_ = run->addAction(style()->standardIcon(QStyle::SP_MediaStop), "&Stop",
                                QKeySequence(Qt::CTRL | Qt::Key_Period), launcher_, &RunLauncher::stop);
  stop_action_->setEnabled(false);
  detach_action_ = run->addAction("&Detach from Run", launcher_, &RunLauncher::detach);
  detach_action_->setToolTip("Stop watching; the job keeps running (here or on the nodes)");
  detach_action_->setEnabled(false);
  run->addAction("Reattach to &Runs…", this, [this] { offerReattach(true); });
  connect(launcher_, &RunLauncher::started, this, [this] {
    stop_action_->setEnabled(true);
    detach_action_->setEnabled(true);
  });
  connect(launcher_, &RunLauncher::finished, this, [this] {
    stop_action_->setEnabled(false);
    detach_action_->setEnabled(false);
  });

  QMenu* view = menuBar()->addMenu("&View");
  const char* names[] = {"&Design", "R&un", "&Live", "&Compare", "&Hosts"};
  for (int i = 0; i < 5; ++i)
    view->addAction(names[i], QKeySequence(Qt::CTRL | Qt::Key(Qt::Key_1 + i)), this,
                    [this, i] { tabs_->setCurrentIndex(i); });

  QMenu* help = menuBar()->addMenu("&Help");
  help->addAction("&About MoE Studio", this, &MainWindow::handleAbout);
}

QStringList MainWindow::presetNames(const QString& folder) const {
  QStringList names;
  try {
    QDir dir(QString::fromStdString((resources_dir() / "presets").string()) + (folder.isEmpty() ? "" : "/" + folder));
    for (const QFileInfo& fi : dir.entryInfoList({"*.json"}, QDir::Files, QDir::Name))
      names << (folder.isEmpty() ? "" : folder + "/") + fi.completeBaseName();
  } catch (const std::exception&) {
  }
  return names;
}

void MainWindow::handleSpecChanged() {
  int errors = 0, warnings = 0;
  QString first;
  for (const auto& d : model_->diagnostics()) {
    (d.severity == Severity::error ? errors : warnings)++;
    if (first.isEmpty() && d.severity == Severity::error) first = QString::fromStdString(d.text());
  }
  QString name = QString::fromStdString(model_->spec().name);
  QString file = model_->filePath().isEmpty() ? "unsaved" : QFileInfo(model_->filePath()).fileName();
  setWindowTitle(QString("%1 (%2)[*] — MoE Studio").arg(name, file));
  QColor c = errors ? errorColor(this) : warnings ? warningColor(this) : okColor(this);
  const int64_t world = model_->spec().parallel.world_size();
  spec_status_->setText(QString("<b>%1</b> · %2 · <span style='color:%3'>%4 errors, %5 warnings</span>")
                            .arg(name.toHtmlEscaped(), world == 1 ? QString("1 rank") : QString("%1 ranks").arg(world),
                                 c.name(), QString::number(errors), QString::number(warnings)));
  run_->setSpecNodes(int(model_->spec().cluster.nodes.size()));
  QString hosts_error;
  const auto hosts = hosts_->hosts(&hosts_error);
  int slots = 0;
  for (const auto& h : hosts) slots += h.slots;
  run_->setHostsSummary(hosts_error.isEmpty() ? QString("%1 host(s), %2 slots").arg(hosts.size()).arg(slots) : hosts_error,
                        hosts_error.isEmpty());
  RunWorkspace::DesignErrors design_errors;
  design_errors.local = first;
  // A remote launch runs the design with its nodes replaced (remote/run_session.h): the Hosts
  // panel's for SSH, the layout's for Slurm; the design's own cluster.nodes then do not limit it.
  const JobSpec& spec = model_->spec();
  if (hosts_error.isEmpty() && !hosts.empty())
    design_errors.hosts = launchDesignError([&] {
      remote::check_hosts_against_spec(hosts, spec, "Hosts panel");
      return remote::spec_for_hosts(spec, hosts);
    });
  design_errors.slurm = launchDesignError([&] { return remote::spec_for_slurm(spec); });
  run_->setDesignErrors(design_errors);
  run_action_->setEnabled(run_->canRun());
}

// The first error of the design as a launch rewrites it (`target`), or "" when it can go.
QString MainWindow::launchDesignError(const std::function<JobSpec()>& target) const {
  try {
    for (const auto& d : model_->diagnosticsOf(target()))
      if (d.severity == Severity::error) return QString::fromStdString(d.text());
  } catch (const std::exception& e) {
    return QString::fromUtf8(e.what());
  }
  return {};
}

void MainWindow::handleRun() {
  if (launcher_->isRunning() || !run_->canRun()) return;  // canRun: the design is valid for where it goes
  launch_after_run_id_ = poller_->latestRunId();
  QString why;
  RunLauncher::Launch l;
  l.spec = model_->spec();
  l.db_path = store_path_;
  if (run_->where() != RunWorkspace::Where::local) {
    l.slurm = run_->where() == RunWorkspace::Where::slurm;
    l.hosts = hosts_->hosts(&why);
    if (l.hosts.empty() && why.isEmpty()) why = "no hosts: add them in the Hosts panel";
    l.hostfile_text = hosts_->hostfileText();
    l.connect = hosts_->connectOptions();
    l.connect.keepalive_interval_s = 3;  // a lost node fails the run within ~15 s (as the CLI)
    l.connect.keepalive_timeout_s = 4;
    l.master_port = hosts_->masterPort();
  }
  if (why.isEmpty()) why = launcher_->start(l);
  if (!why.isEmpty()) {
    run_->setStatus("not started: " + why, errorColor(this));
    return;
  }
  run_action_->setEnabled(false);
  live_->followNewRunAfter(launch_after_run_id_);
  tabs_->setCurrentWidget(run_);
}

void MainWindow::handleRunFinished(int) {
  handleSpecChanged();
  poller_->refreshRuns();
}

void MainWindow::handleNew() {
  if (!confirmDiscard()) return;
  model_->setSpecJson(nlohmann::json::object());
}

void MainWindow::handleOpen() {
  if (!confirmDiscard()) return;
  QString dir = QFileInfo(model_->filePath()).absolutePath();
  QString file = QFileDialog::getOpenFileName(this, "Open Spec", dir, "Job specs (*.json);;All files (*)");
  if (!file.isEmpty()) openSpec(file);
}

void MainWindow::openSpec(const QString& file) {
  try {
    model_->load(file);
    addRecentFile(file);
    tabs_->setCurrentWidget(design_);
  } catch (const std::exception& e) {
    showError("Cannot open the spec", e.what());
  }
}

void MainWindow::loadPreset(const QString& name) {
  try {
    model_->load(QString::fromStdString(preset_path(name.toStdString()).string()));
    model_->setSpecJson(model_->json());  // presets are templates: Save asks for a new file
    tabs_->setCurrentWidget(design_);
  } catch (const std::exception& e) {
    showError("Cannot load the preset", e.what());
  }
}

void MainWindow::handleSave() {
  if (model_->filePath().isEmpty()) return handleSaveAs();
  try {
    model_->save(model_->filePath());
    statusBar()->showMessage("Saved " + model_->filePath(), 4000);
  } catch (const std::exception& e) {
    showError("Cannot save the spec", e.what());
  }
}

void MainWindow::handleSaveAs() {
  QString suggested = QString::fromStdString(model_->spec().name) + ".json";
  QString file = QFileDialog::getSaveFileName(this, "Save Spec As", suggested, "Job specs (*.json)");
  if (file.isEmpty()) return;
  try {
    model_->save(file);
    addRecentFile(file);
    handleSpecChanged();
  } catch (const std::exception& e) {
    showError("Cannot save the spec", e.what());
  }
}

void MainWindow::handleImportHf() {
  if (!confirmDiscard()) return;
  QString file = QFileDialog::getOpenFileName(this, "Import Hugging Face config", {}, "config.json (*.json)");
  if (!file.isEmpty()) importHfConfig(file);
}

void MainWindow::handleExportDesign(const QString& engine) {
  const QString suffix = engine == "megatron" ? ".megatron.sh" : ".deepspeed.json";
  const QString filter = engine == "megatron" ? "Shell scripts (*.sh)" : "JSON (*.json)";
  const QString file = QFileDialog::getSaveFileName(this, "Export Design To " + engine,
                                                    QString::fromStdString(model_->spec().name) + suffix, filter);
  if (!file.isEmpty()) exportDesign(engine, file);
}

QString MainWindow::exportDesign(const QString& engine, const QString& file) {
  try {
    const EngineExport out = export_spec(engine.toStdString(), model_->spec());
    QFile f(file);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) || f.write(QByteArray::fromStdString(out.text)) < 0)
      throw Error(file.toStdString() + ": cannot write: " + f.errorString().toStdString());
    f.close();
    if (engine == "megatron") f.setPermissions(f.permissions() | QFileDevice::ExeOwner | QFileDevice::ExeGroup);
    statusBar()->showMessage(QString("Exported %1 for %2: %3 setting(s) without a counterpart, listed in the file")
                                 .arg(QFileInfo(file).fileName(), engine, QString::number(out.unmapped.size())),
                             8000);
    return {};
  } catch (const std::exception& e) {
    showError("Cannot export the design", e.what());
    return QString::fromUtf8(e.what());
  }
}

void MainWindow::importHfConfig(const QString& file) {
  try {
    std::string text = read_text_file(file.toStdString());
    HfImport imported = import_hf_config(parse_json_text(text, file.toStdString()), file.toStdString());
    model_->setSpecJson(spec_to_json(imported.spec));
    tabs_->setCurrentWidget(design_);
    QString note = QString("Imported %1 from %2").arg(QString::fromStdString(imported.architecture), file);
    if (!imported.warnings.empty()) {
      QStringList w;
      for (const auto& s : imported.warnings) w << QString::fromStdString(s);
      if (!qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS"))  // tests and headless runs
        QMessageBox::information(this, "Imported with notes", note + "\n\n" + w.join('\n'));
    }
    statusBar()->showMessage(note, 6000);
  } catch (const std::exception& e) {
    showError("Cannot import the config", e.what());
  }
}

void MainWindow::handleOpenStore() {
  QString file = QFileDialog::getSaveFileName(this, "Open or Create Run Store", store_path_,
                                              "Run stores (*.sqlite *.db);;All files (*)",
                                              nullptr, QFileDialog::DontConfirmOverwrite);
  if (!file.isEmpty()) setStorePath(file);
}

void MainWindow::setStorePath(const QString& file) {
  store_path_ = file;
  // Local runs whose `moe run` died without recording their end are marked failed (core's rule).
  QStringList reaped;
  try {
    if (QFileInfo(file).isWritable()) {
      store::RunStore st(file.toStdString());
      for (int64_t id : store::reap_abandoned_runs(st)) reaped << QString::number(id);
    }
  } catch (const std::exception&) {
    // an unreadable store: the poller reports the error
  }
  poller_->setStorePath(file);
  store_status_->setText("run store: " + QDir::toNativeSeparators(file));
  store_status_->setToolTip(file);
  QSettings().setValue("store/path", file);
  if (!reaped.isEmpty())
    statusBar()->showMessage("Run " + reaped.join(", ") + ": its recording process had died; marked failed", 10000);
}

void MainWindow::handleExport() {
  QWidget* w = tabs_->currentWidget();
  if (w == live_) live_->exportCurrent();
  else if (w == compare_) compare_->exportCurrent();
  else statusBar()->showMessage("Export works on the Live and Compare workspaces' plots and tables", 5000);
}

void MainWindow::handleAbout() {
  QMessageBox::about(this, "About MoE Studio",
                     "<b>MoE Studio</b><br>Design, run and understand expert-parallel Mixture-of-Experts "
                     "training.<br><br>The studio edits a job spec; core validates and estimates it, "
                     "the run session (the code of <code>moe run</code>) runs it and the run store remembers it.");
}

void MainWindow::addRecentFile(const QString& file) {
  QSettings settings;
  QStringList files = settings.value("recentFiles").toStringList();
  QString abs = QFileInfo(file).absoluteFilePath();
  files.removeAll(abs);
  files.prepend(abs);
  while (files.size() > 8) files.removeLast();
  settings.setValue("recentFiles", files);
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  recent_menu_->clear();
  const QStringList files = QSettings().value("recentFiles").toStringList();
  for (const QString& f : files) recent_menu_->addAction(QFileInfo(f).fileName(), this, [this, f] { openSpec(f); })->setToolTip(f);
  recent_menu_->setEnabled(!files.isEmpty());
}

bool MainWindow::confirmDiscard() {
  if (!model_->isModified() || qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS")) return true;
  auto answer = QMessageBox::question(this, "Discard changes?",
                                      "The design has unsaved changes. Discard them?",
                                      QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Cancel);
  return answer == QMessageBox::Discard;
}

void MainWindow::showError(const QString& title, const QString& text) {
  statusBar()->showMessage(text, 10000);
  if (!qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS")) QMessageBox::warning(this, title, text);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  const bool no_prompts = qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS");
  if (launcher_->isRunning()) {
    // A job can outlive the studio (here or on the nodes): leaving it is the default (reattach on
    // the next start).
    if (no_prompts) {
      launcher_->detach();
    } else {
      const QString where = launcher_->isRemote() ? "on the nodes" : "on this machine";
      QMessageBox box(QMessageBox::Question, "A run is going",
                      "The run is going " + where + ". Leave it running (reattach later from the Run menu) "
                      "or stop it?", QMessageBox::NoButton, this);
      QPushButton* leave = box.addButton("Leave the run going " + where, QMessageBox::AcceptRole);
      QPushButton* stop = box.addButton("Stop it", QMessageBox::DestructiveRole);
      box.addButton(QMessageBox::Cancel);
      box.setDefaultButton(leave);
      box.exec();
      if (box.clickedButton() == leave) launcher_->detach();
      else if (box.clickedButton() == stop) launcher_->stop();
      else return e->ignore();
    }
  }
  if (!confirmDiscard()) return e->ignore();
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/state", saveState());
  settings.setValue("window/workspace", tabs_->currentIndex());
  e->accept();
}

}  // namespace moe::gui
