// PlacementSuggestDialog: the recorded routing and the strategies' plans, computed on the thread pool.
#include "compare/placement_suggest_dialog.h"

#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTableView>
#include <QTimer>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <array>
#include <cmath>

#include "common/theme.h"
#include "expert_placement.h"
#include "run_reader.h"
#include "spec_choices.h"

namespace moe::gui {

struct PlacementSuggestDialog::RoutingResult {
  store::RecordedRouting routing;
  QString error;
};

struct PlacementSuggestDialog::PlanResult {
  int generation = 0;
  JobSpec spec;
  std::vector<store::PlacementSuggestion> suggestions;
  QString error;
};

namespace {
QString describe(const std::string& strategy) {
  for (const Choice& c : choices_of("placement.strategy"))
    if (c.name == strategy) return QString::fromUtf8(c.description.data(), qsizetype(c.description.size()));
  return {};
}
}  // namespace

PlacementSuggestDialog::PlacementSuggestDialog(const QString& store_path, qint64 run, QWidget* parent)
    : QDialog(parent), store_path_(store_path), run_(run) {
  setObjectName("placementSuggestDialog");
  run_label_ = QString("run #%1").arg(run);
  QString spec_error;
  try {  // one small query: the name and the spec the run recorded
    store::RunReader reader(store_path.toStdString());
    const store::RunInfo info = reader.run(run);
    if (!info.name.empty()) run_label_ += " " + QString::fromStdString(info.name);
    spec_ = parse_spec(reader.spec_json(run));
    spec_ok_ = true;
  } catch (const std::exception& e) {
    spec_error = QString::fromStdString(e.what());
  }
  setWindowTitle("Suggest placement from " + run_label_);

  auto* layout = new QVBoxLayout(this);
  auto* intro = new QLabel(
      "Every placement strategy planned from the expert loads and co-selection this run recorded, for the run's "
      "model and EP layout. Change the nodes and the spare slots to see what they buy; <i>Use in Design</i> "
      "writes the chosen plan into the design as an explicit <code>placement.map</code>.");
  intro->setWordWrap(true);
  layout->addWidget(intro);
  routing_label_ = new QLabel("Reading the recorded routing…");
  routing_label_->setObjectName("routingSummary");
  routing_label_->setTextFormat(Qt::PlainText);  // the run's name verbatim
  routing_label_->setWordWrap(true);
  layout->addWidget(routing_label_);

  auto* settings = new QHBoxLayout;
  settings->addWidget(new QLabel("GPUs per node"));
  gpus_per_node_ = new QSpinBox;
  gpus_per_node_->setObjectName("gpusPerNode");
  gpus_per_node_->setRange(1, 4096);
  gpus_per_node_->setToolTip("parallel.gpus_per_node: EP members on one node exchange over the fast link");
  settings->addWidget(gpus_per_node_);
  settings->addSpacing(16);
  settings->addWidget(new QLabel("Slots per EP rank"));
  slots_per_rank_ = new QSpinBox;
  slots_per_rank_->setObjectName("slotsPerRank");
  slots_per_rank_->setRange(0, 1 << 16);
  slots_per_rank_->setToolTip("placement.slots_per_rank: expert slots per EP member; more than experts / ep are spare "
                              "slots for replicas of hot experts (0: experts / ep, no spare)");
  if (spec_ok_) {
    gpus_per_node_->setValue(int(spec_.parallel.gpus_per_node));
    const int64_t per_rank = spec_.parallel.ep > 0 ? spec_.model.moe.num_experts / spec_.parallel.ep : 0;
    slots_per_rank_->setSpecialValueText(QString("0 (= %1, no spare)").arg(per_rank));
    slots_per_rank_->setValue(int(spec_.placement.slots_per_rank));
  }
  settings->addWidget(slots_per_rank_);
  settings->addSpacing(16);
  layout_note_ = new QLabel;
  layout_note_->setObjectName("layoutNote");
  layout_note_->setTextFormat(Qt::PlainText);
  settings->addWidget(layout_note_, 1);
  layout->addLayout(settings);

  model_ = new QStandardItemModel(this);
  model_->setHorizontalHeaderLabels({"strategy", "member max/mean", "inter-node share", "hier. cross-node rows/step",
                                     "a2a ms/step", "note"});
  const char* tips[] = {
      "placement.strategy (hover a row for what it does)",
      "rows the busiest EP member computes / the mean, averaged over the MoE layers (1 = balanced)",
      "flat all-to-all: the inter-node share of the bytes sent to other members",
      "hierarchical all-to-all (one copy per token and remote node): cross-node rows per step, estimated from the "
      "recorded co-selection",
      "the four exchanges of every MoE layer per optimizer step on the spec's hardware profile (cost model link rates)",
      "why a strategy cannot place this layout"};
  for (int c = 0; c < ColumnCount; ++c) model_->setHeaderData(c, Qt::Horizontal, tips[c], Qt::ToolTipRole);
  view_ = new QTableView;
  view_->setObjectName("suggestionsTable");
  view_->setModel(model_);
  view_->verticalHeader()->setVisible(false);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  view_->setAlternatingRowColors(true);
  view_->setWordWrap(true);
  QHeaderView* h = view_->horizontalHeader();
  h->setDefaultAlignment(Qt::AlignCenter | Qt::Alignment(Qt::TextWordWrap));
  h->setMinimumHeight(2 * h->fontMetrics().lineSpacing() + 10);
  h->setStretchLastSection(true);
  view_->setMinimumHeight(4 * view_->fontMetrics().lineSpacing() * 2 + h->minimumHeight() + 8);
  layout->addWidget(view_, 1);

  status_ = new QLabel;
  status_->setObjectName("suggestStatus");
  status_->setTextFormat(Qt::PlainText);
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(status_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
  use_ = buttons->addButton("Use in Design", QDialogButtonBox::AcceptRole);
  use_->setObjectName("useInDesign");
  use_->setToolTip("Fill the Design workspace with this run's spec, placement.strategy explicit and the chosen map; "
                   "the placement view shows the recorded load");
  use_->setEnabled(false);
  layout->addWidget(buttons);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(use_, &QPushButton::clicked, this, [this] {
    const QString why = useSelected();
    if (!why.isEmpty()) setStatus(why, true);
  });
  connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
    const QString s = selectedStrategy();
    bool ok = false;
    for (const auto& sg : suggestions_) ok |= QString::fromStdString(sg.strategy) == s && sg.error.empty();
    use_->setEnabled(ok && !planning_);
  });
  connect(view_, &QTableView::doubleClicked, this, [this] {
    if (use_->isEnabled()) use_->click();
  });

