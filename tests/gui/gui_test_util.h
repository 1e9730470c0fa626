#pragma once
// Helpers of the GUI tests: spin the event loop until a condition holds, a fresh window on a
// temporary run store.
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QTemporaryDir>
#include <functional>
#include <memory>
#include <string>

#include "main_window.h"
#include "metrics_records.h"

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

// The run_start record of a run the tests record by hand (on this machine, cpu backend).
inline metrics::RunStartRecord runStart(const std::string& spec_json, int64_t world_size = 1) {
  metrics::RunStartRecord start;
  start.spec = spec_json;
  start.world_size = world_size;
  start.backend = "cpu";
  start.started_at = "2026-12-07T10:00:00Z";
  start.hosts = "[\"localhost\"]";
  return start;
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
