// Remote runs from the studio: the Run workspace's "where" choice (a multi-node design is never run
// locally by accident), and tiny-cpu launched from the GUI on the two sshd fixture nodes × 2 ranks
// (ep = 4) through remote::RunSession, ending `completed` with every step in the run store and the
// nodes' lines in the console prefixed by host; closing the studio mid-run leaves the job running
// on the nodes, and a new studio reattaches and records every step exactly once; Stop after a
// reattach cancels every node; a rank killed on node-b fails the run naming the node and the rank.
// The same run session as a local run (run_live_test.cpp), only the node differs.
#include <QAction>
#include <QComboBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTabWidget>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <algorithm>
#include <sstream>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "design/spec_model.h"
#include "gui_test_util.h"
#include "hosts/hosts_panel.h"
#include "remote_fixture.h"
#include "run/run_launcher.h"
#include "run/run_workspace.h"
#include "remote_runs.h"
#include "run_reader.h"
#include "run_store.h"
#include "sqlite_db.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::Studio;
using moe::gui::test::waitUntil;
namespace rt = moe::remote::test;

namespace {

// A TCP port free on 127.0.0.1 right now (the kernel picks it).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 29577;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

// The small ep = 4 job of tests/remote/remote_run_test.cpp.
void tinyEp4(SpecModel* m, int steps) {
  for (const auto& [k, v] : std::vector<std::pair<QString, QVariant>>{{"parallel.ep", 4},
                                                                      {"train.steps", steps},
                                                                      {"train.warmup_steps", 4},
                                                                      {"model.n_layers", 2},
                                                                      {"model.seq_len", 32},
                                                                      {"model.d_model", 64},
                                                                      {"model.moe.d_expert", 64},
                                                                      {"train.data.val_fraction", 0.0005}}) {
    ASSERT_TRUE(m->setValue(k, v).isEmpty()) << k.toStdString();
  }
}

// The design of tinyEp4 on the two fixture nodes × 2 slots, with the Hosts panel filled in.
void designOnFixtureNodes(MainWindow* w, int steps, const QString& tmp, int master_port) {
  tinyEp4(w->specModel(), steps);
  nlohmann::json j = w->specModel()->json();
  j["cluster"]["nodes"] = nlohmann::json::array({{{"host", "127.0.0.1"}, {"port", rt::node_port(0)}, {"slots", 2}},
                                                 {{"host", "127.0.0.1"}, {"port", rt::node_port(1)}, {"slots", 2}}});
  j["parallel"]["gpus_per_node"] = 2;
  w->specModel()->setSpecJson(j);
  for (const auto& d : w->specModel()->diagnostics()) ADD_FAILURE() << d.text();
  remote::ConnectOptions o = rt::trusted_options(tmp.toStdString());
  o.ssh_config_file = (rt::fixture_dir() / "ssh_config").string();
  w->hosts()->setConnectOptions(o);
  w->hosts()->setMasterPort(master_port);
  w->hosts()->addHost(rt::node(0));
  w->hosts()->addHost(rt::node(1));
  w->runWorkspace()->setWhere(RunWorkspace::Where::hosts);
}

int64_t countRows(const QString& db, const char* sql, int64_t run) {
  store::Db d(db.toStdString(), store::Db::Mode::read_only);
  store::Stmt q(d, sql);
  q.bind(1, run);
  return q.step() ? q.col_int(0) : -1;
}

// Live (not zombie) processes of a job on a node: its process group and every process whose
// command line names the node's job directory (the ranks have a group of their own).
int liveJobProcesses(pid_t group, const std::string& job_dir) {
  int live = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = rt::read_file(e.path() / "stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (state == 'Z' || state == 'X') continue;
    std::string cmdline = rt::read_file(e.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (pgrp == group || cmdline.find(job_dir) != std::string::npos) ++live;
  }
  return live;
}

}  // namespace

TEST(RemoteRunGui, AMultiNodeDesignIsNotRunLocally) {
  Studio s;
  s.window->loadPreset("tiny-cpu");
  RunWorkspace* run = s.window->runWorkspace();
  run->setWhere(RunWorkspace::Where::local);
  EXPECT_TRUE(run->runButton()->isEnabled());
  nlohmann::json j = s.window->specModel()->json();
  j["cluster"]["nodes"] = nlohmann::json::array({{{"host", "node-a"}, {"slots", 1}}, {{"host", "node-b"}, {"slots", 1}}});
  j["parallel"]["dp"] = 2;
  s.window->specModel()->setSpecJson(j);
  ASSERT_FALSE(s.window->specModel()->hasErrors());
  EXPECT_FALSE(run->runButton()->isEnabled());
  EXPECT_FALSE(s.window->runAction()->isEnabled());
  EXPECT_TRUE(run->runButton()->toolTip().contains("cluster.nodes lists 2 nodes")) << run->runButton()->toolTip().toStdString();
  EXPECT_TRUE(run->findChild<QLabel*>("runWhereNote")->text().contains("Hosts"));
  // The trigger does nothing either: no run is recorded.
  s.window->runAction()->trigger();
  EXPECT_FALSE(s.window->launcher()->isRunning());

  // Hosts chosen but the panel is empty: still disabled, saying why; with hosts it can run.
  run->setWhere(RunWorkspace::Where::hosts);
  EXPECT_FALSE(run->runButton()->isEnabled());
  EXPECT_TRUE(run->runButton()->toolTip().contains("no hosts")) << run->runButton()->toolTip().toStdString();
  s.window->hosts()->addHost(rt::node(0));
  EXPECT_TRUE(run->runButton()->isEnabled()) << run->runButton()->toolTip().toStdString();
}

TEST(RemoteRunGui, TinyCpuOnTwoFixtureNodesCompletesIntoTheStore) {
  Studio s;
  QTemporaryDir tmp;
  s.window->loadPreset("tiny-cpu");
  tinyEp4(s.window->specModel(), 30);
  // The design describes its cluster: the two fixture nodes × 2 slots.
  nlohmann::json j = s.window->specModel()->json();
  j["cluster"]["nodes"] = nlohmann::json::array({{{"host", "127.0.0.1"}, {"port", rt::node_port(0)}, {"slots", 2}},
                                                 {{"host", "127.0.0.1"}, {"port", rt::node_port(1)}, {"slots", 2}}});
  j["parallel"]["gpus_per_node"] = 2;
  s.window->specModel()->setSpecJson(j);
  for (const auto& d : s.window->specModel()->diagnostics()) ADD_FAILURE() << d.text();
  ASSERT_FALSE(s.window->specModel()->hasErrors());

  HostsPanel* hosts = s.window->hosts();
  remote::ConnectOptions o = rt::trusted_options(tmp.path().toStdString());
  o.ssh_config_file = (rt::fixture_dir() / "ssh_config").string();
  hosts->setConnectOptions(o);
  hosts->setMasterPort(free_port());
  hosts->addHost(rt::node(0));
  hosts->addHost(rt::node(1));
  RunWorkspace* run = s.window->runWorkspace();
  run->setWhere(RunWorkspace::Where::hosts);
  ASSERT_TRUE(run->runButton()->isEnabled()) << run->runButton()->toolTip().toStdString();

  run->runButton()->click();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << run->statusText().toStdString();
  EXPECT_TRUE(s.window->launcher()->isRemote());
  EXPECT_FALSE(run->runButton()->isEnabled());
  EXPECT_TRUE(run->stopButton()->isEnabled());
  // The GUI thread stays free: waitUntil spins the event loop the whole time.
  const bool ended = waitUntil([&] { return !s.window->launcher()->isRunning(); }, 240000);
  const std::string console = run->console()->toPlainText().toStdString();
  ASSERT_TRUE(ended) << console;
  EXPECT_EQ(run->statusText(), "completed") << console;

  store::RunReader reader(s.db().toStdString());
  auto runs = reader.list_runs();
  ASSERT_EQ(runs.size(), 1u) << console;
  EXPECT_EQ(runs[0].status, "completed");
  EXPECT_EQ(runs[0].n_steps, 30);
  EXPECT_EQ(runs[0].world_size, 4);
  EXPECT_EQ(reader.steps_after(runs[0].id, -1).size(), 30u);
  // Node events and node lines name their host.
  EXPECT_NE(console.find(rt::node_address(0)), std::string::npos) << console;
  EXPECT_NE(console.find(rt::node_address(1)), std::string::npos) << console;
  EXPECT_NE(console.find("completed on 2 node(s): 30 steps"), std::string::npos) << console;
  // docs/screenshots/remote-run.png: MOE_SCREENSHOT_DIR=docs/screenshots ctest -R RemoteRunGui.Tiny
  if (const QString dir = qEnvironmentVariable("MOE_SCREENSHOT_DIR"); !dir.isEmpty()) {
    s.window->workspaces()->setCurrentWidget(run);
    waitUntil([] { return false; }, 300);
    EXPECT_TRUE(s.window->grab().save(dir + "/remote-run.png"));
  }
}

// Run ▸ where ▸ Slurm end to end: the Hosts panel's one host (fixture node-a) is the login node;
// the studio deploys the bundle there and the driver submits through the Slurm stand-ins
// (tests/remote/slurm-standins, a test fixture); the run is recorded like any other.
TEST(RemoteRunGui, SlurmFromTheStudioSubmitsThroughTheLoginNode) {
  Studio s;
  QTemporaryDir tmp;
  // A bundle whose moe-runtime is store_fake_runtime (20 ms a step), with the Slurm driver.
  const std::filesystem::path bundle = std::filesystem::path(tmp.path().toStdString()) / "bundle";
  std::filesystem::create_directories(bundle / "resources" / "slurm");
  rt::write_file(bundle / "moe-runtime", std::string("#!/bin/sh\nFAKE_STEP_MS=20 exec '") + STORE_FAKE_RUNTIME + "' \"$@\"\n");
  std::filesystem::permissions(bundle / "moe-runtime", std::filesystem::perms::owner_all);
  std::filesystem::copy_file(MOE_SLURM_DRIVER, bundle / "resources" / "slurm" / "moe-slurm-job");
  qputenv("MOE_BUNDLE", QByteArray::fromStdString(bundle.string()));
  qputenv("MOE_SLURM_BIN", MOE_SLURM_STANDINS);
  s.window->loadPreset("tiny-cpu");
  for (const auto& [k, v] : std::vector<std::pair<QString, QVariant>>{
           {"parallel.ep", 2}, {"parallel.gpus_per_node", 1}, {"cluster.nodes.0.slots", 2}, {"train.steps", 3},
           {"cluster.slurm.partition", "debug"}})
    ASSERT_TRUE(s.window->specModel()->setValue(k, v).isEmpty()) << k.toStdString();
  remote::ConnectOptions o = rt::trusted_options(tmp.path().toStdString());
  o.ssh_config_file = (rt::fixture_dir() / "ssh_config").string();
  s.window->hosts()->setConnectOptions(o);
  s.window->hosts()->setMasterPort(free_port());
  s.window->hosts()->addHost(rt::node(0));
  RunWorkspace* run = s.window->runWorkspace();
  run->setWhere(RunWorkspace::Where::slurm);
  ASSERT_TRUE(run->runButton()->isEnabled()) << run->runButton()->toolTip().toStdString();
  run->runButton()->click();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << run->statusText().toStdString();
  const bool ended = waitUntil([&] { return !s.window->launcher()->isRunning(); }, 180000);
  qunsetenv("MOE_BUNDLE");
  qunsetenv("MOE_SLURM_BIN");
  const std::string console = run->console()->toPlainText().toStdString();
  ASSERT_TRUE(ended) << console;
  EXPECT_EQ(run->statusText(), "completed") << console;
  EXPECT_NE(console.find("submitted batch job"), std::string::npos) << console;
  store::RunReader reader(s.db().toStdString());
  auto runs = reader.list_runs();
  ASSERT_EQ(runs.size(), 1u) << console;
  EXPECT_EQ(runs[0].status, "completed");
  EXPECT_EQ(runs[0].n_steps, 3);
  const auto spec = nlohmann::json::parse(reader.spec_json(runs[0].id));
  EXPECT_EQ(spec["cluster"]["nodes"][0]["host"], "slurm-node-0");
  EXPECT_EQ(spec["cluster"]["slurm"]["partition"], "debug");
}

TEST(RemoteRunGui, ClosingLeavesTheJobRunningAndANewStudioReattaches) {
  const int steps = 120;
  Studio s;
  QTemporaryDir tmp;
  s.window->loadPreset("tiny-cpu");
  designOnFixtureNodes(s.window.get(), steps, tmp.path(), free_port());
  ASSERT_FALSE(s.window->specModel()->hasErrors());
  RunWorkspace* run = s.window->runWorkspace();
  ASSERT_TRUE(run->runButton()->isEnabled()) << run->runButton()->toolTip().toStdString();
  run->runButton()->click();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << run->statusText().toStdString();

  // A few steps stored, then the studio closes (no prompts: it detaches) and goes away.
  int64_t id = 0;
  const bool stepping = waitUntil([&] {
    std::vector<store::RunInfo> runs;
    try {  // the worker thread creates the store and records the run
      runs = store::RunReader(s.db().toStdString()).list_runs();
    } catch (const std::exception&) {
      return false;
    }
    if (runs.empty()) return false;
    id = runs[0].id;
    return runs[0].n_steps >= 3;
  }, 180000);
  ASSERT_TRUE(stepping) << run->console()->toPlainText().toStdString();
  EXPECT_TRUE(s.window->close());
  s.window.reset();

  store::RunReader reader(s.db().toStdString());
  store::RunInfo left = reader.run(id);
  EXPECT_EQ(left.status, "running") << left.end_reason;
  ASSERT_LT(left.n_steps, steps) << "the studio must close mid-run for this test to mean anything";
  std::optional<store::RemoteRunRow> row;
  {
    store::RunStore st(s.db().toStdString());
    row = store::find_remote_run(st, id);
  }
  ASSERT_TRUE(row.has_value());
  EXPECT_GT(row->metrics_offset, 0u);
  // The job goes on without the studio: node 0's process group is alive and its metrics grow.
  const std::filesystem::path dir0 = rt::node_home(0) / ".moe-studio" / "jobs" / row->job_id / "node-0";
  const std::string pid_text = rt::read_file(dir0 / "pid");
  ASSERT_FALSE(pid_text.empty()) << dir0;
  const pid_t group = static_cast<pid_t>(std::stol(pid_text));
  EXPECT_GT(liveJobProcesses(group, dir0.string()), 0) << "node-a's job (process group " << group << ") is gone";
  std::error_code ec;
  const uintmax_t size0 = std::filesystem::file_size(dir0 / "metrics.jsonl", ec);
  EXPECT_TRUE(waitUntil([&] { return std::filesystem::file_size(dir0 / "metrics.jsonl", ec) > size0 && !ec; }, 30000))
      << "node-a's metrics file did not grow after the studio closed";

  // A new studio on the same store finds the run and follows it to the end.
  s.window = std::make_unique<MainWindow>(s.db());
  s.window->hosts()->setConnectOptions(rt::trusted_options(tmp.path().toStdString()));
  const QList<qint64> detached = s.window->detachedRuns();
  ASSERT_EQ(detached, QList<qint64>{id});
  const QString why = s.window->reattachRun(id);
  ASSERT_TRUE(why.isEmpty()) << why.toStdString();
  ASSERT_TRUE(s.window->launcher()->isRunning());
  EXPECT_TRUE(s.window->runWorkspace()->stopButton()->isEnabled());
  const bool ended = waitUntil([&] { return !s.window->launcher()->isRunning(); }, 240000);
  const std::string console = s.window->runWorkspace()->console()->toPlainText().toStdString();
  ASSERT_TRUE(ended) << console;
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "completed") << console;
  EXPECT_NE(console.find("reattached to job " + row->job_id), std::string::npos) << console;

