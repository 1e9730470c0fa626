#pragma once
// MainWindow: the four workspaces (Design, Run, Live, Compare) as tabs, the menus with their
// shortcuts, the status bar, and the state QSettings keeps (geometry, splitters, recent files,
// the run store). It wires the parts together and holds no domain logic.
#include <QMainWindow>
#include <functional>

class QAction;
class QLabel;
class QMenu;
class QTabWidget;

namespace moe {
struct JobSpec;
}

namespace moe::gui {

class CompareWorkspace;
class DesignWorkspace;
class HostPrompts;
class HostsPanel;
class LiveWorkspace;
class RunLauncher;
class RunWorkspace;
class SpecModel;
class StorePoller;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(const QString& db_path = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  // The default run store: <AppDataLocation>/runs.sqlite.
  static QString defaultStorePath();

  SpecModel* specModel() const { return model_; }
  DesignWorkspace* design() const { return design_; }
  RunWorkspace* runWorkspace() const { return run_; }
  LiveWorkspace* live() const { return live_; }
  CompareWorkspace* compare() const { return compare_; }
  RunLauncher* launcher() const { return launcher_; }
  StorePoller* poller() const { return poller_; }
  HostsPanel* hosts() const { return hosts_; }
  HostPrompts* hostPrompts() const { return host_prompts_; }
  QTabWidget* workspaces() const { return tabs_; }
  QAction* runAction() const { return run_action_; }
  QString storePath() const { return store_path_; }

  void openSpec(const QString& file);      // errors are shown in a message box, never thrown
  void loadPreset(const QString& name);    // resources/presets/NAME.json
  void setStorePath(const QString& file);  // opens (and creates) another run store
  void importHfConfig(const QString& file);
  // File ▸ Export Design To: the design as ENGINE's settings (core's `moe export`), written to
  // FILE. Returns "" or the one-line reason (also shown) it could not.
  QString exportDesign(const QString& engine, const QString& file);
  // resources/presets/*.json by name, or those of a subfolder ("published/NAME").
  QStringList presetNames(const QString& folder = {}) const;

  // Runs of the open store left running by a closed studio, a detached `moe run` or a killed
  // `moe run --hosts` (a job in remote_runs, status not final, no live recorder), newest first.
  QList<qint64> detachedRuns() const;
  // Follows run `run` again, local or remote (RunLauncher::reattach with the Hosts panel's connection
  // options): console and Live follow it, Stop cancels it. Returns "" or why it could not.
  QString reattachRun(qint64 run);
  // Run ▸ Reattach to Runs…: offers the detached runs (with prompts) or reattaches the newest.
  void offerReattach(bool ask);

 protected:
  void closeEvent(QCloseEvent* e) override;

 private:
  void buildMenus();
  void handleSpecChanged();
  QString launchDesignError(const std::function<JobSpec()>& target) const;
  void handleRun();
  void handleRunFinished(int exit_code);
  void handleOpen();
  void handleSave();
  void handleSaveAs();
  void handleNew();
  void handleOpenStore();
  void handleImportHf();
  void handleExportDesign(const QString& engine);
  void handleExport();
  void handleAbout();
  void addRecentFile(const QString& file);
  void rebuildRecentMenu();
  bool confirmDiscard();
  void showError(const QString& title, const QString& text);

  SpecModel* model_;
  RunLauncher* launcher_;
  StorePoller* poller_;
  QTabWidget* tabs_;
  DesignWorkspace* design_;
  RunWorkspace* run_;
  LiveWorkspace* live_;
  CompareWorkspace* compare_;
  HostPrompts* host_prompts_;  // SSH questions from worker threads, answered on the GUI thread
  HostsPanel* hosts_;          // the cluster's nodes (Hosts tab); Run can go there
  QAction* run_action_ = nullptr;
  QAction* stop_action_ = nullptr;
  QAction* detach_action_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  QLabel* spec_status_;
  QLabel* store_status_;
  QString store_path_;
  qint64 launch_after_run_id_ = -1;
};

}  // namespace moe::gui
