// Queries of the run store (run_reader.h).
#include "run_reader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "blob_codec.h"
#include "record_codec.h"
#include "error.h"
#include "store_schema.h"

namespace moe::store {

namespace {

// The store names a record type's table after it (store_schema.cpp).
const std::string_view kExpertLoadTable = metrics::type_name<metrics::ExpertLoadRecord>();

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Maps steps of an inclusive window onto N buckets (run_reader.h): bucket b covers
// [first + b·w, first + (b+1)·w), w = span / N. When w ≥ kBlockSteps the inner bucket edges move to
// the nearest multiple of kBlockSteps, so every bucket but the window's ends is whole rollup blocks.
struct Buckets {
  int64_t first = 0, span = 0, n = 0;
  std::vector<int64_t> edge;  // n + 1 edges when snapped, else empty
  Buckets(int64_t first_step, int64_t last_step, int64_t buckets) : first(first_step) {
    span = std::max<int64_t>(0, last_step - first_step + 1);
    n = std::min<int64_t>(std::max<int64_t>(buckets, 1), span);
    if (n == 0 || span / n < kBlockSteps) return;
    edge.resize(static_cast<size_t>(n + 1));
    for (int64_t b = 0; b <= n; ++b) {
      int64_t e = first + static_cast<int64_t>(static_cast<__int128>(b) * span / n);
      if (b > 0 && b < n) e = floor_div(e + kBlockSteps / 2, kBlockSteps) * kBlockSteps;
      edge[static_cast<size_t>(b)] = e;
    }
  }
  static int64_t floor_div(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }
  int64_t of(int64_t step) const {
    if (!edge.empty()) return std::upper_bound(edge.begin(), edge.end(), step) - edge.begin() - 1;
    // 128-bit product: step spans and bucket counts can both be large.
    return static_cast<int64_t>(static_cast<__int128>(step - first) * n / span);
  }
  double first_step(int64_t b) const {
    if (!edge.empty()) return static_cast<double>(edge[static_cast<size_t>(b)]);
    return static_cast<double>(first + (static_cast<__int128>(b) * span + n - 1) / n);
  }
  int64_t widest() const {  // steps in the widest bucket
    if (edge.empty()) return n > 0 ? (span + n - 1) / n : 0;
    int64_t w = 0;
    for (size_t b = 0; b + 1 < edge.size(); ++b) w = std::max(w, edge[b + 1] - edge[b]);
    return w;
  }
};

std::vector<std::string> parse_string_array(const std::string& text) {
  std::vector<std::string> out;
  try {
    auto j = nlohmann::json::parse(text);
    for (auto& v : j) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  } catch (const nlohmann::json::exception&) {
  }
  return out;
}

const char* kRunColumns =
    "SELECT r.id, r.name, r.status, r.created_at, coalesce(r.started_at, ''), coalesce(r.ended_at, ''),"
    " coalesce(r.backend, ''), r.notes, coalesce(r.end_reason, ''), coalesce(r.world_size, 0), r.hosts,"
    " coalesce(s.n_steps, 0), coalesce(s.last_step, -1), s.last_loss, s.last_tokens_per_s,"
    " coalesce(s.total_tokens, 0), coalesce(s.n_layers, 0), coalesce(s.n_experts, 0),"
    " coalesce(s.routed_total, 0), coalesce(s.dropped_total, 0), s.last_imbalance,"
    " coalesce(s.malformed_lines, 0),"
    " (SELECT json_group_array(tag) FROM (SELECT tag FROM run_tags t WHERE t.run_id = r.id ORDER BY tag))"
    " FROM runs r LEFT JOIN run_summary s ON s.run_id = r.id";

// The step window covered by rollup blocks (level ≥ 0) and raw step ranges (level −1), sorted.
struct Piece {
  int level;
  int64_t first, last;  // steps
  int64_t tag;          // a chosen block's order of choice (the caller's payload index); −1 raw
};

// Reads the stored blocks of one level with block index in [lo, hi], ascending, calling take(block)
// for each; take says whether the block was chosen (the reader then uses the row's payload).
using LevelReader = std::function<void(int level, int64_t lo, int64_t hi, const std::function<bool(int64_t)>& take)>;

// Covers the window with rollup blocks, coarsest level first: a block is chosen when it lies wholly
// inside the window and one bucket and inside no block already chosen; raw ranges fill the rest.
// A level whose blocks are wider than every bucket is not read at all.
std::vector<Piece> cover(const Buckets& grid, const LevelReader& read) {
  std::vector<Piece> out;
  if (grid.n == 0) return out;
  const int64_t last = grid.first + grid.span - 1, widest = grid.widest();
  std::vector<std::pair<int64_t, int64_t>> chosen;  // step ranges of coarser levels, sorted
  int64_t tag = 0;
  for (int level = kRollupLevels - 1; level >= 0; --level) {
    const int64_t size = rollup_steps(level);
    if (size > widest) continue;
    const int64_t lo = Buckets::floor_div(grid.first + size - 1, size), hi = Buckets::floor_div(last + 1, size) - 1;
    if (lo > hi) continue;
    std::vector<std::pair<int64_t, int64_t>> now;
    read(level, lo, hi, [&](int64_t block) {
      const int64_t s0 = block * size, s1 = s0 + size - 1;
      if (s0 < grid.first || s1 > last || grid.of(s0) != grid.of(s1)) return false;
      // Blocks nest: s0 lies in a chosen coarser block iff that block holds all of this one.
      auto it = std::upper_bound(chosen.begin(), chosen.end(), std::make_pair(s0, std::numeric_limits<int64_t>::max()));
      if (it != chosen.begin() && std::prev(it)->second >= s0) return false;
      out.push_back({level, s0, s1, tag++});
      now.emplace_back(s0, s1);
      return true;
    });
    chosen.insert(chosen.end(), now.begin(), now.end());
    std::sort(chosen.begin(), chosen.end());
  }
  std::sort(out.begin(), out.end(), [](const Piece& a, const Piece& b) { return a.first < b.first; });
  std::vector<Piece> all;
  int64_t cur = grid.first;
  for (const Piece& p : out) {
    if (p.first > cur) all.push_back({-1, cur, p.first - 1, -1});
    all.push_back(p);
    cur = p.last + 1;
  }
  if (cur <= last) all.push_back({-1, cur, last, -1});
  return all;
}

RunInfo read_run(const Stmt& st) {
  RunInfo r;
  r.id = st.col_int(0);
  r.name = st.col_text(1);
  r.status = st.col_text(2);
  r.created_at = st.col_text(3);
  r.started_at = st.col_text(4);
  r.ended_at = st.col_text(5);
  r.backend = st.col_text(6);
  r.notes = st.col_text(7);
  r.end_reason = st.col_text(8);
  r.world_size = st.col_int(9);
  r.hosts_json = st.col_text(10);
  r.n_steps = st.col_int(11);
  r.last_step = st.col_int(12);
  r.last_loss = st.col_double(13);
  r.last_tokens_per_s = st.col_double(14);
  // A run whose steps carry no throughput (an imported TensorBoard file without token counts)
  // records 0: unknown, not zero.
  if (!(r.last_tokens_per_s > 0)) r.last_tokens_per_s = std::numeric_limits<double>::quiet_NaN();
  r.total_tokens = st.col_int(15);
  r.n_layers = st.col_int(16);
  r.n_experts = st.col_int(17);
  r.routed_total = st.col_int(18);
  r.dropped_total = st.col_int(19);
  r.drop_rate = r.routed_total > 0 ? static_cast<double>(r.dropped_total) / r.routed_total : 0.0;
  r.last_imbalance = st.col_double(20);
  r.malformed_lines = st.col_int(21);
  r.tags = parse_string_array(st.col_text(22));
  return r;
}

void flatten(const nlohmann::json& j, const std::string& path,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it) flatten(it.value(), path.empty() ? it.key() : path + "." + it.key(), out);
  } else if (j.is_array() && !j.empty()) {
    for (size_t i = 0; i < j.size(); ++i) flatten(j[i], path + "[" + std::to_string(i) + "]", out);
  } else {
    out.emplace_back(path, j.dump());
  }
}

}  // namespace

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::loss: return "loss";
    case Metric::aux_loss: return "aux_loss";
    case Metric::z_loss: return "z_loss";
    case Metric::lr: return "lr";
    case Metric::tokens: return "tokens";
    case Metric::step_ms: return "step_ms";
    case Metric::tokens_per_s: return "tokens_per_s";
  }
  return "loss";
}

