// Per-step all-to-all sums (a2a_summary.h).
#include "a2a_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "blob_codec.h"

namespace moe::store {

int64_t to_ns(double us) {
  const double ns = us * 1000.0;
  if (!(ns == ns)) return 0;
  if (ns >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (ns <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return std::llround(ns);
}

namespace {
// Whether rank p took part in the exchange: a pipeline-parallel run's other stages report 0 µs and
// 0 bytes for a layer they do not hold.
bool took_part(const A2aRecord& r, size_t p) {
  return (p < r.rank_us.size() && r.rank_us[p] > 0) || (p < r.rank_bytes.size() && r.rank_bytes[p] > 0);
}
}  // namespace

void A2aStepSum::add(const A2aRecord& r) {
  const size_t P = std::max(r.rank_us.size(), r.rank_bytes.size());
  if (sum_ns.size() < P) {
    sum_ns.resize(P, 0);
    min_ns.resize(P, 0);  // 0: the rank has not taken part in the step (yet)
    max_ns.resize(P, std::numeric_limits<int64_t>::min());
    sum_bytes.resize(P, 0);
  }
  for (size_t p = 0; p < r.rank_us.size(); ++p) {
    const int64_t ns = to_ns(r.rank_us[p]);
    sum_ns[p] += ns;
    if (took_part(r, p)) min_ns[p] = min_ns[p] == 0 ? ns : std::min(min_ns[p], ns);
    max_ns[p] = std::max(max_ns[p], ns);
  }
  for (size_t p = 0; p < r.rank_bytes.size(); ++p) sum_bytes[p] += r.rank_bytes[p];
  if (r.intra_bytes) intra_bytes = intra_bytes.value_or(0) + *r.intra_bytes;
  if (r.inter_bytes) inter_bytes = inter_bytes.value_or(0) + *r.inter_bytes;
  ++records;
}

bool keep_a2a_detail(const A2aRecord& r, bool has_extra, int64_t every, double anomaly_ratio) {
  if (every <= 0 || has_extra || r.step <= every || r.step % every == 0) return true;
  if (r.rank_us.size() < 2 || anomaly_ratio <= 0) return false;
  // The ranks that took part: the others would pull the median to 0.
  std::vector<double> us;
  for (size_t p = 0; p < r.rank_us.size(); ++p)
    if (took_part(r, p)) us.push_back(r.rank_us[p]);
  if (us.size() < 2) return false;
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  const double median = us[us.size() / 2];
  const double slowest = *std::max_element(r.rank_us.begin(), r.rank_us.end());
  return slowest > anomaly_ratio * median;
}

namespace {

std::vector<int64_t> ints(const Stmt& st, int col, const char* what) { return decode_ints(st.col_blob(col), what); }

void bind_ints(Stmt& st, int i, const std::vector<int64_t>& v) {
  const std::string b = encode_ints(v);
  st.bind_blob(i, b.data(), b.size());
}

}  // namespace

std::optional<A2aStepSum> read_a2a_step(Db& db, int64_t run, int64_t step, const std::string& phase,
                                        const std::string& pass) {
  Stmt st(db, "SELECT records, sum_ns, min_ns, max_ns, sum_bytes, intra_bytes, inter_bytes FROM a2a_steps"
              " WHERE run_id = ?1 AND step = ?2 AND phase = ?3 AND pass = ?4");
  st.bind(1, run).bind(2, step).bind(3, phase).bind(4, pass);
  if (!st.step()) return std::nullopt;
  A2aStepSum s;
  s.records = st.col_int(0);
  s.sum_ns = ints(st, 1, "a2a_steps.sum_ns");
  s.min_ns = ints(st, 2, "a2a_steps.min_ns");
  s.max_ns = ints(st, 3, "a2a_steps.max_ns");
  s.sum_bytes = ints(st, 4, "a2a_steps.sum_bytes");
  if (!st.is_null(5)) s.intra_bytes = st.col_int(5);
  if (!st.is_null(6)) s.inter_bytes = st.col_int(6);
  return s;
}

void write_a2a_step(Db& db, int64_t run, int64_t step, const std::string& phase, const std::string& pass,
                    const A2aStepSum& sum) {
  Stmt st(db, "INSERT OR REPLACE INTO a2a_steps(run_id, step, phase, pass, records, sum_ns, min_ns, max_ns,"
              " sum_bytes, intra_bytes, inter_bytes) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  st.bind(1, run).bind(2, step).bind(3, phase).bind(4, pass).bind(5, sum.records);
  bind_ints(st, 6, sum.sum_ns);
  bind_ints(st, 7, sum.min_ns);
  bind_ints(st, 8, sum.max_ns);
  bind_ints(st, 9, sum.sum_bytes);
  if (sum.intra_bytes) st.bind(10, *sum.intra_bytes);
  else st.bind_null(10);
  if (sum.inter_bytes) st.bind(11, *sum.inter_bytes);
  else st.bind_null(11);
  st.run();
}

void backfill_a2a_steps(Db& db) {
  Stmt st(db, "SELECT run_id, step, phase, pass, rank_us, rank_bytes, intra_bytes, inter_bytes FROM a2a"
              " ORDER BY run_id, step");
  using Key = std::tuple<int64_t, int64_t, std::string, std::string>;
  std::map<Key, A2aStepSum> sums;  // one step at a time
  auto flush = [&]() {
    for (const auto& [k, s] : sums) write_a2a_step(db, std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), s);
    sums.clear();
  };
  int64_t cur_run = -1, cur_step = -1;
  while (st.step()) {
    A2aRecord r;
    const int64_t run = st.col_int(0);
    r.step = st.col_int(1);
    if (run != cur_run || r.step != cur_step) flush();
    cur_run = run;
    cur_step = r.step;
    r.rank_us = decode_doubles(st.col_blob(4), "a2a.rank_us");
    r.rank_bytes = decode_ints(st.col_blob(5), "a2a.rank_bytes");
    if (!st.is_null(6)) r.intra_bytes = st.col_int(6);
    if (!st.is_null(7)) r.inter_bytes = st.col_int(7);
    sums[{run, r.step, st.col_text(2), st.col_text(3)}].add(r);
  }
  flush();
}

}  // namespace moe::store
