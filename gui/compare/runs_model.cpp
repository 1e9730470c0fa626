// RunsModel: display and sort roles of the run list.
#include "compare/runs_model.h"

#include <QColor>
#include <QPalette>
#include <QTextDocument>
#include <QApplication>
#include <cmath>

#include "common/theme.h"

namespace moe::gui {

namespace {
// What the table shows of a run (data() below); NaN-safe for the loss and throughput.
bool sameFigures(const store::RunInfo& a, const store::RunInfo& b) {
  auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
  return a.name == b.name && a.status == b.status && a.tags == b.tags && a.notes == b.notes &&
         a.n_steps == b.n_steps && same(a.last_loss, b.last_loss) && same(a.last_tokens_per_s, b.last_tokens_per_s) &&
         same(a.drop_rate, b.drop_rate) && a.routed_total == b.routed_total && a.created_at == b.created_at;
}
}  // namespace

// A poll lists every run twice a second while one trains: the same runs in the same order update
// their rows in place (one row changes), so views keep their selection and the header does not
// re-measure thousands of rows; anything else replaces the rows.
bool RunsModel::setRuns(const std::vector<store::RunInfo>& runs) {
  bool same_rows = runs.size() == runs_.size();
  for (size_t i = 0; same_rows && i < runs.size(); ++i) same_rows = runs[i].id == runs_[i].id;
  if (!same_rows) {
    beginResetModel();
    runs_ = runs;
    endResetModel();
    return true;
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const bool changed = !sameFigures(runs[i], runs_[i]);
    runs_[i] = runs[i];
    if (changed) Q_EMIT dataChanged(index(int(i), 0), index(int(i), ColumnCount - 1));
  }
  return false;
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
