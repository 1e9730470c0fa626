// DesignWorkspace: assembles forms, problems list, layout grid and estimates around SpecModel.
#include "design/design_workspace.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QScrollArea>
#include <QSplitter>
#include <QTabWidget>
#include <QThread>
#include <QVBoxLayout>

#include "common/theme.h"
#include "cpu_runtime_limits.h"
#include "design/a2a_scaling_view.h"
#include "design/estimates_view.h"
#include "design/layout_view.h"
#include "design/placement_view.h"
#include "design/spec_form.h"

namespace moe::gui {

DesignWorkspace::DesignWorkspace(SpecModel* model, QWidget* parent) : QWidget(parent), model_(model) {
  auto* outer = new QHBoxLayout(this);
  outer->setContentsMargins(4, 4, 4, 4);
  auto* split = new QSplitter(Qt::Horizontal);
  outer->addWidget(split);

  auto* left = new QSplitter(Qt::Vertical);
  tabs_ = new QTabWidget;
  const std::pair<const char*, const char*> sections[] = {
      {"model", "Model"}, {"routing", "Routing"}, {"parallel", "Parallel"}, {"placement", "Placement"},
      {"train", "Training"}, {"runtime", "Runtime"}, {"cluster", "Cluster"}};
  for (const auto& [key, title] : sections) {
    auto* form = new SpecForm(model_, key);
    forms_ << form;
    auto* scroll = new QScrollArea;
    scroll->setWidget(form);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    tabs_->addTab(scroll, title);
  }
  problems_ = new QListWidget;
  problems_->setObjectName("problems");
  problems_->setToolTip("Every rule core reports for this design; double-click to go to the field");
  connect(problems_, &QListWidget::itemActivated, this, &DesignWorkspace::handleProblemActivated);
  local_run_ = new QLabel;
  local_run_->setObjectName("localRun");
  local_run_->setWordWrap(true);
  local_run_->setToolTip("Whether moe run can train this design here: moe-runtime's CPU backend limits "
                         "(core/cpu_runtime_limits.h) and this machine's cores against the layout's ranks");
  auto* problems_box = new QWidget;
  auto* problems_layout = new QVBoxLayout(problems_box);
  problems_layout->setContentsMargins(0, 0, 0, 0);
  problems_layout->addWidget(problems_, 1);
  problems_layout->addWidget(local_run_);
  left->addWidget(tabs_);
  left->addWidget(problems_box);
  left->setStretchFactor(0, 4);
  left->setStretchFactor(1, 1);

  auto* right = new QSplitter(Qt::Vertical);
  auto* layout_box = new QWidget;
  auto* lb = new QVBoxLayout(layout_box);
  lb->setContentsMargins(4, 4, 4, 0);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel("Colour by"));
  dimension_ = new QComboBox;
  dimension_->setObjectName("layoutDimension");
  dimension_->addItems({"TP group", "EP group", "DP replica", "PP stage"});
  dimension_->setCurrentIndex(1);
  row->addWidget(dimension_);
  row->addStretch(1);
  lb->addLayout(row);
  layout_view_ = new LayoutView;
  lb->addWidget(layout_view_, 1);
  connect(dimension_, &QComboBox::currentIndexChanged, this,
          [this](int i) { layout_view_->setDimension(LayoutView::Dimension(i)); });
  estimates_ = new EstimatesView;
  auto* est_box = new QWidget;
  auto* eb = new QVBoxLayout(est_box);
  eb->setContentsMargins(0, 0, 0, 0);
  auto* est_row = new QHBoxLayout;
  est_row->addWidget(new QLabel("<b>Estimates</b> (cost model)"));
  est_row->addStretch(1);
  auto* pin = new QPushButton("Pin as Baseline");
  pin->setObjectName("pinBaseline");
  pin->setToolTip("Keep this design's estimates to compare edits against (\"what changes if I double EP?\")");
  auto* unpin = new QPushButton("Clear Baseline");
  unpin->setEnabled(false);
  est_row->addWidget(pin);
  est_row->addWidget(unpin);
  eb->addLayout(est_row);
  eb->addWidget(estimates_, 1);
  connect(pin, &QPushButton::clicked, this, [this, unpin] {
    const auto& p = model_->spec().parallel;
    estimates_->setBaseline(model_->plan(), QString("%1 (dp %2 · tp %3 · pp %4 · ep %5)")
                                                .arg(QString::fromStdString(model_->spec().name), QString::number(p.dp),
                                                     QString::number(p.tp), QString::number(p.pp), QString::number(p.ep)));
    unpin->setEnabled(model_->plan().has_value());
  });
  connect(unpin, &QPushButton::clicked, this, [this, unpin] {
    estimates_->setBaseline(std::nullopt);
    unpin->setEnabled(false);
  });
  auto* placement_box = new QWidget;
  auto* pb = new QVBoxLayout(placement_box);
  pb->setContentsMargins(4, 4, 4, 0);
  placement_view_ = new PlacementView;
  placement_view_->setObjectName("placementView");
  pb->addWidget(placement_view_);
  view_tabs_ = new QTabWidget;
  view_tabs_->setObjectName("designViews");
  view_tabs_->setDocumentMode(true);
  view_tabs_->addTab(layout_box, "Layout");
  view_tabs_->addTab(placement_box, "Placement");
  a2a_scaling_ = new A2aScalingView;
  a2a_scaling_->setObjectName("a2aScaling");
  view_tabs_->addTab(a2a_scaling_, "A2A Scaling");
  view_tabs_->setTabToolTip(0, "The cluster: one cell per GPU, coloured by a parallel dimension");
  view_tabs_->setTabToolTip(1, "Which expert each GPU's slots hold (placement.*), per MoE layer, coloured by load");
  view_tabs_->setTabToolTip(2, "The expert all-to-all simulated from 8 to 8,192 GPUs (moe plan --simulate-a2a)");
  // The form being edited brings its view forward.
  connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
    const QString section = i >= 0 && i < forms_.size() && !forms_[i]->paths().isEmpty()
                                ? forms_[i]->paths().first().section('.', 0, 0) : QString();
    if (section == "placement") view_tabs_->setCurrentIndex(1);
    else if (section == "parallel" || section == "cluster") view_tabs_->setCurrentIndex(0);
  });
  connect(model_, &SpecModel::specReplaced, placement_view_, &PlacementView::clearRecordedLoad);
  right->addWidget(view_tabs_);
  right->addWidget(est_box);
  right->setStretchFactor(0, 1);
  right->setStretchFactor(1, 3);

  split->addWidget(left);
  split->addWidget(right);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);

  connect(model_, &SpecModel::specChanged, this, &DesignWorkspace::handleSpecChanged);
  handleSpecChanged();
}

