// HostsPanel: hostfile table, inline validation and per-host connection tests (see hosts_panel.h).
#include "hosts/hosts_panel.h"

#include <algorithm>

#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSaveFile>
#include <QSpinBox>
#include <QStyle>
#include <QTableWidget>
#include <QVBoxLayout>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/theme.h"
#include "error.h"
#include "host_probe.h"
#include "hosts/host_prompts.h"

namespace moe::gui {

namespace {

constexpr int kRowIdRole = Qt::UserRole;
constexpr int kTestingRole = Qt::UserRole + 1;
const char* const kSource = "Hosts panel";

QString cellText(const QTableWidget* t, int row, int col) {
  const QTableWidgetItem* it = t->item(row, col);
  return it ? it->text().trimmed() : QString();
}

// One line of the probe result for the table, the rest for the tooltip.
QString probeLine(const remote::HostProbe& p, const std::string& key_status) {
  QString gpus = p.gpus.empty() ? "no GPU" : QString("%1 GPU%2").arg(p.gpus.size()).arg(p.gpus.size() == 1 ? "" : "s");
  // One arg() call: a chained .arg() would rewrite a "%5" in the node's OS name.
  return QString("✔ reachable, auth ok as %1 · key %2 (%3) · %4 · %5 cores · %6 · %7 ms · runtime %8")
      .arg(QString::fromStdString(p.user), QString::fromStdString(p.host_key), QString::fromStdString(key_status),
           QString::fromStdString(p.os), QString::number(p.cores), gpus, QString::number(p.latency_ms, 'f', 1),
           p.runtime_deployed ? QString("deployed (%1 bundle%2)").arg(p.bundles.size()).arg(p.bundles.size() == 1 ? "" : "s")
                              : QString("not deployed"));
}

QString probeTooltip(const remote::HostProbe& p) {
  QStringList l;
  l << "connect (TCP, key exchange, host key, auth): " + QString::number(p.connect_ms, 'f', 0) + " ms";
  l << "round trip (median of 5): " + QString::number(p.latency_ms, 'f', 2) + " ms";
  l << "OS: " + QString::fromStdString(p.os) + " · " + QString::fromStdString(p.kernel);
  l << "host key: " + QString::fromStdString(p.host_key);
  for (const auto& g : p.gpus) l << QString::fromStdString(g);
  for (const auto& b : p.bundles) l << "bundle " + QString::fromStdString(b);
  return l.join('\n');
}

}  // namespace

// Worker threads post their results through this; the panel's destructor clears `owner`.
struct HostsPanel::Shared {
  std::mutex mu;
  HostsPanel* owner = nullptr;
};

HostsPanel::HostsPanel(HostPrompts* prompts, QWidget* parent)
    : QWidget(parent), prompts_(prompts), shared_(std::make_shared<Shared>()) {
  shared_->owner = this;
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* add = new QPushButton(style()->standardIcon(QStyle::SP_FileIcon), "Add host");
  add->setObjectName("addHost");
  auto* remove = new QPushButton(style()->standardIcon(QStyle::SP_TrashIcon), "Remove");
  remove->setObjectName("removeHost");
  auto* open = new QPushButton(style()->standardIcon(QStyle::SP_DialogOpenButton), "Open hostfile…");
  auto* save = new QPushButton(style()->standardIcon(QStyle::SP_DialogSaveButton), "Save hostfile…");
  auto* test_all = new QPushButton(style()->standardIcon(QStyle::SP_BrowserReload), "Test all");
  test_all->setObjectName("testAll");
  for (QPushButton* b : {add, remove, open, save}) bar->addWidget(b);
  bar->addStretch(1);
  bar->addWidget(new QLabel("Rendezvous port:"));
  master_port_ = new QSpinBox;
  master_port_->setObjectName("masterPort");
  master_port_->setRange(1, 65535);
  master_port_->setValue(29500);
  master_port_->setToolTip("TCP port on node 0 where the ranks of a run meet (open it between the nodes)");
  bar->addWidget(master_port_);
  bar->addWidget(test_all);
  layout->addLayout(bar);

  table_ = new QTableWidget(0, colCount);
  table_->setObjectName("hostsTable");
  table_->setHorizontalHeaderLabels({"Host", "Port", "User", "Slots", "Identity file", "Address (rendezvous)", "",
                                     "Connection test"});
  table_->horizontalHeaderItem(colHost)->setToolTip("ssh destination: a name, an address or a ~/.ssh/config alias");
  table_->horizontalHeaderItem(colPort)->setToolTip("empty: ~/.ssh/config or 22");
  table_->horizontalHeaderItem(colUser)->setToolTip("empty: ~/.ssh/config or your user name");
  table_->horizontalHeaderItem(colSlots)->setToolTip("ranks (GPUs) started on this node");
  table_->horizontalHeaderItem(colKey)->setToolTip("private key file; empty: ssh-agent, ~/.ssh/config, default keys");
  table_->horizontalHeaderItem(colAddr)->setToolTip("address the other nodes use to reach this one; empty: Host");
  table_->verticalHeader()->setVisible(true);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  auto* h = table_->horizontalHeader();
  h->setSectionResizeMode(QHeaderView::ResizeToContents);
  h->setSectionResizeMode(colResult, QHeaderView::Stretch);
  layout->addWidget(table_, 1);

  validation_ = new QLabel;
  validation_->setObjectName("hostsValidation");
  // Plain text: a message quoting a host field (a"b&c) must show those characters, not HTML.
  validation_->setTextFormat(Qt::PlainText);
  validation_->setWordWrap(true);
  validation_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(validation_);
  known_hosts_ = new QLabel;
  known_hosts_->setWordWrap(true);
  layout->addWidget(known_hosts_);

  connect(add, &QPushButton::clicked, this, [this] {
    remote::HostEntry e;
    e.host = "node-" + std::to_string(table_->rowCount() + 1);
    addHost(e);
  });
  connect(remove, &QPushButton::clicked, this, &HostsPanel::handleRemove);
  connect(open, &QPushButton::clicked, this, &HostsPanel::handleOpen);
  connect(save, &QPushButton::clicked, this, &HostsPanel::handleSave);
  connect(test_all, &QPushButton::clicked, this, [this] {
    for (int r = 0; r < table_->rowCount(); ++r) testConnection(r);
  });
  connect(table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* it) {
    if (filling_ || it->column() == colResult) return;
    validate();
    Q_EMIT hostsChanged();
  });
  setConnectOptions({});
  validate();
}