  // Every step exactly once, nothing malformed, and nothing left to reattach.
  const store::RunInfo ri = reader.run(id);
  EXPECT_EQ(ri.status, "completed");
  EXPECT_EQ(ri.n_steps, steps);
  EXPECT_EQ(ri.malformed_lines, 0);
  EXPECT_EQ(countRows(s.db(), "SELECT COUNT(*) FROM steps WHERE run_id = ?1", id), steps);
  EXPECT_EQ(countRows(s.db(), "SELECT COUNT(DISTINCT step) FROM steps WHERE run_id = ?1", id), steps);
  EXPECT_EQ(countRows(s.db(), "SELECT MIN(step) FROM steps WHERE run_id = ?1", id), 1);
  EXPECT_EQ(countRows(s.db(), "SELECT MAX(step) FROM steps WHERE run_id = ?1", id), steps);
  EXPECT_EQ(countRows(s.db(), "SELECT COUNT(*) FROM a2a WHERE run_id = ?1", id), steps * 2 * 4);  // layers × ranks
  EXPECT_TRUE(s.window->detachedRuns().isEmpty());
  std::printf("[remote run gui] detached after %lld of %d steps, reattached from byte %llu: %d steps stored once\n",
              static_cast<long long>(left.n_steps), steps, static_cast<unsigned long long>(row->metrics_offset), steps);
}

