// Queries checked against brute-force figures computed from the same stream's text: downsampling
// (min, max, last per bucket), heatmaps, layers × experts, per-rank all-to-all, load balance,
// aligned series of several runs, config diff, incremental reads.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_reader.h"
#include "store_schema.h"
#include "store_test_util.h"
#include "synthetic_stream.h"

namespace moe::store {
namespace {

using json = nlohmann::json;
using test::TempDir;

struct Fixture {
  TempDir dir;
  std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 257, .layers = 3, .experts = 16, .ranks = 4};
  std::string stream = synthetic_stream(shape);
  int64_t run = test::ingest_string(db, stream, 5000);
  std::vector<json> records() const {
    std::vector<json> out;
    std::istringstream in(stream);
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line));
    return out;
  }
};

// The bucket grid as run_reader.h documents it: w = span / n; when w ≥ 16 the inner edges are
// rounded to the nearest multiple of 16 steps.
std::vector<int64_t> bucket_edges(int64_t first, int64_t last, int64_t n) {
  const int64_t span = last - first + 1;
  n = std::min(n, span);
  std::vector<int64_t> edges;
  for (int64_t b = 0; b <= n; ++b) {
    int64_t e = first + (b * span + n - 1) / n;  // the first step s with floor((s − first)·n / span) = b
    if (span / n >= 16 && b > 0 && b < n) e = (first + b * span / n + 8) / 16 * 16;
    edges.push_back(e);
  }
  return edges;
}

int64_t bucket_of(int64_t step, int64_t first, int64_t last, int64_t n) {
  const auto edges = bucket_edges(first, last, n);
  return std::upper_bound(edges.begin(), edges.end(), step) - edges.begin() - 1;
}

TEST(Query, SeriesKeepsMinMaxAndLastOfEachBucket) {
  Fixture f;
  RunReader reader(f.db);
  const int64_t first = 10, last = 250, N = 17;
  std::map<int64_t, std::vector<std::pair<int64_t, double>>> buckets;
  for (const json& r : f.records()) {
    if (r["type"] != "step") continue;
    int64_t s = r["step"];
    if (s >= first && s <= last) buckets[bucket_of(s, first, last, N)].push_back({s, r["loss"].get<double>()});
  }
  Series s = reader.series(f.run, Metric::loss, first, last, N);
  ASSERT_EQ(s.min.size(), buckets.size());
  size_t i = 0;
  for (auto& [b, pts] : buckets) {
    double mn = INFINITY, mx = -INFINITY;
    for (auto& p : pts) mn = std::min(mn, p.second), mx = std::max(mx, p.second);
    EXPECT_EQ(s.min[i], mn) << "bucket " << b;
    EXPECT_EQ(s.max[i], mx) << "bucket " << b;
    EXPECT_EQ(s.last[i], pts.back().second) << "bucket " << b;
    EXPECT_EQ(s.step[i], static_cast<double>(pts.back().first));
    ++i;
  }
  // Fewer steps than buckets: one bucket per step.
  Series small = reader.series(f.run, Metric::tokens_per_s, 1, 5, 1000);
  EXPECT_EQ(small.step, (std::vector<double>{1, 2, 3, 4, 5}));
}

TEST(Query, HeatmapIsTheMeanLoadPerBucketAndExpert) {
  Fixture f;
  RunReader reader(f.db);
  const int64_t layer = 1, N = 10;
  const int64_t E = f.shape.experts;
  std::vector<double> sum(E * N, 0.0), dsum(E * N, 0.0);
  std::vector<int64_t> n(N, 0);
  for (const json& r : f.records()) {
    if (r["type"] != "expert_load" || r["layer"] != layer) continue;
    int64_t b = bucket_of(r["step"], 1, f.shape.steps, N);
    ++n[b];
    for (int64_t e = 0; e < E; ++e) {
      sum[e * N + b] += r["counts"][e].get<double>();
      dsum[e * N + b] += r["dropped"][e].get<double>();
    }
  }
  Heatmap h = reader.expert_heatmap(f.run, layer, 1, -1, N);
  Heatmap d = reader.expert_heatmap(f.run, layer, 1, -1, N, /*dropped=*/true);
  ASSERT_EQ(h.n_experts, E);
  ASSERT_EQ(h.n_buckets, N);
  for (int64_t b = 0; b < N; ++b) {
    EXPECT_EQ(h.steps_in_bucket[b], n[b]);
    for (int64_t e = 0; e < E; ++e) {
      EXPECT_DOUBLE_EQ(h.values[e * N + b], sum[e * N + b] / n[b]);
      EXPECT_DOUBLE_EQ(d.values[e * N + b], dsum[e * N + b] / n[b]);
    }
  }
  const auto edges = bucket_edges(1, f.shape.steps, N);
  for (int64_t b = 0; b < N; ++b) EXPECT_EQ(h.bucket_first_step[b], static_cast<double>(edges[b])) << b;
  EXPECT_EQ(edges[1], 32);  // 257 steps in 10: w = 25.7, 26.7 rounds to 32
}