  debounce_ = new QTimer(this);
  debounce_->setSingleShot(true);
  debounce_->setInterval(150);
  connect(debounce_, &QTimer::timeout, this, &PlacementSuggestDialog::startPlan);
  connect(gpus_per_node_, &QSpinBox::valueChanged, this, &PlacementSuggestDialog::schedulePlan);
  connect(slots_per_rank_, &QSpinBox::valueChanged, this, &PlacementSuggestDialog::schedulePlan);

  routing_watcher_ = new QFutureWatcher<std::shared_ptr<RoutingResult>>(this);
  plan_watcher_ = new QFutureWatcher<std::shared_ptr<PlanResult>>(this);
  connect(routing_watcher_, &QFutureWatcherBase::finished, this, &PlacementSuggestDialog::handleRouting);
  connect(plan_watcher_, &QFutureWatcherBase::finished, this, &PlacementSuggestDialog::handlePlan);

  resize(900, 420);
  if (!spec_ok_) {
    routing_done_ = true;
    routing_label_->setText("");
    setStatus(QString("Cannot read the run's spec: %1").arg(spec_error), true);
    gpus_per_node_->setEnabled(false);
    slots_per_rank_->setEnabled(false);
    return;
  }
  updateLayoutNote();
  // The run's routing: its own read-only connection on a pool thread (a long run has many rows).
  const std::string path = store_path.toStdString();
  const int64_t id = run;
  routing_watcher_->setFuture(QtConcurrent::run([path, id] {
    auto r = std::make_shared<RoutingResult>();
    try {
      store::RunReader reader(path);
      r->routing = store::recorded_routing(reader, id);
    } catch (const std::exception& e) {
      r->error = QString::fromStdString(e.what());
    }
    return r;
  }));
  setStatus("Reading the recorded routing…", false);
}

