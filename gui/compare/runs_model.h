#pragma once
// RunsModel: the runs of the store as a table model (id, name, status, tags, notes, steps, final
// loss, tokens/s, drop rate, created), fed by the StorePoller's run list.
#include <QAbstractTableModel>
#include <vector>

#include "run_reader.h"

namespace moe::gui {

class RunsModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { Id, Name, Status, Tags, Notes, Steps, FinalLoss, TokensPerS, DropRate, Created, ColumnCount };
  using QAbstractTableModel::QAbstractTableModel;

  // True when the rows were replaced (runs added, removed or reordered); false when the same runs
  // were updated in place (selections stay).
  bool setRuns(const std::vector<store::RunInfo>& runs);
  const store::RunInfo& run(int row) const { return runs_[row]; }
  int rowOfRun(qint64 id) const;

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation o, int role) const override;

 private:
  std::vector<store::RunInfo> runs_;
};

}  // namespace moe::gui
