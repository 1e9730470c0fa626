// StorePoller: a QThread with a timer-driven worker holding one read-only RunReader.
#include "live/store_poller.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QThread>
#include <QTimer>
#include <cmath>

#include "cost_model.h"
#include "job_spec.h"

namespace moe::gui {

namespace {
constexpr int64_t kRowsPerRead = 2048;     // expert-load rows per query (a finished run is read in chunks)
constexpr int64_t kLatestWindow = 20;      // steps averaged in the layers × experts view
constexpr int64_t kA2aWindow = 20;         // steps averaged in the per-rank bars
constexpr int64_t kA2aMapSteps = 600;      // steps of the rank × step map (LiveWorkspace keeps as many)
constexpr int64_t kDropsPerStepUpTo = 4096;  // a longer run's drop history opens as 1,000 buckets a layer

bool same_runs(const std::vector<store::RunInfo>& a, const std::vector<store::RunInfo>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].status != b[i].status || a[i].last_step != b[i].last_step ||
        a[i].notes != b[i].notes || a[i].tags != b[i].tags || a[i].name != b[i].name)
      return false;
  return true;
}
}  // namespace

PollWorker::~PollWorker() = default;

void PollWorker::setStorePath(const QString& path) {
  path_ = path;
  reader_.reset();
  runs_.clear();
  run_ = -1;
  if (!timer_) {
    timer_ = new QTimer(this);
    connect(timer_, &QTimer::timeout, this, &PollWorker::tick);
    timer_->start(interval_ms_);
  }
  tick();
}

void PollWorker::setIntervalMs(int ms) {
  interval_ms_ = ms;
  if (timer_) timer_->setInterval(ms);
}

void PollWorker::follow(qint64 run_id, qint64 layer) {
  bool reset = run_id != run_ || layer != layer_;
  run_ = run_id;
  layer_ = layer;
  newer_than_ = -2;
  if (reset) {
    first_step_ = -1;
    last_step_ = -1;
    last_a2a_step_ = -1;
    last_balance_step_.clear();
    heat_.reset();
    planned_steps_ = 0;
    last_status_.clear();
  }
  if (reader_ && run_ >= 0) {
    try {
      readLive(reset);
    } catch (const std::exception& e) {
      Q_EMIT storeError(e.what());
    }
  }
}

void PollWorker::followNewRunAfter(qint64 run_id) { newer_than_ = run_id; }

void PollWorker::refreshRuns() {
  runs_.clear();  // forces a runsListed on the next tick
  tick();
}

void PollWorker::tick() {
  if (path_.isEmpty()) return;
  try {
    if (!reader_) {
      if (!QFileInfo::exists(path_)) return;  // nothing recorded yet; `moe run` creates the file
      reader_ = std::make_unique<store::RunReader>(path_.toStdString());
    }
    auto runs = reader_->list_runs();
    if (!same_runs(runs, runs_)) {
      runs_ = runs;
      Q_EMIT runsListed(runs_);
    }
    if (newer_than_ > -2) {
      for (const auto& r : runs_)
        if (r.id > newer_than_) {
          follow(r.id, 0);
          return;
        }
    }
    if (run_ >= 0) readLive(false);
    last_error_.clear();
  } catch (const std::exception& e) {
    reader_.reset();  // reopen next time: the file may have been replaced or migrated
    QString message = QString::fromUtf8(e.what());
    if (message != last_error_) Q_EMIT storeError(message);
    last_error_ = message;
  }
}