PlacementSuggestDialog::~PlacementSuggestDialog() {
  // Pool tasks own copies of what they read; nothing here waits for them.
  routing_watcher_->disconnect(this);
  plan_watcher_->disconnect(this);
}

bool PlacementSuggestDialog::isReady() const {
  return routing_done_ && !planning_ && !debounce_->isActive() && (!routing_ || planned_generation_ == generation_);
}

QString PlacementSuggestDialog::status() const { return status_->text(); }

void PlacementSuggestDialog::setStatus(const QString& text, bool error) {
  status_->setText(text);
  status_->setStyleSheet(error ? QString("color: %1").arg(errorColor(this).name()) : QString());
}

JobSpec PlacementSuggestDialog::adjustedSpec() const {
  JobSpec s = spec_;
  s.parallel.gpus_per_node = gpus_per_node_->value();
  s.placement.slots_per_rank = slots_per_rank_->value();
  return s;
}

void PlacementSuggestDialog::updateLayoutNote() {
  try {
    const PlacementInput in = placement_input(adjustedSpec());  // core's members and nodes
    const int64_t slots = in.slots(), experts = in.num_experts;
    layout_note_->setText(QString("ep %1 on %2 node%3 · %4 slots for %5 experts%6")
                              .arg(in.ep).arg(in.nodes()).arg(in.nodes() == 1 ? "" : "s").arg(slots).arg(experts)
                              .arg(slots > experts ? QString(" (%1 spare for replicas)").arg(slots - experts) : QString()));
    layout_note_->setStyleSheet({});
  } catch (const std::exception& e) {
    layout_note_->setText(QString::fromStdString(e.what()));
    layout_note_->setStyleSheet(QString("color: %1").arg(errorColor(this).name()));
  }
}

void PlacementSuggestDialog::handleRouting() {
  const auto r = routing_watcher_->result();
  routing_done_ = true;
  if (!r->error.isEmpty()) {
    routing_label_->setText("");
    setStatus(QString("No routing to plan from: %1").arg(r->error), true);
    return;
  }
  routing_ = std::make_shared<const store::RecordedRouting>(std::move(r->routing));
  const auto& rt = *routing_;
  routing_label_->setText(QString("Recorded routing of %1: steps %2–%3 (%4 with expert loads), %5 MoE layer%6, "
                                  "%7 co-selection sample%8.")
                              .arg(run_label_).arg(rt.first_step).arg(rt.last_step).arg(rt.steps)
                              .arg(rt.layers.size()).arg(rt.layers.size() == 1 ? "" : "s")
                              .arg(rt.coselection_samples).arg(rt.coselection_samples == 1 ? "" : "s"));
  startPlan();
}

void PlacementSuggestDialog::schedulePlan() {
  ++generation_;
  updateLayoutNote();
  use_->setEnabled(false);
  if (routing_) debounce_->start();
}

