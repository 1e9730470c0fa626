// The store at scale (issue 16): per-step all-to-all sums with per-rank records kept only where
// wanted, prune and vacuum, and the upgrade of a file written by schema version 3.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "a2a_summary.h"
#include "error.h"
#include "run_reader.h"
#include "run_store.h"
#include "store_prune.h"
#include "store_schema.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

#ifndef MOE_STORE_SCHEMA3_FILE
#error "MOE_STORE_SCHEMA3_FILE must name tests/store/data/schema3/run-store-schema3.sqlite"
#endif

namespace moe::store {
namespace {

using test::TempDir;

int64_t count_rows(const std::string& db, const std::string& sql) {
  Db d(db, Db::Mode::read_only);
  Stmt st(d, sql.c_str());
  return st.step() ? st.col_int(0) : -1;
}

void expect_same_stats(const A2aRankStats& a, const A2aRankStats& b) {
  ASSERT_EQ(a.samples, b.samples);
  ASSERT_EQ(a.mean_us.size(), b.mean_us.size());
  for (size_t p = 0; p < a.mean_us.size(); ++p) {
    EXPECT_NEAR(a.mean_us[p], b.mean_us[p], 1e-9 * std::fabs(b.mean_us[p]));
    EXPECT_DOUBLE_EQ(a.min_us[p], b.min_us[p]);
    EXPECT_DOUBLE_EQ(a.max_us[p], b.max_us[p]);
    EXPECT_DOUBLE_EQ(a.mean_bytes[p], b.mean_bytes[p]);
  }
}

// The same stream into a store that keeps every per-rank record and one with the defaults: the
// views' figures (all-layer rank stats, per-step rank totals) agree, the second keeps a tenth.
TEST(A2aSummary, SummedStepsGiveTheFiguresOfEveryRecord) {
  TempDir dir;
  SyntheticShape shape{.steps = 1000, .layers = 4, .experts = 8, .ranks = 8};
  const std::string stream = synthetic_stream(shape);
  IngestOptions full_opt;
  full_opt.store.a2a_detail_every = 0;
  full_opt.batch_rows = 7;  // steps split across many commits
  const std::string full = dir.file("full.sqlite"), lean = dir.file("lean.sqlite");
  const int64_t a = test::ingest_string(full, stream, 3000, nullptr, full_opt);
  IngestOptions lean_opt;
  lean_opt.batch_rows = 5;
  const int64_t b = test::ingest_string(lean, stream, 777, nullptr, lean_opt);
  EXPECT_EQ(count_rows(full, "SELECT count(*) FROM a2a"), 1000 * 4 * 4);
  // Steps 1–100, 200, 300, …, 1000: 109 steps of 16 records.
  EXPECT_EQ(count_rows(lean, "SELECT count(*) FROM a2a"), 109 * 4 * 4);
  EXPECT_EQ(count_rows(lean, "SELECT count(*) FROM a2a_steps"), 1000 * 4);
  RunReader rf(full), rl(lean);
  for (const char* phase : {"dispatch", "combine"}) {
    for (const char* pass : {"fwd", "bwd"}) {
      expect_same_stats(rl.a2a_rank_stats(b, phase, pass, -1, 0, -1), rf.a2a_rank_stats(a, phase, pass, -1, 0, -1));
      expect_same_stats(rl.a2a_rank_stats(b, phase, pass, -1, 333, 777), rf.a2a_rank_stats(a, phase, pass, -1, 333, 777));
      // One layer over a window of kept steps reads the same records.
      expect_same_stats(rl.a2a_rank_stats(b, phase, pass, 3, 1, 100), rf.a2a_rank_stats(a, phase, pass, 3, 1, 100));
    }
  }
  // Per-step totals equal the sums of every record of the step.
  auto totals = rl.a2a_step_totals_after(b, 0);
  ASSERT_EQ(totals.size(), 1000u);
  auto rows = rf.a2a_after(a, 0);
  std::vector<std::vector<double>> want(1001, std::vector<double>(8, 0.0));
  for (const auto& r : rows)
    for (size_t p = 0; p < r.rank_us.size(); ++p) want[r.step][p] += r.rank_us[p];
  for (const auto& t : totals) {
    ASSERT_EQ(t.rank_us.size(), 8u);
    for (size_t p = 0; p < 8; ++p) ASSERT_NEAR(t.rank_us[p], want[t.step][p], 1e-6) << t.step;
  }
  // Even with 4 layers (a 64-layer step has 16× the records and the same 4 sums rows) the sums
  // plus the kept records take under half the bytes of every record.
  const int64_t full_bytes = count_rows(full, "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'a2a%'");
  const int64_t lean_bytes = count_rows(lean, "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'a2a%'");
  EXPECT_LT(lean_bytes * 2, full_bytes) << lean_bytes << " vs " << full_bytes;
}

std::string a2a_line(int64_t step, int64_t layer, const std::vector<double>& us, const std::string& extra = "") {
  std::string line = "{\"type\":\"a2a\",\"step\":" + std::to_string(step) + ",\"layer\":" + std::to_string(layer) +
                     ",\"phase\":\"dispatch\",\"pass\":\"fwd\",\"rank_us\":[";
  for (size_t p = 0; p < us.size(); ++p) line += (p ? "," : "") + std::to_string(us[p]);
  line += "],\"rank_bytes\":[";
  for (size_t p = 0; p < us.size(); ++p) line += (p ? "," : "") + std::to_string(us[p] > 0 ? 1000 + p : 0);
  return line + "]" + extra + "}\n";
}

// Kept beyond the sampled steps: a record whose slowest rank took over 2× the median (of the ranks
// that took part), and one with extra fields; a record delivered twice in a step is summed once.
TEST(A2aSummary, AnomaliesAndExtraFieldsKeepTheirRecords) {
  TempDir dir;
  SyntheticShape shape{.steps = 0, .layers = 1, .experts = 4, .ranks = 0};
  std::string stream = synthetic_run_start(shape);
  stream += a2a_line(150, 0, {100, 110, 105, 400});          // 400 > 2 × median 107.5: anomaly
  stream += a2a_line(151, 0, {100, 110, 105, 200});          // not
  stream += a2a_line(151, 0, {100, 110, 105, 200});          // the same record again
  stream += a2a_line(152, 0, {100, 100, 100, 100}, ",\"rank_slot_rows\":[[1,2],[3,4],[5,6],[7,8]]");
  // A pipeline's other stages (0 µs, 0 bytes) are not in the median: 120 is not 2× of 120.
  stream += a2a_line(153, 0, {0, 0, 0, 0, 0, 0, 100, 120});
  stream += synthetic_run_end(shape);
  const std::string db = dir.file("runs.sqlite");
  const int64_t run = test::ingest_string(db, stream);
  RunReader reader(db);
  auto kept = reader.a2a_after(run, 0);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].step, 150);
  EXPECT_EQ(kept[1].step, 152);
  auto totals = reader.a2a_step_totals_after(run, 0);
  ASSERT_EQ(totals.size(), 4u);
  EXPECT_DOUBLE_EQ(totals[1].rank_us[3], 200.0);  // summed once
  EXPECT_EQ(reader.a2a_rank_stats(run, "dispatch", "fwd", -1, 151, 151).samples, 1);
}