SpecForm* DesignWorkspace::form(const QString& section) const {
  for (auto* f : forms_)
    if (!f->paths().isEmpty() && f->paths().first().section('.', 0, 0) == section) return f;
  return nullptr;
}

QWidget* DesignWorkspace::editorFor(const QString& path) const {
  for (auto* f : forms_)
    if (auto* e = f->editor(path)) return e;
  return nullptr;
}

QString DesignWorkspace::messageFor(const QString& path) const {
  for (auto* f : forms_)
    if (f->editor(path)) return f->message(path);
  return {};
}

void DesignWorkspace::handleSpecChanged() {
  problems_->clear();
  QString first_error;
  for (const auto& d : model_->diagnostics()) {
    auto* item = new QListWidgetItem(QString::fromStdString(d.text()));
    item->setData(Qt::UserRole, QString::fromStdString(d.path));
    item->setForeground(d.severity == Severity::error ? errorColor(this) : warningColor(this));
    problems_->addItem(item);
    if (first_error.isEmpty() && d.severity == Severity::error) first_error = QString::fromStdString(d.text());
  }
  if (model_->diagnostics().empty()) {
    auto* item = new QListWidgetItem(QStringLiteral("✔ no problems: the design is valid"));
    item->setForeground(okColor(this));
    problems_->addItem(item);
  }
  const LocalRunFit fit = local_run_fit(model_->spec(), QThread::idealThreadCount());
  local_run_->setText(QStringLiteral("This machine: ") + QString::fromStdString(fit.text));
  QPalette palette = local_run_->palette();
  palette.setColor(QPalette::WindowText, fit.runnable ? okColor(this) : warningColor(this));
  local_run_->setPalette(palette);
  layout_view_->setSpec(model_->spec());
  placement_view_->setSpec(model_->spec(), model_->diagnostics());
  estimates_->setPlan(model_->plan(), first_error);
  a2a_scaling_->setSpec(model_->spec(), model_->hasErrors(), first_error);
}

void DesignWorkspace::showRecordedLoad(const PlacementLoad& load) {
  placement_view_->setRecordedLoad(load);
  view_tabs_->setCurrentIndex(1);
}

void DesignWorkspace::handleProblemActivated() {
  auto* item = problems_->currentItem();
  if (!item) return;
  QString path = item->data(Qt::UserRole).toString();
  for (int i = 0; i < forms_.size(); ++i) {
    for (const auto& p : forms_[i]->paths()) {
      if (path == p || path.startsWith(p + ".") || path.startsWith(p + "[") || p.startsWith(path + ".")) {
        tabs_->setCurrentIndex(i);
        forms_[i]->editor(p)->setFocus();
        return;
      }
    }
  }
}

}  // namespace moe::gui