void PlacementSuggestDialog::startPlan() {
  if (!routing_) return;
  if (planning_) return;  // handlePlan starts the newest settings when this one ends
  planning_ = true;
  use_->setEnabled(false);
  setStatus("Planning every strategy…", false);
  const JobSpec spec = adjustedSpec();
  const int generation = generation_;
  const std::shared_ptr<const store::RecordedRouting> routing = routing_;
  plan_watcher_->setFuture(QtConcurrent::run([spec, routing, generation] {
    auto r = std::make_shared<PlanResult>();
    r->generation = generation;
    r->spec = spec;
    try {
      r->suggestions = store::suggest_placements(spec, *routing);
    } catch (const std::exception& e) {
      r->error = QString::fromStdString(e.what());
    }
    return r;
  }));
}

void PlacementSuggestDialog::handlePlan() {
  const auto r = plan_watcher_->result();
  planning_ = false;
  if (r->generation != generation_) {  // the settings changed meanwhile: plan those
    if (!debounce_->isActive()) startPlan();
    return;
  }
  planned_generation_ = r->generation;
  planned_spec_ = r->spec;
  suggestions_ = r->suggestions;
  fillTable();
  if (!r->error.isEmpty()) {
    setStatus(QString("Cannot plan for this spec: %1").arg(r->error), true);
    return;
  }
  int failed = 0;
  for (const auto& s : suggestions_) failed += !s.error.empty();
  setStatus(QString("%1 strategies planned for ep %2, %3 GPUs per node%4.")
                .arg(suggestions_.size() - size_t(failed)).arg(r->spec.parallel.ep).arg(r->spec.parallel.gpus_per_node)
                .arg(failed ? QString("; %1 cannot place this layout (see note)").arg(failed) : QString()),
            false);
}

void PlacementSuggestDialog::fillTable() {
  const QString keep = selectedStrategy();
  model_->removeRows(0, model_->rowCount());
  // Each figure as shown; the best (lowest) of each column, over the strategies that placed the
  // layout, in bold (compared as shown, so equal-looking values are both bold).
  auto shown = [](int column, double v) -> QString {
    if (!std::isfinite(v)) return QStringLiteral("–");
    switch (column) {
      case MaxOverMean: return QString::number(v, 'f', 3);
      case InterShare: return QString::number(v * 100.0, 'f', 1) + " %";
      case HierRows: return QString::number(v, 'f', v < 100 ? 1 : 0);
      default: return QString::number(v, 'f', v < 10 ? 3 : 1);  // a2a ms
    }
  };
  auto figures = [](const store::PlacementSuggestion& s) {
    return std::array<double, 4>{s.max_over_mean, s.inter_share, s.hier_inter_rows, s.a2a_seconds * 1000.0};
  };
  std::array<double, 4> best;
  best.fill(INFINITY);
  int valid = 0;
  for (const auto& s : suggestions_) {
    if (!s.error.empty()) continue;
    ++valid;
    const auto f = figures(s);
    for (size_t i = 0; i < f.size(); ++i)
      if (std::isfinite(f[i])) best[i] = std::min(best[i], f[i]);
  }
  for (const auto& s : suggestions_) {
    const QString name = QString::fromStdString(s.strategy);
    auto* strategy = new QStandardItem(name);
    strategy->setToolTip(describe(s.strategy));
    QList<QStandardItem*> row{strategy};
    const auto f = figures(s);
    for (int c = MaxOverMean; c <= A2aMs; ++c) {
      const double v = s.error.empty() ? f[size_t(c - MaxOverMean)] : NAN;
      auto* item = new QStandardItem(shown(c, v));
      item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      if (valid > 1 && std::isfinite(v) && shown(c, v) == shown(c, best[size_t(c - MaxOverMean)])) {
        QFont font = item->font();
        font.setBold(true);
        item->setFont(font);
        item->setToolTip("the best of the strategies");
      }
      row << item;
    }
    auto* note = new QStandardItem(QString::fromStdString(s.error));
    if (!s.error.empty()) {
      note->setForeground(errorColor(this));
      note->setToolTip(QString::fromStdString(s.error));
    }
    row << note;
    model_->appendRow(row);
  }
  // Columns: the figures as wide as their values or header words, the note takes the rest.
  QHeaderView* h = view_->horizontalHeader();
  const QFontMetrics head(h->font());
  for (int c = 0; c < Note; ++c) {
    int w = 0;
    const QString title = model_->headerData(c, Qt::Horizontal).toString();
    for (const QString& word : title.split(' ')) w = std::max(w, head.horizontalAdvance(word));
    if (title.contains(' ')) w = std::max(w, head.horizontalAdvance(title) / 2 + head.averageCharWidth() * 3);
    for (int r = 0; r < model_->rowCount(); ++r) {
      QFont f = view_->font();
      f.setBold(true);
      w = std::max(w, QFontMetrics(f).horizontalAdvance(model_->index(r, c).data().toString()));
    }
    h->setSectionResizeMode(c, QHeaderView::Fixed);
    h->resizeSection(c, w + 18);
  }
  h->setSectionResizeMode(Note, QHeaderView::Stretch);
  view_->resizeRowsToContents();

  // Keep the user's row; else the most balanced strategy that placed the layout.
  if (!keep.isEmpty() && selectStrategy(keep)) return;
  int best_row = -1;
  for (int i = 0; i < int(suggestions_.size()); ++i)
    if (suggestions_[i].error.empty() &&
        (best_row < 0 || suggestions_[i].max_over_mean < suggestions_[best_row].max_over_mean - 1e-12))
      best_row = i;
  if (best_row >= 0) selectStrategy(QString::fromStdString(suggestions_[best_row].strategy));
}