// A pipeline's step: layer 0 on ranks 0–1 (stage 0), layer 1 on ranks 2–3 (stage 1); each record
// has the other stage at 0 µs and 0 bytes. The step's per-rank min is over the layers the rank
// exchanged in, not 0; sums and maxima are unchanged.
TEST(A2aSummary, APipelineStepsMinimumIsOverTheLayersTheRankHolds) {
  TempDir dir;
  SyntheticShape shape{.steps = 0, .layers = 2, .experts = 4, .ranks = 0};
  std::string stream = synthetic_run_start(shape);
  stream += a2a_line(1, 0, {100, 110, 0, 0});
  stream += a2a_line(1, 1, {0, 0, 130, 90});
  stream += a2a_line(2, 0, {80, 120, 0, 0});  // 2 steps: the window's min is the smaller step's
  stream += a2a_line(2, 1, {0, 0, 150, 70});
  stream += synthetic_run_end(shape);
  const std::string db = dir.file("runs.sqlite");
  const int64_t run = test::ingest_string(db, stream);
  const A2aRankStats s = RunReader(db).a2a_rank_stats(run, "dispatch", "fwd", -1, 0, -1);
  ASSERT_EQ(s.min_us.size(), 4u);
  EXPECT_DOUBLE_EQ(s.min_us[0], 80.0);
  EXPECT_DOUBLE_EQ(s.min_us[1], 110.0);
  EXPECT_DOUBLE_EQ(s.min_us[2], 130.0);
  EXPECT_DOUBLE_EQ(s.min_us[3], 70.0);
  EXPECT_DOUBLE_EQ(s.max_us[2], 150.0);
}

