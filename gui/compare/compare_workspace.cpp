// CompareWorkspace: runs table, overlaid curves, config diff and summary.
#include "compare/compare_workspace.h"

#include <QComboBox>
#include <QFontMetrics>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QSlider>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <cmath>
#include "common/qcp.h"

#include "common/plot_tools.h"
#include "common/theme.h"
#include "compare/placement_suggest_dialog.h"
#include "compare/runs_model.h"
#include "live/live_workspace.h"
#include "run_figures.h"
#include "run_store.h"

namespace moe::gui {

class RunStoreHandle {
 public:
  explicit RunStoreHandle(const std::string& path) : store(path) {}
  store::RunStore store;
};

namespace {

constexpr int kRunIdRole = Qt::UserRole + 1;  // the summary's first column: which run a row is

QTableView* makeTable(QAbstractItemModel* model, const QString& name) {
  auto* view = new QTableView;
  view->setObjectName(name);
  view->setModel(model);
  view->setAlternatingRowColors(true);
  view->verticalHeader()->setVisible(false);
  view->horizontalHeader()->setStretchLastSection(true);
  view->setEditTriggers(QAbstractItemView::NoEditTriggers);
  view->setSelectionBehavior(QAbstractItemView::SelectRows);
  return view;
}
// A table of a few numeric columns that must fit a narrow pane: headers wrap onto two lines,
// numeric columns get the width of their widest value (or header word), the first column takes
// what is left and elides.
void wrapHeaders(QTableView* view) {
  QHeaderView* h = view->horizontalHeader();
  h->setDefaultAlignment(Qt::AlignCenter | Qt::Alignment(Qt::TextWordWrap));
  h->setMinimumHeight(2 * h->fontMetrics().lineSpacing() + 10);
  h->setStretchLastSection(false);
  view->setTextElideMode(Qt::ElideMiddle);
  view->setWordWrap(false);
}

void fitColumns(QTableView* view) {
  QAbstractItemModel* m = view->model();
  QHeaderView* h = view->horizontalHeader();
  const QFontMetrics cell(view->font()), head(h->font());
  for (int c = 1; c < m->columnCount(); ++c) {
    int w = 0;
    const QString title = m->headerData(c, Qt::Horizontal).toString();
    for (const QString& word : title.split(' ')) w = std::max(w, head.horizontalAdvance(word));
    if (title.contains(' ')) w = std::max(w, head.horizontalAdvance(title) / 2 + head.averageCharWidth() * 3);  // two lines
    for (int r = 0; r < m->rowCount(); ++r) w = std::max(w, cell.horizontalAdvance(m->index(r, c).data().toString()));
    h->setSectionResizeMode(c, QHeaderView::Fixed);
    h->resizeSection(c, w + 18);
  }
  if (m->columnCount() > 0) h->setSectionResizeMode(0, QHeaderView::Stretch);
}
}  // namespace

CompareWorkspace::CompareWorkspace(StorePoller* poller, QWidget* parent) : QWidget(parent), poller_(poller) {
  auto* layout = new QVBoxLayout(this);
  auto* split = new QSplitter(Qt::Vertical);
  layout->addWidget(split);

  // Runs table with its toolbar.
  auto* top = new QWidget;
  auto* tl = new QVBoxLayout(top);
  tl->setContentsMargins(0, 0, 0, 0);
  auto* bar = new QHBoxLayout;
  filter_ = new QLineEdit;
  filter_->setObjectName("runsFilter");
  filter_->setPlaceholderText("Filter runs by name, status, tag or note…");
  filter_->setClearButtonEnabled(true);
  bar->addWidget(filter_, 1);
  auto* tag = new QPushButton("Tag…");
  auto* notes = new QPushButton("Notes…");
  auto* open = new QPushButton("Open in Live");
  auto* suggest = suggest_ = new QPushButton("Suggest Placement…");
  suggest->setObjectName("suggestPlacement");
  suggest->setEnabled(false);  // one run selected
  suggest->setToolTip("Plan every expert placement strategy from the selected run's recorded routing, compare them, "
                      "and use one in the design");
  auto* del = new QPushButton(style()->standardIcon(QStyle::SP_TrashIcon), "Delete…");
  bar->addWidget(tag);
  bar->addWidget(notes);
  bar->addWidget(open);
  bar->addWidget(suggest);
  bar->addWidget(del);
  tl->addLayout(bar);
  runs_model_ = new RunsModel(this);
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(runs_model_);
  proxy_->setFilterKeyColumn(-1);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  proxy_->setSortRole(Qt::UserRole);
  runs_view_ = makeTable(proxy_, "runsTable");
  runs_view_->setSortingEnabled(true);
  runs_view_->sortByColumn(RunsModel::Id, Qt::DescendingOrder);
  runs_view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  // Columns fit their contents when the rows are replaced, not at every update of a training run's
  // row (ResizeToContents re-measured up to 1,000 rows per column each time: 50 ms with 2,000 runs).
  runs_view_->horizontalHeader()->setResizeContentsPrecision(200);
  runs_view_->horizontalHeader()->setSectionResizeMode(RunsModel::Notes, QHeaderView::Stretch);
  // A row updated in place (a training run's steps, loss, throughput) widens a column it outgrew.
  connect(runs_model_, &QAbstractItemModel::dataChanged, this, [this](const QModelIndex& from, const QModelIndex& to) {
    const QFontMetrics fm(runs_view_->font());
    QHeaderView* header = runs_view_->horizontalHeader();
    for (int c = 0; c < RunsModel::ColumnCount; ++c) {
      if (c == RunsModel::Notes) continue;
      for (int r = from.row(); r <= to.row(); ++r) {
        const int wanted = fm.horizontalAdvance(runs_model_->index(r, c).data().toString()) + 2 * fm.averageCharWidth() + 4;
        if (header->sectionSize(c) < wanted) header->resizeSection(c, wanted);
      }
    }
  });
  runs_view_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(runs_view_, &QWidget::customContextMenuRequested, this, &CompareWorkspace::showRunsMenu);
  tl->addWidget(runs_view_);
  split->addWidget(top);

  // Curves on the left, diff and summary tables on the right.
  auto* bottom = new QSplitter(Qt::Horizontal);
  auto* left = new QWidget;
  auto* ll = new QVBoxLayout(left);
  ll->setContentsMargins(0, 0, 0, 0);
  auto* cbar = new QHBoxLayout;
  cbar->addWidget(new QLabel("Metric"));
  metric_ = new QComboBox;
  metric_->setObjectName("compareMetric");
  metric_->addItems({"loss", "aux_loss", "z_loss", "tokens_per_s", "step_ms", "lr"});
  cbar->addWidget(metric_);
  cbar->addSpacing(12);
  cbar->addWidget(new QLabel("Smoothing"));
  ema_ = new QSlider(Qt::Horizontal);
  ema_->setRange(0, 99);
  ema_->setValue(60);
  ema_->setMaximumWidth(160);
  cbar->addWidget(ema_);
  cbar->addStretch(1);
  ll->addLayout(cbar);
  curves_ = new QCustomPlot;
  curves_->setObjectName("compare_curves");
  curves_->xAxis->setLabel("step");
  curves_->yAxis->setLabel("loss (nats)");
  curves_->legend->setVisible(true);
  stylePlot(curves_);
  drawWideCurvesBySegments(curves_);
  installPlotTools(curves_);
  ll->addWidget(curves_, 1);
  bottom->addWidget(left);

  auto* tables = new QTabWidget;
  summary_model_ = new QStandardItemModel(this);
  summary_view_ = makeTable(summary_model_, "summaryTable");
  summary_view_->setSortingEnabled(true);
  a2a_watcher_ = new QFutureWatcher<A2aShare>(this);
  connect(a2a_watcher_, &QFutureWatcher<A2aShare>::resultReadyAt, this, [this](int index) {
    const A2aShare result = a2a_watcher_->resultAt(index);
    if (result.run >= 0) {
      a2a_share_cache_[result.run] = {result.last_step, result.share};
      showA2aShare(result.run, result.share);
      return;
    }
    for (int row = 0; row < summary_model_->rowCount(); ++row)
      if (QStandardItem* cell = summary_model_->item(row, 5); cell && cell->text() == "…") {
        cell->setText("–");
        cell->setToolTip(QString::fromStdString(result.error));
      }
  });
  curves_watcher_ = new QFutureWatcher<CurvesRead>(this);
  connect(curves_watcher_, &QFutureWatcher<CurvesRead>::finished, this, [this] {
    CurvesRead result = curves_watcher_->result();
    if (result.generation != curves_generation_) return;  // a newer selection's read is on its way
    raw_curves_ = std::move(result.curves);
    if (!result.error.empty())
      summary_model_->appendRow(new QStandardItem(QString("cannot read the run store: %1").arg(QString::fromStdString(result.error))));
    curves_drawn_generation_ = result.generation;
    drawCurves();
    Q_EMIT curvesDrawn();
  });
  wrapHeaders(summary_view_);
  diff_model_ = new QStandardItemModel(this);
  diff_view_ = makeTable(diff_model_, "diffTable");
  tables->addTab(summary_view_, "Summary");
  tables->addTab(diff_view_, "Config diff");
  bottom->addWidget(tables);
  bottom->setStretchFactor(0, 3);
  bottom->setStretchFactor(1, 2);
  split->addWidget(bottom);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);