HostsPanel::~HostsPanel() {
  std::lock_guard lk(shared_->mu);
  shared_->owner = nullptr;  // probes still running drop their results
}

void HostsPanel::setConnectOptions(const remote::ConnectOptions& base) {
  base_ = base;
  const QString kh = base_.known_hosts_file.empty() ? QDir::home().filePath(".ssh/known_hosts")
                                                     : QString::fromStdString(base_.known_hosts_file);
  known_hosts_->setText(QString("Host keys are checked against <code>%1</code>; an unknown key is shown with its "
                                "SHA256 fingerprint and asked about, a changed key is always refused.")
                            .arg(kh.toHtmlEscaped()));
}

remote::ConnectOptions HostsPanel::connectOptions() const {
  remote::ConnectOptions o = base_;
  o.unknown_host = remote::UnknownHostPolicy::ask;
  if (prompts_) o.prompts = prompts_->prompts();
  return o;
}

int HostsPanel::masterPort() const { return master_port_->value(); }
void HostsPanel::setMasterPort(int port) { master_port_->setValue(port); }

void HostsPanel::addHost(const remote::HostEntry& e) {
  filling_ = true;
  const int row = table_->rowCount();
  table_->insertRow(row);
  const QString cells[] = {QString::fromStdString(e.host),
                           e.port ? QString::number(e.port) : QString(),
                           QString::fromStdString(e.user),
                           QString::number(e.slots),
                           QString::fromStdString(e.key),
                           QString::fromStdString(e.addr)};
  for (int c = colHost; c <= colAddr; ++c) table_->setItem(row, c, new QTableWidgetItem(cells[c]));
  table_->item(row, colHost)->setData(kRowIdRole, next_row_id_++);
  auto* result = new QTableWidgetItem("not tested");
  result->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
  table_->setItem(row, colResult, result);
  setTestButton(row);
  filling_ = false;
  validate();
  Q_EMIT hostsChanged();
}

void HostsPanel::setTestButton(int row) {
  auto* b = new QPushButton("Test connection");
  b->setObjectName("testConnection");
  const quint64 id = table_->item(row, colHost)->data(kRowIdRole).toULongLong();
  connect(b, &QPushButton::clicked, this, [this, id] {
    const int r = rowOf(id);
    if (r >= 0) testConnection(r);
  });
  table_->setCellWidget(row, colTest, b);
}

