// SpecForm: generated editors (spin box, number line, combo, check box) with an inline message.
#include "design/spec_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleValidator>
#include <QFormLayout>
#include <QGroupBox>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <limits>

#include "common/theme.h"
#include "hardware_profile.h"
#include "spec_choices.h"
#include "spec_relevance.h"

namespace moe::gui {

QStringList fieldChoices(const QString& path) {
  if (path == "cluster.hardware") {
    QStringList list;
    try {
      for (const auto& h : builtin_hardware_profiles()) list << QString::fromStdString(h.name);
    } catch (const std::exception&) {
      // no resources found: the field stays a free text line and core names the problem
    }
    return list;
  }
  QStringList list;  // the closed sets are core's (spec_choices.h)
  for (const Choice& c : choices_of(path.toStdString())) list << QString::fromUtf8(c.name.data(), c.name.size());
  return list;
}

QString choiceTooltip(const QString& path) {
  QString tip = path;
  for (const Choice& c : choices_of(path.toStdString()))
    tip += "\n" + QString::fromUtf8(c.name.data(), c.name.size()) + ": " +
           QString::fromUtf8(c.description.data(), c.description.size());
  return tip;
}

SpecForm::SpecForm(SpecModel* model, const QString& section, QWidget* parent)
    : QWidget(parent), model_(model), section_(section) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(6, 6, 6, 6);
  build(this, model_->json().at(section.toStdString()), section);
  layout->addStretch(1);
  updating_ = true;
  for (auto it = rows_.begin(); it != rows_.end(); ++it) refreshRows(it.key());  // array editors' first text
  updating_ = false;
  connect(model_, &SpecModel::specReplaced, this, &SpecForm::handleSpecReplaced);
  connect(model_, &SpecModel::specChanged, this, &SpecForm::handleSpecChanged);
  handleSpecChanged();
}

void SpecForm::build(QWidget* parent_widget, const nlohmann::json& node, const QString& prefix) {
  auto* form = new QFormLayout;
  form->setFieldGrowthPolicy(QFormLayout::ExpandingFieldsGrow);
  form->setLabelAlignment(Qt::AlignRight | Qt::AlignVCenter);
  static_cast<QVBoxLayout*>(parent_widget->layout())->addLayout(form);
  std::vector<std::pair<QString, const nlohmann::json*>> groups;
  for (auto it = node.begin(); it != node.end(); ++it) {
    QString key = QString::fromStdString(it.key());
    QString path = prefix + "." + key;
    if (it->is_object()) {
      groups.push_back({path, &*it});
      continue;
    }
    QWidget* editor = path == "cluster.nodes"   ? makeNodesTable()
                      : path == "placement.map" ? makeRowsEditor(path)
                      : it->is_array()          ? makeListEditor(path)
                                                : makeEditor(path, *it);
    editor->setObjectName(path);
    editor->setToolTip(choiceTooltip(path));
    auto* message = new QLabel;
    message->setObjectName(path + "#message");
    message->setWordWrap(true);
    message->setVisible(false);
    message->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* cell = new QWidget;
    auto* cell_layout = new QVBoxLayout(cell);
    cell_layout->setContentsMargins(0, 0, 0, 0);
    cell_layout->setSpacing(2);
    cell_layout->addWidget(editor);
    cell_layout->addWidget(message);
    form->addRow(key, cell);
    rows_.insert(it->is_array() ? prefix + "." + key : path, Row{editor, message, form->labelForField(cell)});
  }
  for (const auto& [path, child] : groups) {
    auto* box = new QGroupBox(path.section('.', -1));
    box->setLayout(new QVBoxLayout);
    static_cast<QVBoxLayout*>(parent_widget->layout())->addWidget(box);
    build(box, *child, path);
  }
}

