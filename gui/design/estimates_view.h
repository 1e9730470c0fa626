#pragma once
// EstimatesView: the cost model's plan of the current design, redrawn on every edit — memory per
// GPU as a stacked bar against the device, the step-time breakdown, the communication/computation
// ratio against the 30 % line, all-to-all bytes intra/inter node, and total/active parameters.
#include <QWidget>
#include <optional>

#include "cost_model.h"

class QCustomPlot;
class QLabel;

namespace moe::gui {

class EstimatesView : public QWidget {
  Q_OBJECT
 public:
  explicit EstimatesView(QWidget* parent = nullptr);
  void setPlan(const std::optional<Plan>& plan, const QString& why_not = {});
  // A pinned design to compare with ("what changes if I double EP?"): its figures are shown
  // beside the current ones until cleared.
  void setBaseline(const std::optional<Plan>& baseline, const QString& label = {});
  bool hasBaseline() const { return baseline_.has_value(); }
  // The numbers panel as shown (tests check that edits reach it).
  QString summaryText() const;
  QCustomPlot* memoryPlot() const { return memory_; }
  QCustomPlot* timePlot() const { return time_; }

 private:
  void drawStack(QCustomPlot* plot, const std::vector<std::pair<QString, double>>& parts, double limit,
                 const QString& limit_label, const QString& unit);

  QCustomPlot* memory_;
  QCustomPlot* time_;
  QCustomPlot* ratio_;
  QLabel* summary_;
  std::optional<Plan> plan_, baseline_;
  QString baseline_label_, why_not_;
};

// "1.23 GiB", "456 MiB"; "12.3 B", "4.5 M" for counts; "12.3 ms" for seconds.
QString formatBytes(double bytes);
QString formatCount(double n);
QString formatSeconds(double s);

}  // namespace moe::gui