int64_t ingest_finished(const std::string& db, int64_t steps) {
  SyntheticShape shape{.steps = steps, .layers = 2, .experts = 8, .ranks = 4};
  return test::ingest_string(db, synthetic_stream(shape), 4096);
}

TEST(StorePrune, DropsOldPerRankRecordsOfFinishedRunsOnly) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const int64_t done = ingest_finished(db, 600);
  int64_t running;
  {
    SyntheticShape shape{.steps = 300, .layers = 2, .experts = 8, .ranks = 4, .run_end = false};
    running = test::ingest_string(db, synthetic_stream(shape), 4096);
    RunStore(db).set_status(running, "running");
  }
  const auto before = RunReader(db).a2a_rank_stats(done, "combine", "bwd", -1, 0, -1);
  const int64_t rows_before = count_rows(db, "SELECT count(*) FROM a2a");
  const int64_t size_before = static_cast<int64_t>(std::filesystem::file_size(db));
  PruneReport dry;
  {
    RunStore st(db);
    dry = prune_a2a_detail(st, {done, running}, 100, true);
  }
  // Kept records of steps 1–100, 200, 300 and 400 are below 600 − 100: 103 steps × 2 layers × 4 kinds.
  EXPECT_EQ(dry.rows, 103 * 2 * 4);
  EXPECT_EQ(dry.runs, 1);
  EXPECT_EQ(dry.skipped_running, std::vector<int64_t>{running});
  EXPECT_GT(dry.freed_bytes, 0);
  EXPECT_EQ(count_rows(db, "SELECT count(*) FROM a2a"), rows_before);  // the dry run changed nothing
  PruneReport real;
  {
    RunStore st(db);
    real = prune_a2a_detail(st, {}, 100, false);
  }
  EXPECT_EQ(real.rows, dry.rows);
  EXPECT_EQ(real.freed_bytes, dry.freed_bytes);
  EXPECT_EQ(count_rows(db, "SELECT count(*) FROM a2a WHERE run_id = " + std::to_string(done)), 2 * 2 * 4);  // steps 500, 600
  EXPECT_EQ(count_rows(db, "SELECT count(*) FROM a2a WHERE run_id = " + std::to_string(running)), 102 * 2 * 4);
  expect_same_stats(RunReader(db).a2a_rank_stats(done, "combine", "bwd", -1, 0, -1), before);
  VacuumReport v;
  {
    RunStore st(db);
    VacuumReport dry_v = vacuum_store(st, true);
    EXPECT_LT(dry_v.bytes_after, dry_v.bytes_before);
    v = vacuum_store(st, false);
    EXPECT_LE(v.bytes_after, dry_v.bytes_after);  // VACUUM also packs half-empty pages
  }
  EXPECT_LT(v.bytes_after, size_before);
  {
    Db d(db, Db::Mode::read_only);
    Stmt st(d, "PRAGMA integrity_check");
    ASSERT_TRUE(st.step());
    EXPECT_EQ(st.col_text(0), "ok");
  }
  RunStore st(db);
  EXPECT_THROW(prune_a2a_detail(st, {}, -1, true), Error);
  EXPECT_THROW(prune_a2a_detail(st, {9999}, 0, true), Error);
}