QWidget* SpecForm::makeEditor(const QString& path, const nlohmann::json& value) {
  QStringList choices = fieldChoices(path);
  if (!choices.isEmpty()) {
    auto* combo = new QComboBox;
    combo->addItems(choices);
    const auto described = choices_of(path.toStdString());  // one tooltip per value
    for (int i = 0; i < combo->count() && i < static_cast<int>(described.size()); ++i)
      combo->setItemData(i, QString::fromUtf8(described[i].description.data(), described[i].description.size()),
                         Qt::ToolTipRole);
    combo->setCurrentText(QString::fromStdString(value.get<std::string>()));
    connect(combo, &QComboBox::currentTextChanged, this, [this, path](const QString& text) {
      if (!updating_) model_->setValue(path, text);
    });
    return combo;
  }
  if (value.is_boolean()) {
    auto* check = new QCheckBox;
    check->setChecked(value.get<bool>());
    connect(check, &QCheckBox::toggled, this, [this, path](bool on) {
      if (!updating_) model_->setValue(path, on);
    });
    return check;
  }
  if (value.is_number_integer()) {
    auto* spin = new QSpinBox;
    spin->setRange(0, std::numeric_limits<int>::max());
    spin->setAccelerated(true);
    if (const std::string_view zero = zero_meaning(path.toStdString()); !zero.empty())
      spin->setSpecialValueText(QStringLiteral("0 (%1)").arg(QString::fromUtf8(zero.data(), zero.size())));
    spin->setValue(static_cast<int>(value.get<int64_t>()));
    connect(spin, &QSpinBox::valueChanged, this, [this, path](int v) {
      if (!updating_) model_->setValue(path, v);
    });
    return spin;
  }
  auto* line = new QLineEdit;
  if (value.is_number()) {
    line->setText(QString::number(value.get<double>(), 'g', 10));
    connect(line, &QLineEdit::textEdited, this, [this, path](const QString& text) {
      bool ok = false;
      double v = text.trimmed().toDouble(&ok);
      Row row = rows_.value(path);
      if (!ok) {  // shown inline; the spec keeps its last valid number
        row.message->setText(QStringLiteral("✖ '%1' is not a number").arg(text));
        row.message->setStyleSheet(QStringLiteral("color: %1").arg(errorColor(this).name()));
        row.message->setVisible(true);
        return;
      }
      model_->setValue(path, v);
    });
  } else {
    line->setText(QString::fromStdString(value.get<std::string>()));
    connect(line, &QLineEdit::textEdited, this, [this, path](const QString& text) {
      model_->setValue(path, text);
    });
  }
  return line;
}

// A flat list of whole numbers (parallel.pp_layers): "5, 7"; empty text is the empty list.
QWidget* SpecForm::makeListEditor(const QString& path) {
  auto* line = new QLineEdit;
  line->setProperty("wholeNumbers", true);
  line->setPlaceholderText("comma-separated whole numbers; empty: none");
  connect(line, &QLineEdit::textEdited, this, [this, path](const QString& text) {
    nlohmann::json list = nlohmann::json::array();
    QString cleaned = text;
    cleaned.remove(QRegularExpression("[\\[\\]]"));
    QString why;
    for (const QString& t : cleaned.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts)) {
      bool ok = false;
      const qlonglong v = t.toLongLong(&ok);
      if (!ok) {
        why = QStringLiteral("'%1' is not a whole number").arg(t);
        break;
      }
      list.push_back(int64_t(v));
    }
    if (why.isEmpty()) why = model_->setJsonValue(path, list);  // else the spec keeps its last valid list
    if (!why.isEmpty()) {
      Row row = rows_.value(path);
      row.message->setText(QStringLiteral("✖ ") + why);
      row.message->setStyleSheet(QStringLiteral("color: %1").arg(errorColor(this).name()));
      row.message->setVisible(true);
    }
  });
  return line;
}

QWidget* SpecForm::makeNodesTable() {
  nodes_ = new QTableWidget(0, 4);
  nodes_->setHorizontalHeaderLabels({"host", "port", "user", "slots"});
  nodes_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  nodes_->verticalHeader()->setVisible(false);
  nodes_->setMinimumHeight(120);
  refreshNodes();
  connect(nodes_, &QTableWidget::itemChanged, this, &SpecForm::handleNodesEdited);
  return nodes_;
}