Metric metric_from_name(const std::string& name) {
  for (Metric m : {Metric::loss, Metric::aux_loss, Metric::z_loss, Metric::lr, Metric::tokens,
                   Metric::step_ms, Metric::tokens_per_s}) {
    if (name == metric_name(m)) return m;
  }
  throw Error("metric: unknown '" + name + "' (one of loss, aux_loss, z_loss, lr, tokens, step_ms, tokens_per_s)");
}

std::vector<std::pair<std::string, std::string>> flatten_json(const std::string& json_text) {
  std::vector<std::pair<std::string, std::string>> out;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception&) {
    throw Error("spec: stored spec is not valid JSON");
  }
  flatten(j, "", out);
  std::sort(out.begin(), out.end());
  return out;
}

RunReader::RunReader(const std::string& path) : db_(path, Db::Mode::read_only) { check_schema_readable(db_); }

std::vector<RunInfo> RunReader::list_runs() {
  ReadTxn txn(db_);
  std::string sql = std::string(kRunColumns) + " ORDER BY r.id DESC";
  Stmt st(db_, sql.c_str());
  std::vector<RunInfo> out;
  while (st.step()) out.push_back(read_run(st));
  return out;
}

RunInfo RunReader::run(int64_t id) {
  ReadTxn txn(db_);
  std::string sql = std::string(kRunColumns) + " WHERE r.id = ?1";
  Stmt st(db_, sql.c_str());
  st.bind(1, id);
  if (!st.step()) throw Error(db_.path() + ": no run with id " + std::to_string(id));
  return read_run(st);
}