// Live's drop history of a long run: per bucket, the layer's dropped / routed tokens, exactly.
TEST(Query, DropRateSeriesIsEachBucketsDroppedOverRouted) {
  Fixture f;
  RunReader reader(f.db);
  const int64_t layer = 2, N = 10, first = 1, last = f.shape.steps;
  std::vector<double> routed(N, 0), dropped(N, 0);
  for (const json& r : f.records()) {
    if (r["type"] != "expert_load" || r["layer"] != layer) continue;
    const int64_t b = bucket_of(r["step"], first, last, N);
    for (const auto& c : r["counts"]) routed[b] += c.get<double>();
    for (const auto& d : r["dropped"]) dropped[b] += d.get<double>();
  }
  Series s = reader.drop_rate_series(f.run, layer, first, -1, N);
  ASSERT_EQ(s.last.size(), static_cast<size_t>(N));
  const auto edges = bucket_edges(first, last, N);
  for (int64_t b = 0; b < N; ++b) {
    EXPECT_NEAR(s.last[b], dropped[b] / routed[b], 1e-12) << b;
    EXPECT_EQ(s.step[b], static_cast<double>(edges[b + 1] - 1)) << b;
  }
  EXPECT_GT(*std::max_element(s.last.begin(), s.last.end()), 0.0) << "the fixture drops tokens";
}

TEST(Query, LayerExpertMatrixAndLoadBalance) {
  Fixture f;
  RunReader reader(f.db);
  const int64_t E = f.shape.experts, first = 100, last = 120;
  std::vector<double> sum(f.shape.layers * E, 0.0);
  std::map<std::pair<int64_t, int64_t>, json> load;
  for (const json& r : f.records()) {
    if (r["type"] != "expert_load") continue;
    load[{r["layer"], r["step"]}] = r;
    if (r["step"] < first || r["step"] > last) continue;
    for (int64_t e = 0; e < E; ++e) sum[r["layer"].get<int64_t>() * E + e] += r["counts"][e].get<double>();
  }
  LayerExpertMatrix m = reader.layer_expert_matrix(f.run, first, last);
  ASSERT_EQ(m.n_layers, f.shape.layers);
  ASSERT_EQ(m.n_experts, E);
  for (size_t i = 0; i < sum.size(); ++i) EXPECT_DOUBLE_EQ(m.values[i], sum[i] / (last - first + 1));

  auto lb = reader.load_balance(f.run, 2, 50, 52);
  ASSERT_EQ(lb.size(), 3u);
  for (const LoadBalance& b : lb) {
    const json& r = load[{b.layer, b.step}];
    double total = 0, mx = 0, dropped = 0;
    for (int64_t e = 0; e < E; ++e) {
      total += r["counts"][e].get<double>();
      mx = std::max(mx, r["counts"][e].get<double>());
      dropped += r["dropped"][e].get<double>();
    }
    double mean = total / E, var = 0;
    for (int64_t e = 0; e < E; ++e) var += std::pow(r["counts"][e].get<double>() - mean, 2);
    EXPECT_DOUBLE_EQ(b.max_over_mean, mx / mean);
    EXPECT_DOUBLE_EQ(b.drop_rate, dropped / total);
    EXPECT_NEAR(b.cv, std::sqrt(var / E) / mean, 1e-12);
  }
  auto layers = reader.layer_balance(f.run);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].steps, f.shape.steps);
  EXPECT_GT(layers[0].mean_max_over_mean, 1.0);
  Series lbs = reader.load_balance_series(f.run, 0, 1, -1, 8);
  EXPECT_EQ(lbs.min.size(), 8u);
  for (size_t i = 0; i < lbs.min.size(); ++i) EXPECT_LE(lbs.min[i], lbs.max[i]);
}