TEST(RemoteRunGui, AStudioStartedWithReattachFollowsTheRunAndStopCancelsIt) {
  Studio s;
  QTemporaryDir tmp;
  s.window->loadPreset("tiny-cpu");
  designOnFixtureNodes(s.window.get(), 400, tmp.path(), free_port());
  s.window->runWorkspace()->runButton()->click();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << s.window->runWorkspace()->statusText().toStdString();
  int64_t id = 0;
  auto steps_of = [&]() -> int64_t {
    try {
      auto runs = store::RunReader(s.db().toStdString()).list_runs();
      if (runs.empty()) return -1;
      id = runs[0].id;
      return runs[0].n_steps;
    } catch (const std::exception&) {
      return -1;  // the worker thread is still creating the store
    }
  };
  ASSERT_TRUE(waitUntil([&] { return steps_of() >= 2; }, 180000))
      << s.window->runWorkspace()->console()->toPlainText().toStdString();
  s.window.reset();  // destroyed without closeEvent: detaches too
  const int64_t before = steps_of();

  // MOE_STUDIO_REATTACH=1: the new studio reattaches the newest detached run by itself.
  qputenv("MOE_STUDIO_REATTACH", "1");
  s.window = std::make_unique<MainWindow>(s.db());
  qunsetenv("MOE_STUDIO_REATTACH");
  s.window->hosts()->setConnectOptions(rt::trusted_options(tmp.path().toStdString()));
  // The offer runs once the event loop turns; the connect options are set before that.
  ASSERT_TRUE(waitUntil([&] { return s.window->launcher()->isRunning(); }, 5000))
      << s.window->runWorkspace()->statusText().toStdString();
  // Following again: steps keep arriving in the store.
  ASSERT_TRUE(waitUntil([&] { return steps_of() > before + 1; }, 60000))
      << s.window->runWorkspace()->console()->toPlainText().toStdString();
  ASSERT_TRUE(s.window->runWorkspace()->stopButton()->isEnabled());
  s.window->runWorkspace()->stopButton()->click();
  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 30000))
      << s.window->runWorkspace()->console()->toPlainText().toStdString();
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "cancelled");
  EXPECT_EQ(store::RunReader(s.db().toStdString()).run(id).status, "cancelled");

  // Nothing of the job is left on either node (polled: the last processes take a moment to go).
  std::optional<store::RemoteRunRow> row;
  {
    store::RunStore st(s.db().toStdString());
    row = store::find_remote_run(st, id);
  }
  ASSERT_TRUE(row.has_value());
  for (int n = 0; n < 2; ++n) {
    const std::filesystem::path dir = rt::node_home(n) / ".moe-studio" / "jobs" / row->job_id / ("node-" + std::to_string(n));
    const std::string pid_text = rt::read_file(dir / "pid");
    ASSERT_FALSE(pid_text.empty()) << dir;
    const pid_t group = static_cast<pid_t>(std::stol(pid_text));
    EXPECT_TRUE(waitUntil([&] { return liveJobProcesses(group, dir.string()) == 0; }, 10000))
        << liveJobProcesses(group, dir.string()) << " process(es) of the job left on node " << n;
  }
}