int64_t RunReader::find_run(const std::string& id_or_name) {
  if (!id_or_name.empty() && id_or_name.find_first_not_of("0123456789") == std::string::npos &&
      id_or_name.size() < 18) {
    int64_t id = std::stoll(id_or_name);
    Stmt st(db_, "SELECT id FROM runs WHERE id = ?1");
    st.bind(1, id);
    if (st.step()) return id;
  }
  Stmt st(db_, "SELECT id FROM runs WHERE name = ?1 ORDER BY id DESC LIMIT 1");
  st.bind(1, id_or_name);
  if (st.step()) return st.col_int(0);
  throw Error(db_.path() + ": no run '" + id_or_name + "' (give its id or name; see moe runs list)");
}

std::string RunReader::spec_json(int64_t run) {
  Stmt st(db_, "SELECT spec FROM runs WHERE id = ?1");
  st.bind(1, run);
  if (!st.step()) throw Error(db_.path() + ": no run with id " + std::to_string(run));
  return st.col_text(0);
}

std::optional<int64_t> RunReader::last_step_extension(int64_t run, const std::string& key) {
  // Extensions nobody typed travel in `extra` (a JSON object); the LIKE only narrows the scan.
  Stmt st(db_, "SELECT extra FROM steps WHERE run_id = ?1 AND extra LIKE ?2 ORDER BY step DESC LIMIT 1");
  st.bind(1, run).bind(2, "%\"" + key + "\"%");
  if (!st.step()) return std::nullopt;
  const nlohmann::json extra = nlohmann::json::parse(st.col_text(0), nullptr, false);
  if (!extra.is_object() || !extra.contains(key) || !extra[key].is_number_integer()) return std::nullopt;
  return extra[key].get<int64_t>();
}

std::vector<std::pair<std::string, int64_t>> RunReader::last_gradient_bytes(int64_t run) {
  // The latest step only: a run that records it does so every step, and an older run has none,
  // which a filtered scan would find out by reading every step.
  Stmt st(db_, "SELECT extra FROM steps WHERE run_id = ?1 ORDER BY step DESC LIMIT 1");
  st.bind(1, run);
  std::vector<std::pair<std::string, int64_t>> out;
  if (!st.step() || st.is_null(0)) return out;
  const nlohmann::json extra = nlohmann::json::parse(st.col_text(0), nullptr, false);
  if (!extra.is_object() || !extra.contains("grad_bytes") || !extra["grad_bytes"].is_object()) return out;
  for (const auto& [group, bytes] : extra["grad_bytes"].items())
    if (bytes.is_number_integer()) out.emplace_back(group, bytes.get<int64_t>());
  return out;
}

std::optional<PipelineFigures> RunReader::last_pipeline_step(int64_t run) {
  Stmt st(db_, "SELECT step, extra FROM steps WHERE run_id = ?1 AND extra LIKE '%\"pp_busy_ms\"%' ORDER BY step DESC LIMIT 1");
  st.bind(1, run);
  if (!st.step()) return std::nullopt;
  return pipeline_figures(st.col_int(0), nlohmann::json::parse(st.col_text(1), nullptr, false));
}

std::vector<StepRow> RunReader::steps_after(int64_t run, int64_t after_step, int64_t limit) {
  Stmt st(db_, "SELECT step, loss, aux_loss, z_loss, lr, tokens, step_ms, tokens_per_s FROM steps"
               " WHERE run_id = ?1 AND step > ?2 ORDER BY step LIMIT ?3");
  st.bind(1, run).bind(2, after_step).bind(3, limit);
  std::vector<StepRow> out;
  while (st.step()) {
    out.push_back(StepRow{st.col_int(0), st.col_double(1), st.col_double(2), st.col_double(3),
                          st.col_double(4), st.col_int(5), st.col_double(6), st.col_double(7)});
  }
  return out;
}