  connect(poller_, &StorePoller::runsListed, this, &CompareWorkspace::handleRunsListed);
  connect(filter_, &QLineEdit::textChanged, proxy_, &QSortFilterProxyModel::setFilterFixedString);
  connect(runs_view_->selectionModel(), &QItemSelectionModel::selectionChanged, this,
          &CompareWorkspace::handleSelectionChanged);
  // A metric reads its series again; the smoothing only redraws what was read.
  connect(metric_, &QComboBox::currentTextChanged, this, &CompareWorkspace::loadCurves);
  connect(ema_, &QSlider::valueChanged, this, &CompareWorkspace::drawCurves);
  connect(runs_view_, &QTableView::doubleClicked, this, [this](const QModelIndex& i) {
    Q_EMIT openRunRequested(runs_model_->run(proxy_->mapToSource(i).row()).id);
  });
  connect(open, &QPushButton::clicked, this, [this] {
    if (!selected_.isEmpty()) Q_EMIT openRunRequested(selected_.first());
  });
  connect(tag, &QPushButton::clicked, this, [this] {
    bool ok = false;
    QString t = QInputDialog::getText(this, "Tag runs", "Tag for the selected runs:", QLineEdit::Normal, {}, &ok);
    if (ok && !t.trimmed().isEmpty()) addTag(t.trimmed());
  });
  connect(notes, &QPushButton::clicked, this, [this] {
    if (selected_.isEmpty()) return;
    int row = runs_model_->rowOfRun(selected_.first());
    QString current = row >= 0 ? QString::fromStdString(runs_model_->run(row).notes) : QString();
    bool ok = false;
    QString n = QInputDialog::getMultiLineText(this, "Notes", "Notes of the selected runs:", current, &ok);
    if (ok) setNotes(n);
  });
  connect(del, &QPushButton::clicked, this, [this] { deleteSelected(false); });
  connect(suggest, &QPushButton::clicked, this, [this] {
    if (selected_.size() == 1) suggestPlacement(selected_.first());
  });
}

