// Hosts panel: hostfile round trip through the table, a bad line refused with its line named, and
// "Test connection" against the real sshd fixture (tests/remote/sshd-fixture): a trusted host reports
// success with its SHA256 fingerprint; an unknown key is asked about with the fingerprint, and
// refuse / accept once / accept and remember do what they say to known_hosts.
#include <QTableWidget>
#include <gtest/gtest.h>
#include <libssh/libssh.h>

#include <mutex>

#include "gui_test_util.h"
#include "host_keys.h"
#include "hosts/host_prompts.h"
#include "hosts/hosts_panel.h"
#include "remote_fixture.h"

using namespace moe;
using namespace moe::gui;
using moe::gui::test::waitUntil;
namespace rt = moe::remote::test;

namespace {

// "SHA256:…" of fixture node i's host key, computed by libssh from its .pub file.
std::string fixture_fingerprint(int i) {
  ssh_key key = nullptr;
  const std::string pub = (rt::fixture_dir() / rt::node_name(i) / "host_key.pub").string();
  if (ssh_pki_import_pubkey_file(pub.c_str(), &key) != SSH_OK) return "cannot read " + pub;
  std::string fp = remote::key_fingerprint(key);
  ssh_key_free(key);
  return fp;
}

struct Panel {
  QTemporaryDir dir;
  HostPrompts prompts{nullptr};
  HostsPanel panel{&prompts};
  std::string known_hosts() const { return dir.filePath("known_hosts").toStdString(); }
  // Options with a private known_hosts (empty, or trusting both nodes) and no ssh config or agent.
  void useKnownHosts(bool trusted) {
    remote::ConnectOptions o;
    if (trusted) o = rt::trusted_options(dir.path().toStdString());
    else rt::write_file(known_hosts(), "");
    o.known_hosts_file = known_hosts();
    o.process_config = false;
    o.use_agent = false;
    o.connect_timeout_s = 5;
    panel.setConnectOptions(o);
  }
  // Runs Test connection on `row` and waits for its result.
  bool test(int row, QString* text) {
    bool done = false, ok = false;
    auto c = QObject::connect(&panel, &HostsPanel::probeFinished, [&](int r, bool good, const QString& t) {
      if (r != row) return;
      done = true;
      ok = good;
      *text = t;
    });
    panel.testConnection(row);
    EXPECT_TRUE(panel.isTesting(row) || done);
    const bool finished = waitUntil([&] { return done; }, 20000);
    QObject::disconnect(c);
    EXPECT_TRUE(finished) << "no probe result within 20 s";
    EXPECT_FALSE(panel.isTesting(row));
    return ok;
  }
};

}  // namespace

TEST(HostsPanel, HostfileRoundTripsThroughTheTable) {
  Panel p;
  const QString in = p.dir.filePath("hosts.in"), out = p.dir.filePath("hosts.out");
  rt::write_file(in.toStdString(),
                 "# two nodes\nnode-a slots=4 user=alice port=2222 key=/keys/id_a addr=10.0.0.5\n\n"
                 "node-b slots=4 key=/keys/id_b\n");
  ASSERT_TRUE(p.panel.loadFile(in)) << p.panel.validationText().toStdString();
  ASSERT_EQ(p.panel.table()->rowCount(), 2);
  EXPECT_EQ(p.panel.table()->item(0, HostsPanel::colUser)->text(), "alice");
  EXPECT_EQ(p.panel.table()->item(0, HostsPanel::colAddr)->text(), "10.0.0.5");
  EXPECT_TRUE(p.panel.validationText().startsWith("2 hosts, 8 slots")) << p.panel.validationText().toStdString();
  // An edit in the table is saved too.
  p.panel.table()->item(1, HostsPanel::colPort)->setText("2200");
  ASSERT_TRUE(p.panel.saveFile(out)) << p.panel.validationText().toStdString();

  const auto a = remote::load_hostfile(in.toStdString());
  const auto b = remote::load_hostfile(out.toStdString());
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].host, a[i].host);
    EXPECT_EQ(b[i].slots, a[i].slots);
    EXPECT_EQ(b[i].user, a[i].user);
    EXPECT_EQ(b[i].port, i == 1 ? 2200 : a[i].port);
    EXPECT_EQ(b[i].key, a[i].key);
    EXPECT_EQ(b[i].addr, a[i].addr);
  }
}

