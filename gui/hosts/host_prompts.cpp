// HostPrompts: questions from SSH worker threads answered on the GUI thread (see host_prompts.h).
#include "hosts/host_prompts.h"

#include <QInputDialog>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QThread>
#include <condition_variable>
#include <mutex>
#include <set>

namespace moe::gui {

struct HostPrompts::Shared {
  std::mutex mu;
  std::condition_variable cv;
  HostPrompts* owner = nullptr;        // null once the studio closes: every question is refused
  std::set<std::string> trusted_once;  // "address fingerprint" accepted once in this session
};

namespace {

// Asks `fn` on the owner's (GUI) thread and waits for the answer; `fallback` when the owner is gone.
// A queued call plus a wait that the owner's destructor can end (a plain BlockingQueuedConnection
// could not be ended, and the owner pointer could dangle between the check and the call).
template <class T, class Shared, class Fn>
T ask_on_gui(const std::shared_ptr<Shared>& s, Fn fn, T fallback) {
  struct Pending {
    bool done = false;
    T value;
  };
  auto p = std::make_shared<Pending>();
  p->value = fallback;
  {
    std::lock_guard lk(s->mu);
    if (!s->owner) return fallback;
    if (QThread::currentThread() == s->owner->thread()) return fallback;  // would wait for itself
    QMetaObject::invokeMethod(
        s->owner,
        [s, p, fn, fallback] {
          HostPrompts* o = nullptr;
          {
            std::lock_guard lk(s->mu);
            o = s->owner;
          }
          T v = o ? fn(o) : fallback;  // a dialog runs here: no lock held
          {
            std::lock_guard lk(s->mu);
            p->value = std::move(v);
            p->done = true;
          }
          s->cv.notify_all();
        },
        Qt::QueuedConnection);
  }
  std::unique_lock lk(s->mu);
  s->cv.wait(lk, [&] { return p->done || !s->owner; });
  return p->done ? p->value : fallback;
}

}  // namespace

HostPrompts::HostPrompts(QWidget* dialog_parent, QObject* parent)
    : QObject(parent), dialog_parent_(dialog_parent), shared_(std::make_shared<Shared>()) {
  shared_->owner = this;
}

HostPrompts::~HostPrompts() {
  {
    std::lock_guard lk(shared_->mu);
    shared_->owner = nullptr;
  }
  shared_->cv.notify_all();
}

remote::Prompts HostPrompts::prompts() const {
  remote::Prompts p;
  std::shared_ptr<Shared> s = shared_;
  p.decide_new_host = [s](const remote::HostKeyInfo& info) {
    return ask_on_gui(s, [info](HostPrompts* o) { return o->askHostKey(info); }, remote::HostKeyDecision::refuse);
  };
  p.passphrase = [s](const std::string& prompt) {
    return ask_on_gui(s, [prompt](HostPrompts* o) { return o->askSecret(prompt); }, std::optional<std::string>{});
  };
  p.password = p.passphrase;
  return p;
}

remote::HostKeyDecision HostPrompts::askHostKey(const remote::HostKeyInfo& info) {
  const std::string once_key = info.address + " " + info.fingerprint;
  {
    std::lock_guard lk(shared_->mu);
    if (shared_->trusted_once.count(once_key)) return remote::HostKeyDecision::accept_once;
  }
  using D = remote::HostKeyDecision;
  D d = D::refuse;
  if (host_key_answer_) {
    d = host_key_answer_(info);
  } else if (!qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS")) {
    QMessageBox box(QMessageBox::Warning, "Unknown host key",
                    QString("<b>%1</b> (%2) is not in your known_hosts file.<br><br>It offers the key<br>"
                            "<code>%3 %4</code><br><br>Compare this fingerprint with the one the host's "
                            "administrator gives you (<code>ssh-keygen -lf "
                            "/etc/ssh/ssh_host_ed25519_key.pub</code> on the host) before you trust it.")
                        .arg(QString::fromStdString(info.host).toHtmlEscaped(),
                             QString::fromStdString(info.address).toHtmlEscaped(),
                             QString::fromStdString(info.key_type).toHtmlEscaped(),
                             QString::fromStdString(info.fingerprint).toHtmlEscaped()),
                    QMessageBox::NoButton, dialog_parent_);
    QPushButton* once = box.addButton("Accept once", QMessageBox::AcceptRole);
    QPushButton* remember = box.addButton("Accept and remember", QMessageBox::AcceptRole);
    QPushButton* refuse = box.addButton("Refuse", QMessageBox::RejectRole);
    box.setDefaultButton(refuse);
    box.setEscapeButton(refuse);
    box.exec();
    if (box.clickedButton() == once) d = D::accept_once;
    else if (box.clickedButton() == remember) d = D::accept_and_remember;
  }
  if (d == D::accept_once) {
    std::lock_guard lk(shared_->mu);
    shared_->trusted_once.insert(once_key);
  }
  Q_EMIT hostKeyAnswered(QString::fromStdString(info.host), QString::fromStdString(info.fingerprint), int(d));
  return d;
}

std::optional<std::string> HostPrompts::askSecret(const std::string& prompt) {
  if (secret_answer_) return secret_answer_(prompt);
  if (qEnvironmentVariableIsSet("MOE_STUDIO_NO_PROMPTS")) return std::nullopt;
  bool ok = false;
  QString text = QInputDialog::getText(dialog_parent_, "SSH", QString::fromStdString(prompt), QLineEdit::Password,
                                       {}, &ok);
  if (!ok) return std::nullopt;
  std::string out = text.toStdString();
  text.fill(QChar(' '));  // the library wipes its copy after use; do not keep ours
  return out;
}

}  // namespace moe::gui