void PollWorker::readLive(bool reset) {
  QElapsedTimer timer;
  timer.start();
  LiveUpdate u;
  u.run = reader_->run(run_);
  // Nothing new and the run is not moving: skip the whole views too.
  if (!reset && u.run.last_step == last_step_ && u.run.status == last_status_) return;
  last_status_ = u.run.status;
  if (planned_steps_ == 0) {
    const std::string spec_json = reader_->spec_json(run_);
    const RecordedSpec recorded = read_recorded_spec(spec_json);
    planned_steps_ = recorded.steps;
    planned_tp_ = recorded.tp;
    planned_pp_ = recorded.pp;
    planned_idle_share_ = planned_pp_ > 1 ? planned_idle_share(spec_json) : std::nullopt;
  }
  u.planned_steps = planned_steps_;
  u.reset = reset;
  u.layer = layer_;
  u.steps = reader_->steps_after(run_, last_step_);
  if (!u.steps.empty()) {
    if (first_step_ < 0) first_step_ = u.steps.front().step;
    last_step_ = u.steps.back().step;
    // Only tp runs carry it: the query stops at the latest step instead of scanning them all.
    if (planned_tp_ > 1) {
      u.tp_bytes = reader_->last_step_extension(run_, "tp_bytes");
      u.etp_bytes = reader_->last_step_extension(run_, "etp_bytes");
    }
    if (planned_pp_ > 1) u.pipeline = reader_->last_pipeline_step(run_);
    u.planned_idle_share = planned_idle_share_;
    if (u.run.world_size > 1) u.grad_bytes = reader_->last_gradient_bytes(run_);
  }
  const int64_t last = u.run.last_step;
  if (u.run.n_layers > 0 && last >= 0) {
    // Only the rows since the last tick: the fold keeps the heatmap of the whole run bounded.
    for (;;) {
      auto rows = reader_->expert_load_after(run_, layer_, heat_.last_step(), kRowsPerRead);
      for (const auto& r : rows) heat_.add(r.step, r.counts);
      if (int64_t(rows.size()) < kRowsPerRead) break;
    }
    u.heat_origin = heat_.origin();
    u.heat_width = heat_.width();
    u.heat_columns = heat_.columns();
    u.heat_experts = heat_.experts();
    u.heat_capacity = heat_.capacity();
    u.heat_from = reset ? 0 : heat_.take_first_changed();
    if (reset) heat_.take_first_changed();
    u.heat_values.reserve(size_t((u.heat_columns - u.heat_from) * u.heat_experts));
    for (int64_t c = u.heat_from; c < u.heat_columns; ++c)
      for (int64_t e = 0; e < u.heat_experts; ++e) u.heat_values.push_back(heat_.value(c, e));
    u.latest = reader_->layer_expert_matrix(run_, std::max<int64_t>(0, last - kLatestWindow + 1), last);
    readDrops(u);
  }
  if (last >= 0) {
    const char* phases[] = {"dispatch", "combine", "dispatch", "combine"};
    const char* passes[] = {"fwd", "fwd", "bwd", "bwd"};
    for (int i = 0; i < 4; ++i)
      u.a2a_stats[i] = reader_->a2a_rank_stats(run_, phases[i], passes[i], -1,
                                               std::max<int64_t>(0, last - kA2aWindow + 1), last);
    // Only the steps the map shows: a 100,000-step run's first read would be 400,000 rows.
    for (auto& t : reader_->a2a_step_totals_after(run_, std::max(last_a2a_step_, last - kA2aMapSteps)))
      u.a2a_total.push_back({t.step, std::move(t.rank_us)});
    // The newest step may still be half written (its later layers not in yet): keep it for next time.
    if (!u.a2a_total.empty() && !is_final(u.run.status)) u.a2a_total.pop_back();
    if (!u.a2a_total.empty()) last_a2a_step_ = u.a2a_total.back().first;
  }
  for (auto& row : store::recorded_placements(*reader_, run_))
    if (row.step > 0 && row.migrated_bytes > 0) u.replacements.push_back(std::move(row));
  u.read_ms = timer.nsecsElapsed() / 1e6;
  Q_EMIT liveUpdate(u);
}