int HostsPanel::rowOf(quint64 id) const {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, colHost) && table_->item(r, colHost)->data(kRowIdRole).toULongLong() == id) return r;
  return -1;
}

QString HostsPanel::hostfileText() const {
  QString out;
  for (int r = 0; r < table_->rowCount(); ++r) {
    // Raw cell text, so the library's parser (not this table) judges every field and names the line.
    QStringList parts{cellText(table_, r, colHost)};
    const char* keys[] = {"", "port=", "user=", "slots=", "key=", "addr="};
    for (int c = colPort; c <= colAddr; ++c) {
      const QString v = cellText(table_, r, c);
      if (!v.isEmpty()) parts << keys[c] + v;
    }
    out += parts.join(' ') + '\n';
  }
  return out;
}

std::vector<remote::HostEntry> HostsPanel::hosts(QString* error) const {
  try {
    for (int r = 0; r < table_->rowCount(); ++r) {
      if (cellText(table_, r, colHost).isEmpty())
        throw moe::Error(std::string(kSource) + ":" + std::to_string(r + 1) + ": the host is empty");
      // The hostfile has no quoting: a blank would split a cell into two words (a line break into
      // two lines, another host), a leading '#' would comment the row out. Refused, naming the cell.
      static const char* names[] = {"host", "port", "user", "slots", "key", "addr"};
      for (int c = colHost; c <= colAddr; ++c) {
        const QString v = cellText(table_, r, c);
        const bool blank = std::any_of(v.begin(), v.end(), [](QChar ch) { return ch.isSpace(); });
        if (blank || (c == colHost && v.startsWith('#')))
          throw moe::Error(std::string(kSource) + ":" + std::to_string(r + 1) + ": " + names[c] + " '" +
                           QString(v).replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r").toStdString() +
                           "' " + (blank ? "must not contain spaces, tabs or line breaks" : "must not start with '#'"));
      }
    }
    auto hs = remote::parse_hostfile(hostfileText().toStdString(), kSource);
    if (hs.empty()) throw moe::Error(std::string(kSource) + ": no hosts (add one, or open a hostfile)");
    if (error) error->clear();
    return hs;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return {};
  }
}

void HostsPanel::validate() {
  QString err;
  auto hs = hosts(&err);
  if (!err.isEmpty()) {
    validation_->setText(err);
    validation_->setStyleSheet(QString("color: %1").arg(errorColor(this).name()));
    return;
  }
  int slots = 0;
  for (const auto& h : hs) slots += h.slots;
  validation_->setText(QString("%1 host%2, %3 slots%4").arg(hs.size()).arg(hs.size() == 1 ? "" : "s").arg(slots)
                           .arg(file_.isEmpty() ? QString() : " · " + QDir::toNativeSeparators(file_)));
  validation_->setStyleSheet(QString("color: %1").arg(okColor(this).name()));
}

QString HostsPanel::validationText() const { return validation_->text(); }

void HostsPanel::setHostfileText(const QString& text) {
  try {
    auto hs = remote::parse_hostfile(text.toStdString(), kSource);
    table_->setRowCount(0);
    for (const auto& h : hs) addHost(h);
    validate();
  } catch (const std::exception& e) {
    validation_->setText(QString::fromUtf8(e.what()));
    validation_->setStyleSheet(QString("color: %1").arg(errorColor(this).name()));
  }
}

bool HostsPanel::loadFile(const QString& path) {
  try {
    auto hs = remote::load_hostfile(path.toStdString());  // names the file and line on error
    table_->setRowCount(0);
    file_ = path;
    for (const auto& h : hs) addHost(h);
    validate();
    return true;
  } catch (const std::exception& e) {
    validation_->setText(QString::fromUtf8(e.what()));
    validation_->setStyleSheet(QString("color: %1").arg(errorColor(this).name()));
    return false;
  }
}

bool HostsPanel::saveFile(const QString& path) {
  QString err;
  const auto hs = hosts(&err);
  if (!err.isEmpty()) return false;  // validate() already shows why
  QSaveFile f(path);
  const QByteArray bytes = QByteArray::fromStdString(remote::format_hostfile(hs));
  if (!f.open(QIODevice::WriteOnly) || f.write(bytes) != bytes.size() || !f.commit()) {
    validation_->setText(path + ": cannot write: " + f.errorString());
    validation_->setStyleSheet(QString("color: %1").arg(errorColor(this).name()));
    return false;
  }
  file_ = path;
  validate();
  return true;
}