std::vector<ExpertLoadRow> RunReader::expert_load_after(int64_t run, int64_t layer, int64_t after_step,
                                                        int64_t limit) {
  Stmt st(db_, "SELECT step, layer, counts, dropped FROM expert_load"
               " WHERE run_id = ?1 AND layer = ?2 AND step > ?3 ORDER BY step LIMIT ?4");
  st.bind(1, run).bind(2, layer).bind(3, after_step).bind(4, limit);
  std::vector<ExpertLoadRow> out;
  while (st.step()) {
    out.push_back(ExpertLoadRow{st.col_int(0), st.col_int(1), decode_ints(st.col_blob(2), "expert_load.counts"),
                                decode_ints(st.col_blob(3), "expert_load.dropped")});
  }
  return out;
}

std::vector<A2aRow> RunReader::a2a_after(int64_t run, int64_t after_step, int64_t limit) {
  Stmt st(db_, "SELECT step, layer, phase, pass, rank_us, rank_bytes FROM a2a"
               " WHERE run_id = ?1 AND step > ?2 ORDER BY step, layer, phase DESC, pass DESC LIMIT ?3");
  st.bind(1, run).bind(2, after_step).bind(3, limit);
  std::vector<A2aRow> out;
  while (st.step()) {
    out.push_back(A2aRow{st.col_int(0), st.col_int(1), st.col_text(2), st.col_text(3),
                         decode_doubles(st.col_blob(4), "a2a.rank_us"), decode_ints(st.col_blob(5), "a2a.rank_bytes")});
  }
  return out;
}

std::vector<A2aStepTotal> RunReader::a2a_step_totals_after(int64_t run, int64_t after_step, int64_t limit) {
  Stmt st(db_, "SELECT step, sum_ns FROM a2a_steps WHERE run_id = ?1 AND step > ?2 ORDER BY step");
  st.bind(1, run).bind(2, after_step);
  std::vector<A2aStepTotal> out;
  std::vector<int64_t> acc;
  while (st.step()) {
    const int64_t step = st.col_int(0);
    if (out.empty() || out.back().step != step) {
      if (static_cast<int64_t>(out.size()) == limit) break;
      out.push_back({step, {}});
    }
    const auto ns = decode_ints(st.col_blob(1), "a2a_steps.sum_ns");
    auto& us = out.back().rank_us;
    if (us.size() < ns.size()) us.resize(ns.size(), 0.0);
    for (size_t p = 0; p < ns.size(); ++p) us[p] += static_cast<double>(ns[p]) * 1e-3;
  }
  return out;
}

std::vector<EventRow> RunReader::events(int64_t run, int64_t after_id, int64_t limit) {
  Stmt st(db_, "SELECT id, at, kind, coalesce(line, 0), message FROM events WHERE run_id = ?1 AND id > ?2"
               " ORDER BY id LIMIT ?3");
  st.bind(1, run).bind(2, after_id).bind(3, limit);
  std::vector<EventRow> out;
  while (st.step()) out.push_back(EventRow{st.col_int(0), st.col_text(1), st.col_text(2), st.col_text(4), st.col_int(3)});
  return out;
}

int64_t RunReader::resolve_last(int64_t run, int64_t last, std::string_view table, int64_t layer) {
  if (last >= 0) return last;
  // With the layer, one seek to the end of its key range; without it, expert_load's max(step) is a
  // scan of every row of the run (17 ms for 100,000 steps: most of a heatmap query's time).
  std::string sql = "SELECT coalesce(max(step), -1) FROM " + std::string(table) + " WHERE run_id = ?1" +
                    (layer >= 0 ? " AND layer = ?2" : "");
  Stmt st(db_, sql.c_str());
  st.bind(1, run);
  if (layer >= 0) st.bind(2, layer);
  return st.step() ? st.col_int(0) : -1;
}