bool PlacementSuggestDialog::selectStrategy(const QString& strategy) {
  for (int r = 0; r < model_->rowCount(); ++r)
    if (model_->item(r, Strategy)->text() == strategy) {
      view_->selectionModel()->select(model_->index(r, 0),
                                      QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
      view_->setCurrentIndex(model_->index(r, 0));
      return true;
    }
  return false;
}

QString PlacementSuggestDialog::selectedStrategy() const {
  const auto rows = view_->selectionModel()->selectedRows();
  return rows.isEmpty() ? QString() : model_->item(rows.first().row(), Strategy)->text();
}

QString PlacementSuggestDialog::useSelected() {
  if (!isReady() || !routing_) return "the plans are not ready yet";
  const QString chosen = selectedStrategy();
  const store::PlacementSuggestion* s = nullptr;
  for (const auto& sg : suggestions_)
    if (QString::fromStdString(sg.strategy) == chosen) s = &sg;
  if (!s) return "choose a strategy first";
  JobSpec spec;
  try {
    spec = store::with_placement(planned_spec_, *s);
  } catch (const std::exception& e) {
    return QString::fromStdString(e.what());
  }
  // The load the plan came from, per MoE layer of the design: the kept rows the strategies planned
  // on (what the experts compute); a layer the run did not record stays empty (equal load).
  PlacementLoad load;
  const auto& rt = *routing_;
  const auto& rows = rt.kept.size() == rt.load.size() ? rt.kept : rt.load;
  const int64_t first_moe = spec.model.moe.first_dense_layers;
  load.load.assign(size_t(std::max<int64_t>(spec.model.moe_layers(), 0)), {});
  for (int64_t l = 0; l < int64_t(load.load.size()); ++l) load.layers.push_back(first_moe + l);
  for (size_t i = 0; i < rt.layers.size() && i < rows.size(); ++i) {
    const int64_t l = rt.layers[i] - first_moe;
    if (l >= 0 && l < int64_t(load.load.size())) load.load[size_t(l)] = rows[i];
  }
  load.source = QString("%1, steps %2–%3 (%4)").arg(run_label_).arg(rt.first_step).arg(rt.last_step).arg(chosen);
  Q_EMIT useInDesign(spec, load);
  accept();
  return {};
}

}  // namespace moe::gui
