// RunsModel: display and sort roles of the run list.
#include "compare/runs_model.h"

#include <QColor>
#include <QPalette>
#include <QTextDocument>
#include <QApplication>
#include <cmath>

#include "common/theme.h"

namespace moe::gui {

void RunsModel::setRuns(const std::vector<store::RunInfo>& runs) {
  beginResetModel();
  runs_ = runs;
  endResetModel();
}

int RunsModel::rowOfRun(qint64 id) const {
  for (size_t i = 0; i < runs_.size(); ++i)
    if (runs_[i].id == id) return int(i);
  return -1;
}

int RunsModel::rowCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : int(runs_.size()); }
int RunsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant RunsModel::headerData(int section, Qt::Orientation o, int role) const {
  static const char* names[] = {"id", "name", "status", "tags", "notes", "steps", "final loss", "tokens/s", "drop rate", "created"};
  if (o == Qt::Horizontal && role == Qt::DisplayRole && section < ColumnCount) return names[section];
  return {};
}

QVariant RunsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= int(runs_.size())) return {};
  const auto& r = runs_[index.row()];
  auto number = [](double v, int digits) -> QVariant {
    return std::isfinite(v) ? QVariant(QString::number(v, 'f', digits)) : QVariant("–");
  };
  if (role == Qt::UserRole) {  // sort keys: numbers sort as numbers
    switch (index.column()) {
      case Id: return QVariant::fromValue<qint64>(r.id);
      case Steps: return QVariant::fromValue<qint64>(r.n_steps);
      case FinalLoss: return std::isfinite(r.last_loss) ? r.last_loss : 1e300;
      case TokensPerS: return std::isfinite(r.last_tokens_per_s) ? r.last_tokens_per_s : -1.0;
      case DropRate: return r.drop_rate;
      default: break;
    }
    return data(index, Qt::DisplayRole);
  }
  if (role == Qt::DisplayRole) {
    switch (index.column()) {
      case Id: return QVariant::fromValue<qint64>(r.id);
      case Name: return QString::fromStdString(r.name);
      case Status: return QString::fromStdString(r.status);
      case Tags: {
        QStringList t;
        for (const auto& s : r.tags) t << QString::fromStdString(s);
        return t.join(", ");
      }
      case Notes: return QString::fromStdString(r.notes).section('\n', 0, 0);
      case Steps: return QVariant::fromValue<qint64>(r.n_steps);
      case FinalLoss: return number(r.last_loss, 4);
      case TokensPerS: return number(r.last_tokens_per_s, 0);
      case DropRate: return r.routed_total > 0 ? QString("%1 %").arg(r.drop_rate * 100, 0, 'f', 2) : QString("–");
      case Created: return QString::fromStdString(r.created_at);
    }
  }
  if (role == Qt::ForegroundRole && index.column() == Status) {
    const QPalette any = QApplication::palette();
    if (r.status == "completed") return okColor(any);
    if (r.status == "failed" || r.status == "interrupted") return errorColor(any);
    if (r.status == "cancelled") return warningColor(any);
  }
  // A tooltip that looks like HTML is rendered as HTML: give the note as escaped text.
  if (role == Qt::ToolTipRole && index.column() == Notes)
    return r.notes.empty() ? QString() : Qt::convertFromPlainText(QString::fromStdString(r.notes), Qt::WhiteSpacePre);
  if (role == Qt::TextAlignmentRole && index.column() != Name && index.column() != Tags && index.column() != Notes)
    return int(Qt::AlignRight | Qt::AlignVCenter);
  return {};
}

}  // namespace moe::gui