void RunReader::fold_steps(int64_t run, Metric metric, const void* grid_ptr, const StepFold& fold) {
  const Buckets& grid = *static_cast<const Buckets*>(grid_ptr);
  if (grid.n == 0) return;
  const int m = static_cast<int>(metric);
  Stmt l0(db_, "SELECT block, last_step, stats FROM step_blocks WHERE run_id = ?1 AND block BETWEEN ?2 AND ?3"
               " ORDER BY block");
  Stmt ln(db_, "SELECT block, last_step, stats FROM step_levels WHERE run_id = ?1 AND level = ?4"
               " AND block BETWEEN ?2 AND ?3 ORDER BY block");
  struct Stats {
    double min, max, last;
    int64_t last_step;
  };
  std::vector<Stats> chosen;  // by tag
  const std::vector<Piece> pieces = cover(grid, [&](int level, int64_t lo, int64_t hi, const auto& take) {
    Stmt& st = level == 0 ? l0 : ln;
    st.reset();
    st.bind(1, run).bind(2, lo).bind(3, hi);
    if (level > 0) st.bind(4, int64_t{level});
    while (st.step()) {
      if (!take(st.col_int(0))) continue;
      auto bytes = st.col_blob(2);
      if (bytes.size() != 21 * sizeof(double)) throw Error(db_.path() + ": step rollups: corrupt stats");
      double v[3];
      std::memcpy(v, bytes.data() + 3 * m * sizeof(double), sizeof v);
      chosen.push_back({v[0], v[1], v[2], st.col_int(1)});
    }
  });
  std::string sql = std::string("SELECT step, ") + metric_name(metric) +
                    " FROM steps WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3 ORDER BY step";
  Stmt raw(db_, sql.c_str());
  for (const Piece& p : pieces) {
    if (p.level >= 0) {
      const Stats& c = chosen[static_cast<size_t>(p.tag)];
      fold(grid.of(p.first), c.min, c.max, c.last, c.last_step);
      continue;
    }
    raw.reset();
    raw.bind(1, run).bind(2, p.first).bind(3, p.last);
    while (raw.step()) {
      if (raw.is_null(1)) continue;
      int64_t step = raw.col_int(0);
      double v = raw.col_double(1);
      fold(grid.of(step), v, v, v, step);
    }
  }
}

namespace {
// Adds a step's min/max/last to bucket b of the series: opens the bucket when b is new (cur holds
// the open one), else widens it; the series' x is the bucket's last step with data.
void add_to_bucket(Series& s, int64_t& cur, int64_t b, int64_t step, double mn, double mx, double last) {
  if (b != cur) {
    cur = b;
    s.step.push_back(static_cast<double>(step));
    s.min.push_back(mn);
    s.max.push_back(mx);
    s.last.push_back(last);
    return;
  }
  s.step.back() = static_cast<double>(step);
  s.min.back() = std::min(s.min.back(), mn);
  s.max.back() = std::max(s.max.back(), mx);
  s.last.back() = last;
}
}  // namespace

Series RunReader::series(int64_t run, Metric metric, int64_t first, int64_t last, int64_t buckets) {
  ReadTxn txn(db_);
  Buckets grid(first, resolve_last(run, last, "steps"), buckets);
  Series s;
  int64_t cur = -1;
  fold_steps(run, metric, &grid, [&](int64_t b, double mn, double mx, double ls, int64_t step) {
    add_to_bucket(s, cur, b, step, mn, mx, ls);
  });
  return s;
}

AlignedSeries RunReader::aligned_series(const std::vector<int64_t>& runs, Metric metric, int64_t first,
                                        int64_t last, int64_t buckets) {
  ReadTxn txn(db_);
  AlignedSeries out;
  out.runs = runs;
  if (last < 0) {
    for (int64_t r : runs) last = std::max(last, resolve_last(r, -1, "steps"));
  }
  Buckets grid(first, last, buckets);
  for (int64_t b = 0; b < grid.n; ++b) out.bucket_first_step.push_back(grid.first_step(b));
  for (int64_t r : runs) {
    std::vector<double> mn(grid.n, kNaN), mx(grid.n, kNaN), ls(grid.n, kNaN);
    fold_steps(r, metric, &grid, [&](int64_t b, double lo, double hi, double v, int64_t) {
      if (std::isnan(mn[b])) {
        mn[b] = lo;
        mx[b] = hi;
      } else {
        mn[b] = std::min(mn[b], lo);
        mx[b] = std::max(mx[b], hi);
      }
      ls[b] = v;  // segments come in ascending steps: the last write is the bucket's last value
    });
    out.min.push_back(std::move(mn));
    out.max.push_back(std::move(mx));
    out.last.push_back(std::move(ls));
  }
  return out;
}