void CompareWorkspace::showRunsMenu(const QPoint& pos) {
  const QModelIndex index = runs_view_->indexAt(pos);
  if (!index.isValid()) return;
  const qint64 id = runs_model_->run(proxy_->mapToSource(index).row()).id;
  if (selected_ != QList<qint64>{id}) selectRuns({id});  // the menu acts on the run under the cursor
  QMenu menu(this);
  menu.addAction("Open in Live", this, [this, id] { Q_EMIT openRunRequested(id); });
  menu.addAction("Suggest placement from this run…", this, [this, id] { suggestPlacement(id); });
  menu.exec(runs_view_->viewport()->mapToGlobal(pos));
}

PlacementSuggestDialog* CompareWorkspace::suggestPlacement(qint64 run) {
  auto* dialog = new PlacementSuggestDialog(poller_->storePath(), run, this);
  dialog->setAttribute(Qt::WA_DeleteOnClose);
  connect(dialog, &PlacementSuggestDialog::useInDesign, this, &CompareWorkspace::placementChosen);
  dialog->open();
  return dialog;
}

CompareWorkspace::~CompareWorkspace() = default;

store::RunReader* CompareWorkspace::reader() {
  if (!reader_ || reader_path_ != poller_->storePath()) {
    reader_.reset();
    a2a_share_cache_.clear();
    reader_path_ = poller_->storePath();
    reader_ = std::make_unique<store::RunReader>(reader_path_.toStdString());
  }
  return reader_.get();
}