// One layer: from the per-rank records kept (steps 1–100 and 200 of 257, the defaults); all layers:
// exact over every record, from the per-step sums.
TEST(Query, A2aRankStatsPerRank) {
  Fixture f;
  RunReader reader(f.db);
  const int64_t P = f.shape.ranks;
  struct Acc {
    std::vector<double> sum, mn, mx, bytes;
    int64_t n = 0;
    explicit Acc(int64_t P) : sum(P, 0), mn(P, INFINITY), mx(P, -INFINITY), bytes(P, 0) {}
    void add(const json& r) {
      ++n;
      for (size_t p = 0; p < sum.size(); ++p) {
        double us = r["rank_us"][p];
        sum[p] += us;
        mn[p] = std::min(mn[p], us);
        mx[p] = std::max(mx[p], us);
        bytes[p] += r["rank_bytes"][p].get<double>();
      }
    }
    void expect(const A2aRankStats& s) const {
      ASSERT_EQ(s.samples, n);
      ASSERT_EQ(s.mean_us.size(), sum.size());
      for (size_t p = 0; p < sum.size(); ++p) {
        EXPECT_NEAR(s.mean_us[p], sum[p] / n, 1e-9);
        EXPECT_DOUBLE_EQ(s.min_us[p], mn[p]);
        EXPECT_DOUBLE_EQ(s.max_us[p], mx[p]);
        EXPECT_DOUBLE_EQ(s.mean_bytes[p], bytes[p] / n);
      }
    }
  };
  Acc layer2(P), all(P);
  for (const json& r : f.records()) {
    if (r["type"] != "a2a" || r["phase"] != "dispatch" || r["pass"] != "bwd") continue;
    const int64_t step = r["step"];
    all.add(r);
    if (r["layer"] == 2 && (step <= 100 || step % 100 == 0)) layer2.add(r);
  }
  layer2.expect(reader.a2a_rank_stats(f.run, "dispatch", "bwd", 2, 0, -1));
  all.expect(reader.a2a_rank_stats(f.run, "dispatch", "bwd", -1, 0, -1));
  EXPECT_EQ(all.n, 3 * f.shape.steps);
  EXPECT_EQ(reader.a2a_rank_stats(f.run, "combine", "fwd", -1, 0, -1).samples, 3 * f.shape.steps);
}

TEST(Query, IncrementalReadsReturnOnlyNewRows) {
  Fixture f;
  RunReader reader(f.db);
  auto rows = reader.steps_after(f.run, 250);
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows.front().step, 251);
  auto loads = reader.expert_load_after(f.run, 0, 255);
  ASSERT_EQ(loads.size(), 2u);
  int64_t total = 0;
  for (int64_t c : loads[0].counts) total += c;
  EXPECT_EQ(total, f.shape.tokens * f.shape.top_k);
  EXPECT_TRUE(reader.a2a_after(f.run, 256).empty());  // step 257's per-rank records are summed only
  EXPECT_EQ(reader.a2a_after(f.run, 199, 12).size(), static_cast<size_t>(3 * 4));  // step 200's are kept
  auto totals = reader.a2a_step_totals_after(f.run, 256);
  ASSERT_EQ(totals.size(), 1u);
  EXPECT_EQ(totals[0].step, 257);
  EXPECT_EQ(totals[0].rank_us.size(), static_cast<size_t>(f.shape.ranks));
  EXPECT_TRUE(reader.steps_after(f.run, 257).empty());
}

