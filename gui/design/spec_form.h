#pragma once
// SpecForm: the form for one section of the spec ("model", "routing", …). Fields are generated
// from the spec's own JSON (every key of the defaults), so a new spec field shows up without GUI
// work. Each field shows core's diagnostic for its JSON path right under it; a field with no effect
// in the current spec (core's unused_field_reason: model.mla.* beside gqa attention, …) is greyed
// out with the reason in its tooltip, and a 0 that means "auto" or "never" says so.
#include <QHash>
#include <QWidget>

#include "design/spec_model.h"

class QLabel;
class QTableWidget;

namespace moe::gui {

class SpecForm : public QWidget {
  Q_OBJECT
 public:
  SpecForm(SpecModel* model, const QString& section, QWidget* parent = nullptr);

  // The editor widget of a dotted path, or nullptr (tests drive fields through it).
  QWidget* editor(const QString& path) const;
  // The inline message currently shown under a field ("" when none).
  QString message(const QString& path) const;
  QStringList paths() const { return rows_.keys(); }

 private:
  struct Row {
    QWidget* editor = nullptr;
    QLabel* message = nullptr;
    QWidget* label = nullptr;  // the field's name in the form
  };
  void build(QWidget* parent_widget, const nlohmann::json& node, const QString& prefix);
  QWidget* makeEditor(const QString& path, const nlohmann::json& value);
  QWidget* makeNodesTable();
  // An array of integer rows (placement.map): one line per row, numbers separated by commas.
  QWidget* makeRowsEditor(const QString& path);
  QWidget* makeListEditor(const QString& path);
  void refreshRows(const QString& path);
  void handleSpecReplaced();
  void handleSpecChanged();
  void handleNodesEdited();
  void refreshValue(const QString& path);
  void refreshNodes();
  void refreshRelevance();

  SpecModel* model_;
  QString section_;
  QHash<QString, Row> rows_;
  QTableWidget* nodes_ = nullptr;
  bool updating_ = false;
};

// Choices of the enumerated string fields ("routing.type" → token_choice, expert_choice).
QStringList fieldChoices(const QString& path);
// The field's path, then one line per value with its description (core's spec_choices.h).
QString choiceTooltip(const QString& path);

}  // namespace moe::gui