Heatmap RunReader::expert_heatmap(int64_t run, int64_t layer, int64_t first, int64_t last, int64_t buckets,
                                  bool dropped) {
  ReadTxn txn(db_);
  Heatmap h;
  last = resolve_last(run, last, kExpertLoadTable, layer);
  Buckets grid(first, last, buckets);
  h.n_buckets = grid.n;
  if (grid.n == 0) return h;
  // max(n_experts) over a layer is a scan; the summary's n_experts bounds every row instead.
  Stmt sm(db_, "SELECT n_experts FROM run_summary WHERE run_id = ?1");
  sm.bind(1, run);
  int64_t E = sm.step() ? sm.col_int(0) : 0;
  h.n_experts = E;
  std::vector<int64_t> acc(static_cast<size_t>(grid.n * E), 0);  // [bucket][expert]
  h.steps_in_bucket.assign(grid.n, 0);
  const char* column = dropped ? "dropped" : "counts";
  // Rollup blocks (sums of whole blocks) first, then raw rows for the rest.
  std::string l0sql = std::string("SELECT block, n, ") + column +
                      " FROM expert_load_blocks WHERE run_id = ?1 AND layer = ?2 AND block BETWEEN ?3 AND ?4 ORDER BY block";
  std::string lnsql = std::string("SELECT block, n, ") + column +
                      " FROM expert_load_levels WHERE run_id = ?1 AND layer = ?2 AND level = ?5"
                      " AND block BETWEEN ?3 AND ?4 ORDER BY block";
  Stmt l0(db_, l0sql.c_str()), ln(db_, lnsql.c_str());
  const std::vector<Piece> pieces = cover(grid, [&](int level, int64_t lo, int64_t hi, const auto& take) {
    Stmt& st = level == 0 ? l0 : ln;
    st.reset();
    st.bind(1, run).bind(2, layer).bind(3, lo).bind(4, hi);
    if (level > 0) st.bind(5, int64_t{level});
    while (st.step()) {
      const int64_t block = st.col_int(0);
      if (!take(block)) continue;
      const int64_t b = grid.of(block * rollup_steps(level));
      accumulate_ints(st.col_blob(2), std::span<int64_t>(acc.data() + b * E, E), "expert load rollups");
      h.steps_in_bucket[b] += st.col_int(1);
    }
  });
  std::string sql = std::string("SELECT step, ") + column +
                    " FROM expert_load WHERE run_id = ?1 AND layer = ?2 AND step BETWEEN ?3 AND ?4";
  Stmt st(db_, sql.c_str());
  for (const Piece& p : pieces) {
    if (p.level >= 0) continue;
    st.reset();
    st.bind(1, run).bind(2, layer).bind(3, p.first).bind(4, p.last);
    while (st.step()) {
      int64_t b = grid.of(st.col_int(0));
      accumulate_ints(st.col_blob(1), std::span<int64_t>(acc.data() + b * E, E), "expert counts");
      ++h.steps_in_bucket[b];
    }
  }
  h.values.assign(static_cast<size_t>(E * grid.n), 0.0);
  for (int64_t b = 0; b < grid.n; ++b) {
    h.bucket_first_step.push_back(grid.first_step(b));
    double k = h.steps_in_bucket[b] > 0 ? 1.0 / h.steps_in_bucket[b] : 0.0;
    for (int64_t e = 0; e < E; ++e) h.values[e * grid.n + b] = acc[b * E + e] * k;
  }
  return h;
}

LayerExpertMatrix RunReader::layer_expert_matrix(int64_t run, int64_t first, int64_t last) {
  ReadTxn txn(db_);
  LayerExpertMatrix m;
  last = resolve_last(run, last, kExpertLoadTable);
  m.first_step = first;
  m.last_step = last;
  Stmt sm(db_, "SELECT n_experts FROM run_summary WHERE run_id = ?1");
  sm.bind(1, run);
  int64_t E = 0;
  if (sm.step()) E = sm.col_int(0);
  m.n_experts = E;
  Stmt st(db_, "SELECT counts FROM expert_load WHERE run_id = ?1 AND layer = ?2 AND step BETWEEN ?3 AND ?4");
  // The layers that have rows, one index seek each: counting up to n_layers hung on a stream with
  // one record of layer 11099511627776 (ingest_fuzzer, docs/fuzzing.md).
  Stmt next_layer(db_, "SELECT min(layer) FROM expert_load WHERE run_id = ?1 AND layer > ?2");
  std::vector<int64_t> acc(E);
  for (int64_t layer = -1;;) {
    next_layer.reset();
    next_layer.bind(1, run).bind(2, layer);
    if (!next_layer.step() || next_layer.is_null(0)) break;
    layer = next_layer.col_int(0);
    std::fill(acc.begin(), acc.end(), 0);
    int64_t n = 0;
    st.reset();
    st.bind(1, run).bind(2, layer).bind(3, first).bind(4, last);
    while (st.step()) {
      accumulate_ints(st.col_blob(0), acc, "expert counts");
      ++n;
    }
    if (n == 0) continue;
    m.layers.push_back(layer);
    for (int64_t e = 0; e < E; ++e) m.values.push_back(static_cast<double>(acc[e]) / n);
  }
  m.n_layers = static_cast<int64_t>(m.layers.size());
  return m;
}