QWidget* SpecForm::makeRowsEditor(const QString& path) {
  auto* text = new QPlainTextEdit;
  text->setLineWrapMode(QPlainTextEdit::NoWrap);
  text->setPlaceholderText("one line per MoE layer (or one line for all): the logical expert of each slot, e.g. 0, 1, 2, 3");
  text->setFixedHeight(text->fontMetrics().lineSpacing() * 4 + 12);
  connect(text, &QPlainTextEdit::textChanged, this, [this, path, text] {
    if (updating_) return;
    nlohmann::json rows = nlohmann::json::array();
    int line_no = 0;
    QString bad;
    for (const QString& line : text->toPlainText().split('\n')) {
      ++line_no;
      QString cleaned = line;
      cleaned.remove(QRegularExpression("[\\[\\]]"));
      const QStringList tokens = cleaned.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts);
      if (tokens.isEmpty()) continue;
      nlohmann::json row = nlohmann::json::array();
      for (const QString& t : tokens) {
        bool ok = false;
        const qlonglong v = t.toLongLong(&ok);
        if (!ok && bad.isEmpty()) bad = QStringLiteral("line %1: '%2' is not an expert number").arg(line_no).arg(t);
        row.push_back(int64_t(v));
      }
      rows.push_back(row);
    }
    Row row = rows_.value(path);
    if (!bad.isEmpty()) {  // shown inline; the spec keeps its last valid map
      row.message->setText(QStringLiteral("✖ ") + bad);
      row.message->setStyleSheet(QStringLiteral("color: %1").arg(errorColor(this).name()));
      row.message->setVisible(true);
      return;
    }
    const QString why = model_->setJsonValue(path, rows);
    if (!why.isEmpty()) {
      row.message->setText(QStringLiteral("✖ ") + why);
      row.message->setStyleSheet(QStringLiteral("color: %1").arg(errorColor(this).name()));
      row.message->setVisible(true);
    }
  });
  return text;
}

void SpecForm::refreshRows(const QString& path) {
  nlohmann::json::json_pointer ptr(("/" + QString(path).replace('.', '/')).toStdString());
  if (auto* line = qobject_cast<QLineEdit*>(rows_.value(path).editor); line && line->property("wholeNumbers").toBool()) {
    QStringList cells;
    if (model_->json().contains(ptr))
      for (const auto& v : model_->json().at(ptr)) cells << QString::fromStdString(v.dump());
    if (line->text() != cells.join(", ")) line->setText(cells.join(", "));
    return;
  }
  auto* text = qobject_cast<QPlainTextEdit*>(rows_.value(path).editor);
  if (!text) return;
  QStringList lines;
  if (model_->json().contains(ptr))
    for (const auto& row : model_->json().at(ptr)) {
      QStringList cells;
      if (row.is_array())
        for (const auto& v : row) cells << QString::fromStdString(v.dump());
      lines << cells.join(", ");
    }
  const QString next = lines.join('\n');
  if (text->toPlainText() != next) text->setPlainText(next);
}

void SpecForm::refreshNodes() {
  if (!nodes_) return;
  updating_ = true;
  const auto& nodes = model_->spec().cluster.nodes;
  nodes_->setRowCount(static_cast<int>(nodes.size()));
  for (int r = 0; r < static_cast<int>(nodes.size()); ++r) {
    const auto& n = nodes[r];
    nodes_->setItem(r, 0, new QTableWidgetItem(QString::fromStdString(n.host)));
    nodes_->setItem(r, 1, new QTableWidgetItem(QString::number(n.port)));
    nodes_->setItem(r, 2, new QTableWidgetItem(QString::fromStdString(n.user)));
    nodes_->setItem(r, 3, new QTableWidgetItem(QString::number(n.slots)));
  }
  updating_ = false;
}

void SpecForm::handleNodesEdited() {
  if (updating_) return;
  std::vector<NodeSpec> nodes;
  for (int r = 0; r < nodes_->rowCount(); ++r) {
    auto text = [&](int c) { return nodes_->item(r, c) ? nodes_->item(r, c)->text() : QString(); };
    NodeSpec n;
    n.host = text(0).toStdString();
    n.port = text(1).toLongLong();
    n.user = text(2).toStdString();
    n.slots = text(3).toLongLong();
    nodes.push_back(n);
  }
  model_->setNodes(nodes);
}

