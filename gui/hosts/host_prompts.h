#pragma once
// HostPrompts: the studio's answers to what an SSH connection asks while it runs on a worker thread
// (an unknown host key, a key passphrase, a password). The remote library calls the callbacks of
// prompts() on its worker threads; each question is queued to the GUI thread, answered there (a
// dialog, or a function the tests install) and the worker waits for the answer. When the studio
// closes, pending questions are answered "refuse" so no worker waits forever. Secrets are handed to
// the library and never kept here. "Accept once" trusts a key for this studio session only.
#include <QObject>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "connect_options.h"

namespace moe::gui {

class HostPrompts : public QObject {
  Q_OBJECT
 public:
  using HostKeyAnswer = std::function<remote::HostKeyDecision(const remote::HostKeyInfo&)>;
  using SecretAnswer = std::function<std::optional<std::string>(const std::string& prompt)>;

  explicit HostPrompts(QWidget* dialog_parent, QObject* parent = nullptr);
  ~HostPrompts() override;

  // Callbacks for ConnectOptions::prompts, safe to call from any worker thread (never call them
  // from the GUI thread: they would wait for it).
  remote::Prompts prompts() const;

  // Replace the dialogs (tests): called on the GUI thread.
  void setHostKeyAnswer(HostKeyAnswer answer) { host_key_answer_ = std::move(answer); }
  void setSecretAnswer(SecretAnswer answer) { secret_answer_ = std::move(answer); }

 Q_SIGNALS:
  // Emitted on the GUI thread after each host-key question with the answer given.
  void hostKeyAnswered(const QString& host, const QString& fingerprint, int decision);

 private:
  struct Shared;
  remote::HostKeyDecision askHostKey(const remote::HostKeyInfo& info);
  std::optional<std::string> askSecret(const std::string& prompt);

  QWidget* dialog_parent_;
  HostKeyAnswer host_key_answer_;
  SecretAnswer secret_answer_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace moe::gui