TEST(RemoteRunGui, ARankKilledOnANodeFailsTheRunNamingTheNodeAndTheRank) {
  Studio s;
  QTemporaryDir tmp;
  s.window->loadPreset("tiny-cpu");
  designOnFixtureNodes(s.window.get(), 400, tmp.path(), free_port());
  ASSERT_FALSE(s.window->specModel()->hasErrors());
  s.window->runWorkspace()->runButton()->click();
  ASSERT_TRUE(s.window->launcher()->isRunning()) << s.window->runWorkspace()->statusText().toStdString();
  int64_t id = 0;
  ASSERT_TRUE(waitUntil([&] {
    try {
      auto runs = store::RunReader(s.db().toStdString()).list_runs();
      if (runs.empty()) return false;
      id = runs[0].id;
      return runs[0].n_steps >= 2;
    } catch (const std::exception&) {
      return false;  // the worker thread is still creating the store
    }
  }, 180000)) << s.window->runWorkspace()->console()->toPlainText().toStdString();
  std::optional<store::RemoteRunRow> row;
  {
    store::RunStore st(s.db().toStdString());
    row = store::find_remote_run(st, id);
  }
  ASSERT_TRUE(row.has_value());
  // Rank 3 lives on node-b (2 slots per node): the job's process there with MOE_RANK=3.
  const std::filesystem::path dir1 = rt::node_home(1) / ".moe-studio" / "jobs" / row->job_id / "node-1";
  pid_t rank3 = -1;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = rt::read_file(e.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(dir1.string()) == std::string::npos) continue;
    if (rt::read_file(e.path() / "environ").find(std::string("MOE_RANK=3") + '\0') != std::string::npos)
      rank3 = static_cast<pid_t>(std::stol(name));
  }
  ASSERT_GT(rank3, 0) << "no rank 3 under " << dir1;
  ASSERT_EQ(::kill(rank3, SIGKILL), 0);

  ASSERT_TRUE(waitUntil([&] { return !s.window->launcher()->isRunning(); }, 60000));
  const std::string console = s.window->runWorkspace()->console()->toPlainText().toStdString();
  EXPECT_EQ(s.window->runWorkspace()->statusText(), "failed (exit code 1)") << console;
  const store::RunInfo info = store::RunReader(s.db().toStdString()).run(id);
  EXPECT_EQ(info.status, "failed");
  EXPECT_NE(info.end_reason.find(rt::node_address(1)), std::string::npos) << info.end_reason;
  EXPECT_NE(info.end_reason.find("rank 3 was killed by signal 9"), std::string::npos) << info.end_reason;
  EXPECT_NE(console.find("run " + std::to_string(id) + " failed on 2 node(s)"), std::string::npos) << console;
  for (int n = 0; n < 2; ++n) {
    const std::filesystem::path dir = rt::node_home(n) / ".moe-studio" / "jobs" / row->job_id / ("node-" + std::to_string(n));
    const pid_t group = static_cast<pid_t>(std::stol(rt::read_file(dir / "pid")));
    EXPECT_TRUE(waitUntil([&] { return liveJobProcesses(group, dir.string()) == 0; }, 10000))
        << liveJobProcesses(group, dir.string()) << " process(es) of the job left on node " << n;
  }
}