QWidget* SpecForm::editor(const QString& path) const { return rows_.value(path).editor; }

QString SpecForm::message(const QString& path) const {
  Row row = rows_.value(path);
  return row.message && !row.message->isHidden() ? row.message->text() : QString();
}

void SpecForm::refreshValue(const QString& path) {
  QWidget* w = rows_.value(path).editor;
  QVariant v = model_->value(path);
  if (auto* combo = qobject_cast<QComboBox*>(w)) {
    if (combo->findText(v.toString()) < 0) combo->addItem(v.toString());
    combo->setCurrentText(v.toString());
  } else if (auto* check = qobject_cast<QCheckBox*>(w)) {
    check->setChecked(v.toBool());
  } else if (auto* spin = qobject_cast<QSpinBox*>(w)) {
    spin->setValue(static_cast<int>(v.toLongLong()));
  } else if (auto* line = qobject_cast<QLineEdit*>(w); line && !line->property("wholeNumbers").toBool()) {
    line->setText(v.typeId() == QMetaType::Double ? QString::number(v.toDouble(), 'g', 10) : v.toString());
  } else if (qobject_cast<QPlainTextEdit*>(w) || line) {
    refreshRows(path);
  }
}

void SpecForm::handleSpecReplaced() {
  updating_ = true;
  for (auto it = rows_.begin(); it != rows_.end(); ++it)
    if (it.value().editor != nodes_) refreshValue(it.key());
  updating_ = false;
  refreshNodes();
  refreshRelevance();
}

// A field with no effect in this spec stays editable in the JSON but is greyed out here, its
// tooltip saying which field decides.
void SpecForm::refreshRelevance() {
  for (auto it = rows_.begin(); it != rows_.end(); ++it) {
    const Row& row = it.value();
    const QString why = QString::fromStdString(unused_field_reason(model_->spec(), it.key().toStdString()));
    row.editor->setEnabled(why.isEmpty());
    if (row.label) row.label->setEnabled(why.isEmpty());
    const QString tip = choiceTooltip(it.key());
    row.editor->setToolTip(why.isEmpty() ? tip : tip + QStringLiteral("\n\nNo effect in this design: ") + why);
    if (row.label) row.label->setToolTip(why.isEmpty() ? QString() : QStringLiteral("No effect in this design: ") + why);
  }
}

void SpecForm::handleSpecChanged() {
  refreshRelevance();
  // A diagnostic belongs to the deepest field whose path prefixes it ("cluster.nodes[1].slots"
  // goes to the nodes table).
  QHash<QString, QStringList> errors, warnings;
  for (const auto& d : model_->diagnostics()) {
    QString path = QString::fromStdString(d.path);
    QString best;
    for (auto it = rows_.begin(); it != rows_.end(); ++it) {
      const QString& p = it.key();
      if ((path == p || path.startsWith(p + ".") || path.startsWith(p + "[")) && p.size() > best.size())
        best = p;
    }
    if (best.isEmpty()) continue;
    QString text = QString::fromStdString(d.message);
    if (path != best) text = path.mid(best.size() + (path[best.size()] == '.' ? 1 : 0)) + ": " + text;
    (d.severity == Severity::error ? errors : warnings)[best] << text;
  }
  for (auto it = rows_.begin(); it != rows_.end(); ++it) {
    const Row& row = it.value();
    QStringList e = errors.value(it.key()), w = warnings.value(it.key());
    if (e.isEmpty() && w.isEmpty()) {
      row.message->setVisible(false);
      row.message->clear();
      row.editor->setProperty("diagnostic", QString());
      continue;
    }
    QStringList lines;
    for (const auto& t : e) lines << QStringLiteral("✖ ") + t;
    for (const auto& t : w) lines << QStringLiteral("⚠ ") + t;
    row.message->setText(lines.join('\n'));
    row.message->setStyleSheet(QStringLiteral("color: %1").arg(
        (e.isEmpty() ? warningColor(this) : errorColor(this)).name()));
    row.message->setVisible(true);
    row.editor->setProperty("diagnostic", e.isEmpty() ? "warning" : "error");
  }
}

}  // namespace moe::gui