A2aRankStats RunReader::a2a_rank_stats(int64_t run, const std::string& phase, const std::string& pass,
                                       int64_t layer, int64_t first, int64_t last) {
  A2aRankStats s;
  if (last < 0) last = std::numeric_limits<int64_t>::max();
  std::vector<double> sum_us, sum_bytes;
  auto widen = [&](size_t P) {
    if (sum_us.size() >= P) return;
    sum_us.resize(P, 0.0);
    s.min_us.resize(P, std::numeric_limits<double>::infinity());
    s.max_us.resize(P, -std::numeric_limits<double>::infinity());
    sum_bytes.resize(P, 0.0);
  };
  if (layer < 0) {
    Stmt st(db_, "SELECT records, sum_ns, min_ns, max_ns, sum_bytes FROM a2a_steps WHERE run_id = ?1"
                 " AND step BETWEEN ?2 AND ?3 AND phase = ?4 AND pass = ?5");
    st.bind(1, run).bind(2, first).bind(3, last).bind(4, phase).bind(5, pass);
    while (st.step()) {
      const auto sum = decode_ints(st.col_blob(1), "a2a_steps.sum_ns");
      const auto mn = decode_ints(st.col_blob(2), "a2a_steps.min_ns");
      const auto mx = decode_ints(st.col_blob(3), "a2a_steps.max_ns");
      const auto bytes = decode_ints(st.col_blob(4), "a2a_steps.sum_bytes");
      widen(sum.size());
      for (size_t p = 0; p < sum.size(); ++p) {
        sum_us[p] += static_cast<double>(sum[p]) * 1e-3;
        if (p < mn.size() && mn[p] > 0) s.min_us[p] = std::min(s.min_us[p], static_cast<double>(mn[p]) * 1e-3);
        if (p < mx.size()) s.max_us[p] = std::max(s.max_us[p], static_cast<double>(mx[p]) * 1e-3);
        if (p < bytes.size()) sum_bytes[p] += static_cast<double>(bytes[p]);
      }
      s.samples += st.col_int(0);
    }
  } else {
    Stmt st(db_, "SELECT rank_us, rank_bytes FROM a2a WHERE run_id = ?1 AND step BETWEEN ?2 AND ?3"
                 " AND phase = ?4 AND pass = ?5 AND layer = ?6");
    st.bind(1, run).bind(2, first).bind(3, last).bind(4, phase).bind(5, pass).bind(6, layer);
    while (st.step()) {
      std::vector<double> us = decode_doubles(st.col_blob(0), "a2a.rank_us");
      std::vector<int64_t> bytes = decode_ints(st.col_blob(1), "a2a.rank_bytes");
      widen(us.size());
      for (size_t p = 0; p < us.size(); ++p) {
        sum_us[p] += us[p];
        s.min_us[p] = std::min(s.min_us[p], us[p]);
        s.max_us[p] = std::max(s.max_us[p], us[p]);
        if (p < bytes.size()) sum_bytes[p] += static_cast<double>(bytes[p]);
      }
      ++s.samples;
    }
  }
  for (size_t p = 0; p < sum_us.size(); ++p) {
    if (std::isinf(s.min_us[p])) s.min_us[p] = 0.0;  // the rank took part in none of the steps
    s.mean_us.push_back(sum_us[p] / static_cast<double>(s.samples));
    s.mean_bytes.push_back(sum_bytes[p] / static_cast<double>(s.samples));
  }
  return s;
}

std::vector<LoadBalance> RunReader::load_balance(int64_t run, int64_t layer, int64_t first, int64_t last) {
  if (last < 0) last = std::numeric_limits<int64_t>::max();
  // Two statements, not "(?2 < 0 OR layer = ?2)": with the OR SQLite cannot use the (run_id, layer,
  // step) key for one layer and scans every load row of the run.
  const char* sql = layer >= 0
      ? "SELECT layer, step, n_experts, total, max_count, dropped_total, cv FROM expert_load"
        " WHERE run_id = ?1 AND layer = ?2 AND step BETWEEN ?3 AND ?4 ORDER BY step"
      : "SELECT layer, step, n_experts, total, max_count, dropped_total, cv FROM expert_load"
        " WHERE run_id = ?1 AND ?2 < 0 AND step BETWEEN ?3 AND ?4 ORDER BY step, layer";
  Stmt st(db_, sql);
  st.bind(1, run).bind(2, layer).bind(3, first).bind(4, last);
  std::vector<LoadBalance> out;
  while (st.step()) {
    LoadBalance b;
    b.layer = st.col_int(0);
    b.step = st.col_int(1);
    double E = static_cast<double>(st.col_int(2)), total = static_cast<double>(st.col_int(3));
    b.max_over_mean = total > 0 ? st.col_int(4) / (total / E) : 0.0;
    b.drop_rate = total > 0 ? st.col_int(5) / total : 0.0;
    b.cv = st.col_double(6);
    out.push_back(b);
  }
  return out;
}