TEST(Query, AlignedSeriesShareOneGridAndMarkMissingBuckets) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape a{.steps = 100, .layers = 1, .experts = 4, .ranks = 0, .seed = 1};
  SyntheticShape b{.steps = 40, .layers = 1, .experts = 4, .ranks = 0, .seed = 2};
  int64_t ra = test::ingest_string(db, synthetic_stream(a));
  int64_t rb = test::ingest_string(db, synthetic_stream(b));
  RunReader reader(db);
  AlignedSeries s = reader.aligned_series({ra, rb}, Metric::loss, 1, -1, 10);
  ASSERT_EQ(s.bucket_first_step.size(), 10u);
  EXPECT_EQ(s.bucket_first_step[0], 1.0);
  EXPECT_EQ(s.bucket_first_step[9], 91.0);
  Series alone = reader.series(ra, Metric::loss, 1, 100, 10);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(s.min[0][i], alone.min[i]);
    EXPECT_EQ(s.last[0][i], alone.last[i]);
  }
  EXPECT_FALSE(std::isnan(s.last[1][3]));  // steps 31..40
  EXPECT_TRUE(std::isnan(s.last[1][4]));   // run b has no step 41..50
}

TEST(Query, ConfigDiffListsOnlyDifferingKeys) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  int64_t a, b;
  {
    RunStore store(db);
    a = store.create_run("a", R"({"model":{"n_layers":4,"moe":{"top_k":2}},"parallel":{"ep":4},"cluster":{"nodes":[{"host":"h1"}]}})");
    b = store.create_run("b", R"({"model":{"n_layers":4,"moe":{"top_k":1}},"parallel":{"ep":4},"cluster":{"nodes":[{"host":"h2"}]},"extra":true})");
  }
  RunReader reader(db);
  auto diff = reader.config_diff({a, b});
  ASSERT_EQ(diff.size(), 3u);
  EXPECT_EQ(diff[0].key, "cluster.nodes[0].host");
  EXPECT_EQ(diff[0].values, (std::vector<std::string>{"\"h1\"", "\"h2\""}));
  EXPECT_EQ(diff[1].key, "extra");
  EXPECT_EQ(diff[1].values[0], "(absent)");
  EXPECT_EQ(diff[2].key, "model.moe.top_k");
}

TEST(Query, RollupBlocksGiveExactlyTheAnswersOfRawRows) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 1000, .layers = 2, .experts = 8, .ranks = 0};
  int64_t run = test::ingest_string(db, synthetic_stream(shape), 1 << 16);
  RunReader reader(db);
  auto snapshot = [&] {
    Heatmap h = reader.expert_heatmap(run, 1, 1, -1, 7);
    Heatmap d = reader.expert_heatmap(run, 0, 5, 990, 13, true);
    Series s = reader.series(run, Metric::loss, 3, 990, 9);
    AlignedSeries a = reader.aligned_series({run}, Metric::tokens_per_s, 0, -1, 11);
    return std::make_tuple(h.values, h.steps_in_bucket, d.values, s.step, s.min, s.max, s.last, a.min[0], a.max[0],
                           a.last[0]);
  };
  Stmt blocks(reader.db(), "SELECT (SELECT count(*) FROM expert_load_blocks), (SELECT count(*) FROM step_blocks)");
  ASSERT_TRUE(blocks.step());
  EXPECT_GE(blocks.col_int(0), 2 * (1000 / kBlockSteps - 1));
  EXPECT_GE(blocks.col_int(1), 1000 / kBlockSteps - 1);
  blocks.reset();
  auto with_blocks = snapshot();
  {
    RunStore store(db);
    store.db().exec("DELETE FROM expert_load_blocks; DELETE FROM step_blocks; DELETE FROM expert_load_levels;"
                    " DELETE FROM step_levels", "dropping rollups");
  }
  EXPECT_EQ(with_blocks, snapshot());
}