// Drop rate per layer of the steps since the last tick. The first read (a run just opened) takes
// every layer's figures in one query; later ticks read each layer's new rows by the primary key
// (run, layer, step) — load_balance() for one layer was ~1–2 ms per layer per tick on a 64-layer
// run and growing with its length, most of the worker's time.
void PollWorker::readDrops(LiveUpdate& u) {
  const int64_t layers = u.run.n_layers;
  u.balance.assign(size_t(layers), {});
  if (last_balance_step_.empty() && u.run.last_step > kDropsPerStepUpTo) {
    // A long run opened: each layer's history as 1,000 buckets (their drop rates) from the rollups,
    // not one point per step and layer (6.4 million for 100,000 steps × 64 layers); new steps then
    // arrive one by one below.
    last_balance_step_.assign(size_t(layers), -1);
    for (int64_t l = 0; l < layers; ++l) {
      const store::Series s = reader_->drop_rate_series(run_, l, 0, u.run.last_step, 1000);
      for (size_t i = 0; i < s.step.size(); ++i) {
        store::LoadBalance b;
        b.layer = l;
        b.step = int64_t(s.step[i]);
        b.drop_rate = s.last[i];
        u.balance[size_t(l)].push_back(b);
      }
      last_balance_step_[size_t(l)] = u.run.last_step;
    }
  } else if (last_balance_step_.empty()) {
    last_balance_step_.assign(size_t(layers), -1);
    for (const auto& b : reader_->load_balance(run_, -1, 0, -1))
      if (b.layer >= 0 && b.layer < layers) u.balance[size_t(b.layer)].push_back(b);
  } else {
    last_balance_step_.resize(size_t(layers), -1);
    for (int64_t l = 0; l < layers; ++l)
      for (const auto& r : reader_->expert_load_after(run_, l, last_balance_step_[size_t(l)])) {
        int64_t routed = 0, dropped = 0;
        for (size_t e = 0; e < r.counts.size(); ++e) routed += r.counts[e], dropped += e < r.dropped.size() ? r.dropped[e] : 0;
        store::LoadBalance b;
        b.layer = l;
        b.step = r.step;
        b.drop_rate = routed > 0 ? double(dropped) / double(routed) : 0.0;  // as the ingestor's dropped_total / total
        u.balance[size_t(l)].push_back(b);
      }
  }
  for (int64_t l = 0; l < layers; ++l)
    if (!u.balance[size_t(l)].empty()) last_balance_step_[size_t(l)] = u.balance[size_t(l)].back().step;
}

bool PollWorker::is_final(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled" || status == "interrupted";
}

StorePoller::StorePoller(QObject* parent) : QObject(parent) {
  qRegisterMetaType<LiveUpdate>();
  qRegisterMetaType<std::vector<store::RunInfo>>();
  thread_ = new QThread(this);
  thread_->setObjectName("store-poller");
  worker_ = new PollWorker;
  worker_->moveToThread(thread_);
  connect(thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &PollWorker::runsListed, this, [this](const std::vector<store::RunInfo>& runs) {
    runs_ = runs;
    Q_EMIT runsListed(runs);
  });
  connect(worker_, &PollWorker::liveUpdate, this, &StorePoller::liveUpdate);
  connect(worker_, &PollWorker::storeError, this, &StorePoller::storeError);
  thread_->start();
}

StorePoller::~StorePoller() {
  thread_->quit();
  thread_->wait();
}

void StorePoller::setStorePath(const QString& path) {
  path_ = path;
  runs_.clear();
  QMetaObject::invokeMethod(worker_, [w = worker_, path] { w->setStorePath(path); }, Qt::QueuedConnection);
}

void StorePoller::follow(qint64 run_id, qint64 layer) {
  QMetaObject::invokeMethod(worker_, [w = worker_, run_id, layer] { w->follow(run_id, layer); }, Qt::QueuedConnection);
}

void StorePoller::followNewRunAfter(qint64 run_id) {
  QMetaObject::invokeMethod(worker_, [w = worker_, run_id] { w->followNewRunAfter(run_id); }, Qt::QueuedConnection);
}

void StorePoller::setIntervalMs(int ms) {
  QMetaObject::invokeMethod(worker_, [w = worker_, ms] { w->setIntervalMs(ms); }, Qt::QueuedConnection);
}

void StorePoller::refreshRuns() {
  QMetaObject::invokeMethod(worker_, [w = worker_] { w->refreshRuns(); }, Qt::QueuedConnection);
}

qint64 StorePoller::latestRunId() const {
  qint64 id = -1;
  for (const auto& r : runs_) id = std::max<qint64>(id, r.id);
  return id;
}

}  // namespace moe::gui