// A file written by schema version 3 (tests/store/data/schema3/make_schema3.py holds its
// formulas) opens, upgrades in place to the current version, and reads the same figures.
TEST(StoreMigration, SchemaThreeFileUpgradesInPlace) {
  TempDir dir;
  const std::string db = dir.file("old.sqlite");
  std::filesystem::copy_file(MOE_STORE_SCHEMA3_FILE, db);
  EXPECT_THROW(RunReader{db}, Error);  // read-only: asks for one read-write open first
  { RunStore st(db); }
  EXPECT_EQ(count_rows(db, "PRAGMA user_version"), kSchemaVersion);
  RunReader reader(db);
  const RunInfo info = reader.run(1);
  EXPECT_EQ(info.name, "old-run");
  EXPECT_EQ(info.status, "completed");
  EXPECT_EQ(info.n_steps, 40);
  auto count = [](int64_t step, int64_t layer, int64_t e) { return 10 + (7 * step + 3 * e + layer) % 13; };
  // Heatmap of layer 1, one bucket per step (old rows through the old codec).
  Heatmap h = reader.expert_heatmap(1, 1, 1, 40, 40);
  ASSERT_EQ(h.n_experts, 8);
  for (int64_t s = 1; s <= 40; ++s)
    for (int64_t e = 0; e < 8; ++e) ASSERT_EQ(h.values[e * 40 + (s - 1)], count(s, 1, e)) << s << " " << e;
  // Whole-run heatmap: the old rollup blocks and raw rows together.
  Heatmap whole = reader.expert_heatmap(1, 0, 1, 40, 1);
  for (int64_t e = 0; e < 8; ++e) {
    double sum = 0;
    for (int64_t s = 1; s <= 40; ++s) sum += count(s, 0, e);
    EXPECT_DOUBLE_EQ(whole.values[e], sum / 40) << e;
  }
  // a2a_steps was backfilled from the old per-rank records.
  const char* phases[] = {"dispatch", "combine", "dispatch", "combine"};
  const char* passes[] = {"fwd", "fwd", "bwd", "bwd"};
  for (int k = 0; k < 4; ++k) {
    A2aRankStats s = reader.a2a_rank_stats(1, phases[k], passes[k], -1, 0, -1);
    ASSERT_EQ(s.samples, 80);
    for (int64_t r = 0; r < 2; ++r) {
      double sum = 0;
      for (int64_t step = 1; step <= 40; ++step)
        for (int64_t layer = 0; layer < 2; ++layer) sum += 100 + step + 10 * r + layer + k;
      EXPECT_DOUBLE_EQ(s.mean_us[r], sum / 80);
      EXPECT_DOUBLE_EQ(s.min_us[r], 101 + 10 * r + k);
      EXPECT_DOUBLE_EQ(s.max_us[r], 141 + 10 * r + k);
      EXPECT_DOUBLE_EQ(s.mean_bytes[r], 1000.0 * (r + 1) + 20.5);
    }
  }
  auto totals = reader.a2a_step_totals_after(1, 39);
  ASSERT_EQ(totals.size(), 1u);
  EXPECT_DOUBLE_EQ(totals[0].rank_us[0], 4 * 2 * (100 + 40) + 2 * (0 + 1 + 2 + 3) + 4 * (0 + 1));
  Series loss = reader.series(1, Metric::loss, 1, -1, 40);
  ASSERT_EQ(loss.last.size(), 40u);
  EXPECT_DOUBLE_EQ(loss.last[39], 5 - 40 / 100.0);
  // New records go into the upgraded file next to the old run.
  const int64_t fresh = ingest_finished(db, 120);
  EXPECT_EQ(RunReader(db).run(fresh).n_steps, 120);
  EXPECT_EQ(RunReader(db).list_runs().size(), 2u);
}