// Every poll that sees any run move lists them all; while a run trains beside a comparison that is
// twice a second. Only a change to a selected run (or its removal) redraws, and only when shown.
void CompareWorkspace::handleRunsListed(const std::vector<store::RunInfo>& runs) {
  const bool changed = selectionChangedIn(runs);
  for (auto it = a2a_share_cache_.begin(); it != a2a_share_cache_.end();)  // a deleted run's id may return
    it = std::any_of(runs.begin(), runs.end(), [&](const store::RunInfo& r) { return r.id == it->first; })
             ? std::next(it)
             : a2a_share_cache_.erase(it);
  restoring_selection_ = true;
  if (runs_model_->setRuns(runs)) {  // rows replaced: select the same runs again
    QList<qint64> keep = selected_;
    selectRuns(keep);
    for (int c = 0; c < RunsModel::ColumnCount; ++c)
      if (c != RunsModel::Notes) runs_view_->resizeColumnToContents(c);
  }
  restoring_selection_ = false;
  if (!changed) return;
  if (isVisible())
    redraw();
  else
    stale_ = true;
}

bool CompareWorkspace::selectionChangedIn(const std::vector<store::RunInfo>& runs) const {
  for (qint64 id : selected_) {
    const int row = runs_model_->rowOfRun(id);
    const auto now = std::find_if(runs.begin(), runs.end(), [id](const store::RunInfo& r) { return r.id == id; });
    if (row < 0 || now == runs.end()) return true;
    const store::RunInfo& before = runs_model_->run(row);
    if (now->last_step != before.last_step || now->status != before.status || now->name != before.name ||
        now->n_steps != before.n_steps)
      return true;
  }
  return false;
}

void CompareWorkspace::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  if (!stale_) return;
  stale_ = false;
  redraw();
}

void CompareWorkspace::selectRuns(const QList<qint64>& ids) {
  QItemSelection sel;
  for (qint64 id : ids) {
    int row = runs_model_->rowOfRun(id);
    if (row < 0) continue;
    QModelIndex a = proxy_->mapFromSource(runs_model_->index(row, 0));
    QModelIndex b = proxy_->mapFromSource(runs_model_->index(row, RunsModel::ColumnCount - 1));
    if (a.isValid()) sel.select(a, b);
  }
  const bool restoring = restoring_selection_;
  restoring_selection_ = true;  // one redraw below, not another from the selection signal
  runs_view_->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect);
  restoring_selection_ = restoring;
  selected_.clear();
  for (qint64 id : ids)
    if (runs_model_->rowOfRun(id) >= 0) selected_ << id;
  suggest_->setEnabled(selected_.size() == 1);
  if (!restoring_selection_) redraw();
}

QList<qint64> CompareWorkspace::selectedRuns() const { return selected_; }

void CompareWorkspace::handleSelectionChanged() {
  if (restoring_selection_) return;
  selected_.clear();
  for (const QModelIndex& i : runs_view_->selectionModel()->selectedRows())
    selected_ << runs_model_->run(proxy_->mapToSource(i).row()).id;
  std::sort(selected_.begin(), selected_.end());
  suggest_->setEnabled(selected_.size() == 1);
  redraw();
}