// Every rollup level (16, 64, 256, 1024 steps) gives exactly the raw rows' answers, over wide and
// narrow buckets and odd windows, also when a repeated and a late record spoiled some blocks, and
// a wide bucket is read as a few blocks.
TEST(Query, EveryRollupLevelGivesExactlyTheAnswersOfRawRows) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  SyntheticShape shape{.steps = 9000, .layers = 1, .experts = 4, .ranks = 0};
  std::string stream = synthetic_stream(shape);
  // A step of block 300 (steps 4800–4815) delivered again while block 306 is open, and one of block
  // 70 after block 200, both with other figures (another seed): their blocks and parents are spoiled.
  SyntheticShape other = shape;
  other.seed = 7;
  const std::string again = synthetic_step(other, 4801), late = synthetic_step(other, 1125);
  stream.insert(stream.find(synthetic_step(shape, 4900)), again);
  stream.insert(stream.find(synthetic_step(shape, 3300)), late);
  int64_t run = test::ingest_string(db, stream, 1 << 16);
  RunReader reader(db);
  Stmt levels(reader.db(), "SELECT level, count(*) FROM expert_load_levels GROUP BY level ORDER BY level");
  std::vector<int64_t> per_level;
  while (levels.step()) per_level.push_back(levels.col_int(1));
  ASSERT_EQ(per_level.size(), 3u);
  EXPECT_GE(per_level[2], 9000 / 1024 - 3);  // 1024-step blocks, less the spoiled ones
  auto snapshot = [&] {
    std::vector<std::vector<double>> out;
    for (auto [first, last, n] : {std::tuple<int64_t, int64_t, int64_t>{1, -1, 7}, {1, -1, 40}, {1, -1, 1000},
                                  {37, 8500, 3}, {100, 4000, 17}, {2000, 2999, 1000}, {0, 9000, 9}}) {
      Heatmap h = reader.expert_heatmap(run, 0, first, last, n);
      Heatmap d = reader.expert_heatmap(run, 0, first, last, n, true);
      Series s = reader.series(run, Metric::loss, first, last, n);
      std::vector<double> steps(h.steps_in_bucket.begin(), h.steps_in_bucket.end());
      for (const auto* v : {&h.values, &steps, &h.bucket_first_step, &d.values, &s.step, &s.min, &s.max, &s.last})
        out.push_back(*v);
    }
    return out;
  };
  auto with_rollups = snapshot();
  {
    RunStore store(db);
    store.db().exec("DELETE FROM expert_load_blocks; DELETE FROM step_blocks; DELETE FROM expert_load_levels;"
                    " DELETE FROM step_levels", "dropping rollups");
  }
  EXPECT_EQ(with_rollups, snapshot());
}

TEST(Query, ThousandRunsListQuickly) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  {
    RunStore store(db);
    for (int i = 0; i < 1000; ++i) store.create_run("run " + std::to_string(i));
  }
  RunReader reader(db);
  auto t0 = std::chrono::steady_clock::now();
  auto runs = reader.list_runs();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(runs.size(), 1000u);
  EXPECT_EQ(runs.front().name, "run 999");
  EXPECT_LT(ms, 250.0);
}

}  // namespace
}  // namespace moe::store