TEST(HostsPanel, RefusesABadLineNamingItAndKeepsTheTable) {
  Panel p;
  const QString good = p.dir.filePath("good"), bad = p.dir.filePath("bad");
  rt::write_file(good.toStdString(), "node-a slots=2\n");
  rt::write_file(bad.toStdString(), "node-a slots=2\n# fine\nnode-c slots=many\n");
  ASSERT_TRUE(p.panel.loadFile(good));
  EXPECT_FALSE(p.panel.loadFile(bad));
  EXPECT_TRUE(p.panel.validationText().contains(bad + ":3")) << p.panel.validationText().toStdString();
  EXPECT_TRUE(p.panel.validationText().contains("slots")) << p.panel.validationText().toStdString();
  ASSERT_EQ(p.panel.table()->rowCount(), 1);  // the good table stays
  EXPECT_EQ(p.panel.table()->item(0, HostsPanel::colHost)->text(), "node-a");

  // A bad edit is shown inline, naming the row, and blocks saving.
  p.panel.table()->item(0, HostsPanel::colPort)->setText("99999");
  EXPECT_TRUE(p.panel.validationText().contains("Hosts panel:1")) << p.panel.validationText().toStdString();
  EXPECT_TRUE(p.panel.hosts().empty());
  EXPECT_FALSE(p.panel.saveFile(p.dir.filePath("never")));
  EXPECT_FALSE(QFileInfo::exists(p.dir.filePath("never")));
}

TEST(HostsPanel, TestConnectionReportsReachableAuthAndTheHostKey) {
  Panel p;
  p.useKnownHosts(true);
  p.panel.addHost(rt::node(0));
  p.panel.addHost(rt::node(1));
  // Both at once: one worker each, the GUI thread keeps turning (waitUntil spins it).
  QString text0, text1;
  bool done0 = false, done1 = false, ok0 = false, ok1 = false;
  QObject::connect(&p.panel, &HostsPanel::probeFinished, [&](int r, bool ok, const QString& t) {
    (r == 0 ? done0 : done1) = true;
    (r == 0 ? ok0 : ok1) = ok;
    (r == 0 ? text0 : text1) = t;
  });
  p.panel.testConnection(0);
  p.panel.testConnection(1);
  EXPECT_TRUE(p.panel.isTesting(0) && p.panel.isTesting(1));
  ASSERT_TRUE(waitUntil([&] { return done0 && done1; }, 20000));
  EXPECT_TRUE(ok0) << text0.toStdString();
  EXPECT_TRUE(ok1) << text1.toStdString();
  for (const auto& [t, node] : {std::pair{text0, 0}, std::pair{text1, 1}}) {
    EXPECT_TRUE(t.contains("reachable, auth ok")) << t.toStdString();
    EXPECT_TRUE(t.contains(QString::fromStdString(fixture_fingerprint(node)))) << t.toStdString();
    EXPECT_TRUE(t.contains("(known)")) << t.toStdString();
    EXPECT_TRUE(t.contains(" cores")) << t.toStdString();
  }
  EXPECT_EQ(p.panel.resultText(0), text0);
  // docs/screenshots/hosts.png: MOE_SCREENSHOT_DIR=docs/screenshots ctest -R HostsPanel.TestConnection
  if (const QString dir = qEnvironmentVariable("MOE_SCREENSHOT_DIR"); !dir.isEmpty()) {
    p.panel.resize(1280, 360);
    p.panel.show();
    waitUntil([] { return false; }, 300);  // let the layout settle
    EXPECT_TRUE(p.panel.grab().save(dir + "/hosts.png"));
  }
}

TEST(HostsPanel, UnknownHostKeyIsAskedWithItsFingerprint) {
  Panel p;
  p.useKnownHosts(false);
  p.panel.addHost(rt::node(0));
  p.panel.addHost(rt::node(1));
  std::vector<remote::HostKeyInfo> asked;
  remote::HostKeyDecision answer = remote::HostKeyDecision::refuse;
  p.prompts.setHostKeyAnswer([&](const remote::HostKeyInfo& info) {
    asked.push_back(info);  // on the GUI thread: no lock needed
    return answer;
  });

  QString text;
  EXPECT_FALSE(p.test(0, &text));
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].fingerprint, fixture_fingerprint(0));
  EXPECT_EQ(asked[0].key_type, "ssh-ed25519");
  EXPECT_EQ(asked[0].address, rt::node_address(0));
  EXPECT_TRUE(text.contains("unknown host key")) << text.toStdString();
  EXPECT_TRUE(text.contains(QString::fromStdString(asked[0].fingerprint))) << text.toStdString();

  answer = remote::HostKeyDecision::accept_once;
  EXPECT_TRUE(p.test(0, &text)) << text.toStdString();
  EXPECT_TRUE(text.contains("accepted once")) << text.toStdString();
  EXPECT_EQ(rt::read_file(p.known_hosts()), "");  // not remembered
  // Accepted once means for this session: asked no more.
  EXPECT_TRUE(p.test(0, &text)) << text.toStdString();
  EXPECT_EQ(asked.size(), 2u);

  answer = remote::HostKeyDecision::accept_and_remember;
  EXPECT_TRUE(p.test(1, &text)) << text.toStdString();
  EXPECT_TRUE(text.contains("remembered")) << text.toStdString();
  EXPECT_NE(rt::read_file(p.known_hosts()).find("[127.0.0.1]:" + std::to_string(rt::node_port(1))), std::string::npos);
  EXPECT_TRUE(p.test(1, &text)) << text.toStdString();
  EXPECT_TRUE(text.contains("(known)")) << text.toStdString();
  EXPECT_EQ(asked.size(), 3u);
}