// A file migrated to schema 9 got empty coarser rollups; version 10 rebuilds them from the 16-step
// blocks. Every level row the writer made comes back bit for bit, the parents of the blocks spoiled
// by two re-delivered steps with other figures stay out, the only extra rows are trailing parents the writer had not closed
// yet, and every query answers as before.
TEST(StoreMigration, CoarseRollupsOfAMigratedFileAreRebuilt) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 9000, .layers = 2, .experts = 4, .ranks = 0};
  std::string stream = synthetic_stream(shape);
  SyntheticShape other = shape;  // the same steps again with other figures spoil blocks 300 and 70
  other.seed = 7;
  stream.insert(stream.find(synthetic_step(shape, 4900)), synthetic_step(other, 4801));
  stream.insert(stream.find(synthetic_step(shape, 3300)), synthetic_step(other, 1125));
  const int64_t run = test::ingest_string(db, stream, 1 << 16);
  auto rows = [&](const char* sql) {
    Db d(db, Db::Mode::read_only);
    Stmt st(d, sql);
    std::map<std::string, std::string> out;  // key → values
    while (st.step()) {
      std::string key, values;
      for (int c = 0; c < 4; ++c) key += std::to_string(st.col_int(c)) + ",";
      for (int c = 4; c < 7; ++c) {
        const auto blob = st.col_blob(c);
        values += std::string(blob.begin(), blob.end()) + "|";
      }
      out[key] = values;
    }
    return out;
  };
  const char* load_sql = "SELECT run_id, layer, level, block, n, counts, dropped FROM expert_load_levels";
  const char* step_sql = "SELECT run_id, 0, level, block, n, last_step, stats FROM step_levels";
  const auto writer_loads = rows(load_sql), writer_steps = rows(step_sql);
  ASSERT_GT(writer_loads.size(), 100u);
  auto answers = [&] {
    RunReader reader(db);
    std::vector<std::vector<double>> out;
    for (auto [first, last, n] : {std::tuple<int64_t, int64_t, int64_t>{1, -1, 7}, {1, -1, 1000}, {37, 8500, 3}, {0, 9000, 9}})
      for (int64_t layer : {0, 1}) {
        Heatmap h = reader.expert_heatmap(run, layer, first, last, n);
        Series s = reader.series(run, Metric::loss, first, last, n);
        out.insert(out.end(), {h.values, s.min, s.max, s.last});
      }
    return out;
  };
  const auto before = answers();
  {
    RunStore store(db);
    store.db().exec("DELETE FROM expert_load_levels; DELETE FROM step_levels; PRAGMA user_version=9", "back to 9");
  }
  { RunStore store(db); }  // migrates to 10
  EXPECT_EQ(count_rows(db, "PRAGMA user_version"), kSchemaVersion);
  for (const auto& [writer, rebuilt] : {std::pair{writer_loads, rows(load_sql)}, std::pair{writer_steps, rows(step_sql)}}) {
    std::map<std::string, int64_t> last_writer_block;  // per (run, layer, level)
    for (const auto& [key, values] : writer) {
      auto it = rebuilt.find(key);
      ASSERT_NE(it, rebuilt.end()) << "not rebuilt: " << key;
      EXPECT_EQ(it->second, values) << key;
      const size_t cut = key.rfind(',', key.size() - 2);
      int64_t& b = last_writer_block[key.substr(0, cut)];
      b = std::max<int64_t>(b, std::stoll(key.substr(cut + 1)));
    }
    for (const auto& [key, _] : rebuilt) {
      if (writer.count(key)) continue;
      const size_t cut = key.rfind(',', key.size() - 2);
      EXPECT_GT(int64_t{std::stoll(key.substr(cut + 1))}, last_writer_block[key.substr(0, cut)]) << "extra mid-run row " << key;
    }
  }
  EXPECT_EQ(answers(), before);
}

}  // namespace
}  // namespace moe::store