Series RunReader::load_balance_series(int64_t run, int64_t layer, int64_t first, int64_t last, int64_t buckets) {
  ReadTxn txn(db_);
  last = resolve_last(run, last, kExpertLoadTable, layer);
  Buckets grid(first, last, buckets);
  Series s;
  if (grid.n == 0) return s;
  Stmt st(db_, "SELECT step, CASE WHEN total > 0 THEN CAST(max_count AS REAL) * n_experts / total END"
               " FROM expert_load WHERE run_id = ?1 AND layer = ?2 AND step BETWEEN ?3 AND ?4 ORDER BY step");
  st.bind(1, run).bind(2, layer).bind(3, grid.first).bind(4, grid.first + grid.span - 1);
  int64_t cur = -1;
  while (st.step()) {
    if (st.is_null(1)) continue;
    int64_t step = st.col_int(0), b = grid.of(step);
    const double v = st.col_double(1);
    add_to_bucket(s, cur, b, step, v, v, v);
  }
  return s;
}

Series RunReader::drop_rate_series(int64_t run, int64_t layer, int64_t first, int64_t last, int64_t buckets) {
  ReadTxn txn(db_);
  last = resolve_last(run, last, kExpertLoadTable, layer);
  const Heatmap counts = expert_heatmap(run, layer, first, last, buckets);
  const Heatmap dropped = expert_heatmap(run, layer, first, last, buckets, /*dropped=*/true);
  Series s;
  const int64_t N = counts.n_buckets, E = counts.n_experts;
  for (int64_t b = 0; b < N; ++b) {
    if (counts.steps_in_bucket[b] == 0) continue;
    double routed = 0, drop = 0;  // means per step of the bucket: the step count cancels
    for (int64_t e = 0; e < E; ++e) routed += counts.values[e * N + b], drop += dropped.values[e * N + b];
    const double rate = routed > 0 ? drop / routed : 0.0;
    s.step.push_back(b + 1 < N ? counts.bucket_first_step[b + 1] - 1 : static_cast<double>(last));  // its last step
    s.min.push_back(rate);
    s.max.push_back(rate);
    s.last.push_back(rate);
  }
  return s;
}

std::vector<LayerBalance> RunReader::layer_balance(int64_t run) {
  ReadTxn txn(db_);
  Stmt st(db_, "SELECT layer, count(*),"
               " avg(CASE WHEN total > 0 THEN CAST(max_count AS REAL) * n_experts / total END),"
               " CASE WHEN sum(total) > 0 THEN CAST(sum(dropped_total) AS REAL) / sum(total) ELSE 0 END,"
               " avg(cv) FROM expert_load WHERE run_id = ?1 GROUP BY layer ORDER BY layer");
  st.bind(1, run);
  Stmt lastq(db_, "SELECT CASE WHEN total > 0 THEN CAST(max_count AS REAL) * n_experts / total ELSE 0 END"
                  " FROM expert_load WHERE run_id = ?1 AND layer = ?2 ORDER BY step DESC LIMIT 1");
  std::vector<LayerBalance> out;
  while (st.step()) {
    LayerBalance b;
    b.layer = st.col_int(0);
    b.steps = st.col_int(1);
    b.mean_max_over_mean = st.col_double(2);
    b.drop_rate = st.col_double(3);
    b.mean_cv = st.col_double(4);
    lastq.reset();
    lastq.bind(1, run).bind(2, b.layer);
    b.last_max_over_mean = lastq.step() ? lastq.col_double(0) : kNaN;
    out.push_back(b);
  }
  return out;
}

std::vector<ConfigDiffRow> RunReader::config_diff(const std::vector<int64_t>& runs) {
  ReadTxn txn(db_);
  std::vector<std::map<std::string, std::string>> flat;
  std::set<std::string> keys;
  for (int64_t r : runs) {
    std::map<std::string, std::string> m;
    for (auto& [k, v] : flatten_json(spec_json(r))) {
      keys.insert(k);
      m.emplace(k, v);
    }
    flat.push_back(std::move(m));
  }
  std::vector<ConfigDiffRow> out;
  for (const std::string& key : keys) {
    ConfigDiffRow row{key, {}};
    for (auto& m : flat) {
      auto it = m.find(key);
      row.values.push_back(it == m.end() ? "(absent)" : it->second);
    }
    bool differ = std::any_of(row.values.begin(), row.values.end(),
                              [&](const std::string& v) { return v != row.values.front(); });
    if (differ) out.push_back(std::move(row));
  }
  return out;
}

}  // namespace moe::store
