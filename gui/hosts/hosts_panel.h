#pragma once
// HostsPanel: the studio's host inventory. A table of host, port, user, slots, identity file and
// rendezvous address that loads and saves the hostfile format of remote/hostfile.h (validated by
// the library's own parser, its message shown inline), and a "Test connection" button per host that
// runs remote::probe_host on a worker thread of its own (a libssh session is not thread-safe; the
// GUI never waits on the network). Host-key and secret questions go through HostPrompts.
#include <QWidget>
#include <memory>
#include <vector>

#include "connect_options.h"
#include "hostfile.h"

class QLabel;
class QSpinBox;
class QTableWidget;

namespace moe::gui {

class HostPrompts;

class HostsPanel : public QWidget {
  Q_OBJECT
 public:
  enum Column { colHost, colPort, colUser, colSlots, colKey, colAddr, colTest, colResult, colCount };

  explicit HostsPanel(HostPrompts* prompts, QWidget* parent = nullptr);
  ~HostsPanel() override;

  // Replaces the table with the file's hosts. On a bad file the table stays as it was, the message
  // (naming the file and line) is shown inline and returned false.
  bool loadFile(const QString& path);
  // Writes the table in hostfile form; false (message inline) when it does not validate or cannot be written.
  bool saveFile(const QString& path);
  void setHostfileText(const QString& text);  // as loadFile, from text (source "Hosts panel")
  QString hostfileText() const;               // the table as hostfile lines (not validated)
  // The table validated by remote::parse_hostfile; empty with *error set when it does not validate.
  std::vector<remote::HostEntry> hosts(QString* error = nullptr) const;
  QString filePath() const { return file_; }

  // Where known_hosts / the ssh config are (tests use private ones); unknown keys are always asked.
  void setConnectOptions(const remote::ConnectOptions& base);
  // The options a connection from the studio uses: the base, unknown host keys asked, the prompts.
  remote::ConnectOptions connectOptions() const;

  int masterPort() const;  // node 0's rendezvous port for runs
  void setMasterPort(int port);

  void addHost(const remote::HostEntry& h);
  void testConnection(int row);  // starts a probe on its own thread (no-op while one runs for the row)
  bool isTesting(int row) const;
  QString resultText(int row) const;
  QString validationText() const;
  QTableWidget* table() const { return table_; }

 Q_SIGNALS:
  void hostsChanged();  // the table was edited, loaded or cleared
  void probeFinished(int row, bool ok, const QString& text);

 private:
  void handleOpen();
  void handleSave();
  void handleRemove();
  void handleProbeResult(quint64 row_id, bool ok, const QString& text, const QString& tooltip);
  void validate();
  int rowOf(quint64 row_id) const;
  void setTestButton(int row);

  struct Shared;
  HostPrompts* prompts_;
  QTableWidget* table_;
  QLabel* validation_;
  QLabel* known_hosts_;
  QSpinBox* master_port_;
  QString file_;
  remote::ConnectOptions base_;
  quint64 next_row_id_ = 1;
  bool filling_ = false;
  std::shared_ptr<Shared> shared_;
};

}  // namespace moe::gui