void CompareWorkspace::redraw() {
  ++redraws_;
  stale_ = false;
  diff_model_->clear();
  summary_model_->clear();
  loadCurves();
  if (selected_.isEmpty()) return;
  try {
    store::RunReader* r = reader();
    std::vector<int64_t> ids(selected_.begin(), selected_.end());

    // Config diff: only the keys whose values differ between the selected runs.
    QStringList header{"key"};
    for (qint64 id : selected_) header << QString("#%1").arg(id);
    diff_model_->setHorizontalHeaderLabels(header);
    if (selected_.size() >= 2) {
      for (const auto& row : r->config_diff(ids)) {
        bool differs = false;
        for (const auto& v : row.values) differs |= v != row.values.front();
        if (!differs) continue;
        QList<QStandardItem*> items{new QStandardItem(QString::fromStdString(row.key))};
        for (const auto& v : row.values) items << new QStandardItem(QString::fromStdString(v));
        diff_model_->appendRow(items);
      }
    }

    // Summary per run.
    summary_model_->setHorizontalHeaderLabels(
        {"run", "final loss", "tokens/s", "drop rate", "max/mean load", "a2a share of step"});
    const char* tips[] = {"run id and name", "loss at the last step (nats)", "throughput at the last step",
                          "dropped / routed tokens over the whole run",
                          "max / mean expert load at the last step, mean over layers (1 = balanced)",
                          "all-to-all time (slowest rank) as a share of the mean step time"};
    for (int c = 0; c < 6; ++c) summary_model_->setHeaderData(c, Qt::Horizontal, tips[c], Qt::ToolTipRole);
    std::vector<std::pair<int64_t, int64_t>> unread_shares;  // (run, last step)
    for (qint64 id : selected_) {
      store::RunInfo info = r->run(id);
      auto cell = [](double v, int digits, const QString& suffix = {}) {
        auto* item = new QStandardItem(std::isfinite(v) ? QString::number(v, 'f', digits) + suffix : QString("–"));
        item->setData(std::isfinite(v) ? v : -1.0, Qt::UserRole);
        item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        return item;
      };
      auto* share = new QStandardItem("…");
      share->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      share->setToolTip("reading every step's all-to-all records");
      auto* name = new QStandardItem(QString("#%1 %2").arg(id).arg(QString::fromStdString(info.name)));
      name->setData(id, kRunIdRole);
      summary_model_->appendRow({name,
                                 cell(info.last_loss, 4), cell(info.last_tokens_per_s, 0),
                                 cell(info.routed_total > 0 ? info.drop_rate * 100 : NAN, 2, " %"),
                                 cell(info.last_imbalance, 3), share});
      const auto cached = a2a_share_cache_.find(id);
      if (cached != a2a_share_cache_.end() && cached->second.first == info.last_step)
        showA2aShare(id, cached->second.second);
      else
        unread_shares.emplace_back(id, info.last_step);
    }
    if (!unread_shares.empty()) fillA2aShares(unread_shares);
    fitColumns(summary_view_);
    diff_view_->resizeColumnsToContents();
  } catch (const std::exception& e) {
    summary_model_->appendRow(new QStandardItem(QString("cannot read the run store: %1").arg(e.what())));
  }
}

