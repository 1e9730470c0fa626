#pragma once
// Helpers of the GUI tests: spin the event loop until a condition holds, a fresh window on a
// temporary run store.
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <functional>
#include <memory>

#include "main_window.h"

namespace moe::gui::test {

// Processes events until pred() or timeout; returns pred().
inline bool waitUntil(const std::function<bool()>& pred, int timeout_ms) {
  QElapsedTimer t;
  t.start();
  while (!pred()) {
    if (t.elapsed() > timeout_ms) return false;
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
  }
  return true;
}

struct Studio {
  QTemporaryDir dir;
  std::unique_ptr<MainWindow> window;
  Studio() {
    window = std::make_unique<MainWindow>(dir.filePath("runs.sqlite"));
    window->resize(1280, 860);
    window->show();
  }
  QString db() const { return dir.filePath("runs.sqlite"); }
};

}  // namespace moe::gui::test