namespace moe::store {
namespace {

// A step record's untyped extension (the runtime's tp_bytes) is read back from the latest step
// that carries it; a run without it has none.
TEST(Query, LastStepExtensionReadsTheLatestStepThatCarriesIt) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const std::string stream =
      R"({"type":"run_start","run_id":"tp","spec":{},"world_size":2,"backend":"cpu","hosts":["h"],"started_at":"2026-12-07T00:00:00Z"})" "\n"
      R"({"type":"step","step":1,"loss":2.0,"aux_loss":0,"z_loss":0,"lr":0.1,"tokens":8,"step_ms":1,"tokens_per_s":8,"tp_bytes":1048576})" "\n"
      R"({"type":"step","step":2,"loss":1.5,"aux_loss":0,"z_loss":0,"lr":0.1,"tokens":8,"step_ms":1,"tokens_per_s":8,"tp_bytes":2097152})" "\n"
      R"({"type":"step","step":3,"loss":1.4,"aux_loss":0,"z_loss":0,"lr":0.1,"tokens":8,"step_ms":1,"tokens_per_s":8,"grad_norm":1.0})" "\n";
  const int64_t run = test::ingest_string(db, stream, 100);
  RunReader reader(db);
  EXPECT_EQ(reader.last_step_extension(run, "tp_bytes"), std::optional<int64_t>(2097152));
  EXPECT_EQ(reader.last_step_extension(run, "no_such_key"), std::nullopt);
  const int64_t plain = test::ingest_string(db, synthetic_stream(SyntheticShape{.steps = 5, .layers = 1, .experts = 4, .ranks = 2}), 100);
  EXPECT_EQ(reader.last_step_extension(plain, "tp_bytes"), std::nullopt);
}

// A pipeline run's per-stage figures (docs/parallelism.md §3) come back from the latest step that
// carries them, timeline included; malformed figures are none, not a crash.
TEST(Query, LastPipelineStepReadsTheStagesAndTheirTimeline) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const std::string head =
      R"({"type":"run_start","run_id":"pp","spec":{},"world_size":2,"backend":"cpu","hosts":["h"],"started_at":"2026-12-07T00:00:00Z"})" "\n";
  auto at = [](int n, const std::string& extensions) {
    return R"({"type":"step","step":)" + std::to_string(n) +
           R"(,"loss":2.0,"aux_loss":0,"z_loss":0,"lr":0.1,"tokens":8,"step_ms":1,"tokens_per_s":8)" + extensions + "}\n";
  };
  const std::string stream =
      head + at(1, R"(,"pp_busy_ms":[1,1],"pp_idle_ms":[9,9],"pp_bytes":[8,8])") +
      at(2, R"(,"pp_busy_ms":[30,20],"pp_idle_ms":[10,10],"pp_bytes":[65536,65536],)"
            R"("pp_timeline":[[[0,0,0,5],[0,1,5,10],[1,0,12,16],[2,0,16,26]],[[0,0,6,9],[2,0,9,14]]])") +
      at(3, "");
  const int64_t run = test::ingest_string(db, stream, 100);
  RunReader reader(db);
  const auto f = reader.last_pipeline_step(run);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->step, 2);
  EXPECT_EQ(f->busy_ms, (std::vector<double>{30, 20}));
  EXPECT_EQ(f->bytes, (std::vector<int64_t>{65536, 65536}));
  ASSERT_EQ(f->ops.size(), 2u);
  ASSERT_EQ(f->ops[0].size(), 4u);
  EXPECT_EQ(f->ops[0][2].kind, PipelineOpTime::recompute);
  EXPECT_EQ(f->ops[1][1].kind, PipelineOpTime::backward);
  EXPECT_DOUBLE_EQ(f->ops[1][1].end_ms, 14);
  // The step is stage 0's 40 ms; stage 1 ran 30 ms of schedule and waits 10 more at the end.
  EXPECT_DOUBLE_EQ(f->idle_share(), (10.0 / 40 + 20.0 / 40) / 2);
  // Stage counts that disagree, an op of three numbers, an unknown kind: none.
  EXPECT_FALSE(pipeline_figures(1, nlohmann::json::parse(R"({"pp_busy_ms":[1,2],"pp_idle_ms":[1],"pp_bytes":[1,2]})")));
  EXPECT_FALSE(pipeline_figures(1, nlohmann::json::parse(
                                       R"({"pp_busy_ms":[1],"pp_idle_ms":[1],"pp_bytes":[1],"pp_timeline":[[[0,0,1]]]})")));
  EXPECT_FALSE(pipeline_figures(1, nlohmann::json::parse(
                                       R"({"pp_busy_ms":[1],"pp_idle_ms":[1],"pp_bytes":[1],"pp_timeline":[[[7,0,1,2]]]})")));
  // The interleaved schedule's ops carry a 5th number, the chunk; six are none.
  const auto chunked = pipeline_figures(1, nlohmann::json::parse(
                                               R"({"pp_busy_ms":[1],"pp_idle_ms":[1],"pp_bytes":[1],"pp_timeline":[[[0,0,1,2,1],[2,0,2,3]]]})"));
  ASSERT_TRUE(chunked.has_value());
  EXPECT_EQ(chunked->ops[0][0].chunk, 1);
  EXPECT_EQ(chunked->ops[0][1].chunk, 0);
  EXPECT_FALSE(pipeline_figures(1, nlohmann::json::parse(
                                       R"({"pp_busy_ms":[1],"pp_idle_ms":[1],"pp_bytes":[1],"pp_timeline":[[[0,0,1,2,1,1]]]})")));
  const int64_t plain = test::ingest_string(db, synthetic_stream(SyntheticShape{.steps = 5, .layers = 1, .experts = 4, .ranks = 2}), 100);
  EXPECT_FALSE(reader.last_pipeline_step(plain).has_value());
}

}  // namespace
}  // namespace moe::store