// The previous curves stay on screen until the new ones are read (no flash of an empty plot).
void CompareWorkspace::loadCurves() {
  const uint64_t generation = ++curves_generation_;
  if (selected_.isEmpty()) {
    raw_curves_.clear();
    curves_drawn_generation_ = generation;
    drawCurves();
    Q_EMIT curvesDrawn();
    return;
  }
  const std::vector<int64_t> ids(selected_.begin(), selected_.end());
  std::map<int64_t, QString> names;
  for (qint64 id : selected_) {
    const int row = runs_model_->rowOfRun(id);
    names[id] = QString("#%1 %2").arg(id).arg(row >= 0 ? QString::fromStdString(runs_model_->run(row).name) : QString());
  }
  const std::string path = poller_->storePath().toStdString();
  const std::string metric = metric_->currentText().toStdString();
  curves_watcher_->setFuture(QtConcurrent::run([generation, ids, names, path, metric] {
    CurvesRead out;
    out.generation = generation;
    try {
      const auto series = store::RunReader(path).aligned_series(ids, store::metric_from_name(metric), 0, -1, 600);
      for (size_t k = 0; k < series.runs.size(); ++k) {
        RawCurve c;
        c.name = names.at(series.runs[k]);
        for (size_t b = 0; b < series.bucket_first_step.size(); ++b) {
          const double v = series.last[k][b];
          if (!std::isfinite(v)) continue;
          c.x << series.bucket_first_step[b];
          c.y << v;
        }
        out.curves.push_back(std::move(c));
      }
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    return out;
  }));
}

void CompareWorkspace::drawCurves() {
  curves_->clearGraphs();
  const double alpha = ema_->value() / 100.0;
  for (size_t k = 0; k < raw_curves_.size(); ++k) {
    QCPGraph* g = curves_->addGraph();
    g->setName(raw_curves_[k].name);
    g->setPen(QPen(categoryColor(int(k), palette()), 2));
    g->setData(raw_curves_[k].x, emaSmooth(raw_curves_[k].y, alpha), true);
  }
  const QString metric = metric_->currentText();
  curves_->yAxis->setLabel(metric == "loss" || metric == "aux_loss" || metric == "z_loss" ? metric + " (nats)"
                           : metric == "step_ms" ? "step time (ms)" : metric == "tokens_per_s" ? "tokens / s" : "learning rate");
  curves_->rescaleAxes();
  curves_->replot();
}

// A long run's share reads hundreds of thousands of rows (0.6–0.9 s for one 100,000-step run of
// 8 ranks): a worker with its own connection computes them run by run, and each cell fills in as
// its run is done. A newer redraw cancels and replaces this worker; results are matched by run id,
// so they land on the right rows even after the user sorted them.
void CompareWorkspace::fillA2aShares(const std::vector<std::pair<int64_t, int64_t>>& runs) {
  const std::string path = poller_->storePath().toStdString();
  a2a_watcher_->cancel();  // the previous selection's worker stops after its current run
  a2a_watcher_->setFuture(QtConcurrent::run([path, runs](QPromise<A2aShare>& promise) {
    try {
      store::RunReader r(path);
      for (const auto& [run, last_step] : runs) {
        if (promise.isCanceled()) return;  // a newer selection replaced this one
        promise.addResult(A2aShare{run, last_step, store::a2a_share_of_step(r, run), {}});
      }
    } catch (const std::exception& e) {
      promise.addResult(A2aShare{-1, -1, 0, e.what()});
    }
  }));
}

void CompareWorkspace::showA2aShare(int64_t run, double share) {
  for (int row = 0; row < summary_model_->rowCount(); ++row) {
    QStandardItem* id_cell = summary_model_->item(row, 0);
    QStandardItem* cell = summary_model_->item(row, 5);
    if (!id_cell || !cell || id_cell->data(kRunIdRole).toLongLong() != run) continue;
    cell->setText(std::isfinite(share) ? QString::number(share * 100, 'f', 1) + " %" : QString("–"));
    cell->setData(std::isfinite(share) ? share * 100 : -1.0, Qt::UserRole);
    cell->setToolTip({});
  }
}

void CompareWorkspace::withStore(const std::function<void(RunStoreHandle&)>& edit) {
  try {
    RunStoreHandle handle(poller_->storePath().toStdString());
    edit(handle);
  } catch (const std::exception& e) {
    QMessageBox::warning(this, "Run store", e.what());
  }
  poller_->refreshRuns();
}

void CompareWorkspace::addTag(const QString& tag) {
  withStore([&](RunStoreHandle& h) {
    for (qint64 id : selected_) h.store.add_tag(id, tag.toStdString());
  });
}

void CompareWorkspace::setNotes(const QString& notes) {
  withStore([&](RunStoreHandle& h) {
    for (qint64 id : selected_) h.store.set_notes(id, notes.toStdString());
  });
}

void CompareWorkspace::deleteSelected(bool confirmed) {
  if (selected_.isEmpty()) return;
  if (!confirmed) {
    QStringList ids;
    for (qint64 id : selected_) ids << QString("#%1").arg(id);
    auto answer = QMessageBox::question(this, "Delete runs?",
                                        QString("Delete %1 and all their recorded data? This cannot be undone.").arg(ids.join(", ")),
                                        QMessageBox::Yes | QMessageBox::Cancel, QMessageBox::Cancel);
    if (answer != QMessageBox::Yes) return;
  }
  QList<qint64> doomed = selected_;
  selected_.clear();
  withStore([&](RunStoreHandle& h) {
    for (qint64 id : doomed) h.store.delete_run(id);
  });
  redraw();  // nothing selected now: the next run list sees no selected run change
}

void CompareWorkspace::exportCurrent() {
  bool ok = false;
  QString pick = QInputDialog::getItem(this, "Export", "What to export:",
                                       {"curves (PNG, PDF or CSV)", "runs table (CSV)", "summary table (CSV)", "config diff (CSV)"},
                                       0, false, &ok);
  if (!ok) return;
  if (pick.startsWith("curves")) exportPlotDialog(curves_, this);
  else if (pick.startsWith("runs")) exportTableDialog(proxy_, this, "runs.csv");
  else if (pick.startsWith("summary")) exportTableDialog(summary_model_, this, "summary.csv");
  else exportTableDialog(diff_model_, this, "config-diff.csv");
}

}  // namespace moe::gui