void HostsPanel::handleOpen() {
  const QString f = QFileDialog::getOpenFileName(this, "Open hostfile", file_, "Hostfiles (*)");
  if (!f.isEmpty()) loadFile(f);
}

void HostsPanel::handleSave() {
  const QString f = QFileDialog::getSaveFileName(this, "Save hostfile", file_.isEmpty() ? "hosts" : file_);
  if (!f.isEmpty()) saveFile(f);
}

void HostsPanel::handleRemove() {
  const auto rows = table_->selectionModel()->selectedRows();
  std::vector<int> rs;
  for (const auto& i : rows) rs.push_back(i.row());
  std::sort(rs.rbegin(), rs.rend());
  for (int r : rs) table_->removeRow(r);
  validate();
  Q_EMIT hostsChanged();
}

bool HostsPanel::isTesting(int row) const {
  const QTableWidgetItem* it = table_->item(row, colResult);
  return it && it->data(kTestingRole).toBool();
}

QString HostsPanel::resultText(int row) const { return cellText(table_, row, colResult); }

void HostsPanel::testConnection(int row) {
  if (row < 0 || row >= table_->rowCount() || isTesting(row)) return;
  QString err;
  const auto all = hosts(&err);
  QTableWidgetItem* result = table_->item(row, colResult);
  if (!err.isEmpty()) {
    result->setText("✘ fix the table first: " + err);
    result->setForeground(errorColor(this));
    Q_EMIT probeFinished(row, false, result->text());
    return;
  }
  const remote::HostEntry host = all[static_cast<size_t>(row)];
  const quint64 id = table_->item(row, colHost)->data(kRowIdRole).toULongLong();
  result->setData(kTestingRole, true);
  result->setText("testing…");
  result->setForeground(palette().color(QPalette::PlaceholderText));
  if (auto* b = table_->cellWidget(row, colTest)) b->setEnabled(false);

  // The host-key answer is shown with the result ("known" / "accepted once" / "remembered").
  remote::ConnectOptions options = connectOptions();
  auto key_status = std::make_shared<std::string>("known");
  auto decide = options.prompts.decide_new_host;
  options.prompts.decide_new_host = [decide, key_status](const remote::HostKeyInfo& info) {
    const auto d = decide ? decide(info) : remote::HostKeyDecision::refuse;
    *key_status = d == remote::HostKeyDecision::accept_once          ? "new, accepted once"
                  : d == remote::HostKeyDecision::accept_and_remember ? "new, remembered"
                                                                      : "new, refused";
    return d;
  };
  std::shared_ptr<Shared> shared = shared_;
  // One thread per probe (a libssh session belongs to one thread); detached, because a probe may
  // wait for a dialog or a timeout: its result is dropped if the panel is gone by then.
  std::thread([shared, host, options, key_status, id] {
    bool ok = false;
    QString text, tip;
    try {
      const remote::HostProbe p = remote::probe_host(host, options);
      ok = true;
      text = probeLine(p, *key_status);
      tip = probeTooltip(p);
    } catch (const std::exception& e) {
      text = "✘ " + QString::fromUtf8(e.what());
      tip = text;
    }
    std::lock_guard lk(shared->mu);
    if (!shared->owner) return;
    HostsPanel* panel = shared->owner;
    QMetaObject::invokeMethod(panel, [panel, id, ok, text, tip] { panel->handleProbeResult(id, ok, text, tip); },
                              Qt::QueuedConnection);
  }).detach();
}

void HostsPanel::handleProbeResult(quint64 row_id, bool ok, const QString& text, const QString& tooltip) {
  const int row = rowOf(row_id);
  if (row < 0) return;  // the row was removed meanwhile
  QTableWidgetItem* result = table_->item(row, colResult);
  result->setData(kTestingRole, false);
  result->setText(text);
  result->setToolTip(tooltip);
  result->setForeground(ok ? okColor(this) : errorColor(this));
  if (auto* b = table_->cellWidget(row, colTest)) b->setEnabled(true);
  Q_EMIT probeFinished(row, ok, text);
}

}  // namespace moe::gui
