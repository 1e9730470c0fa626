// Placement from a recorded run (core/store/placement_suggest.h, docs/placement.md §8): a stream
// with expert_load, coselection and placement records is ingested into a real store, then read back
// and planned from; `moe placement suggest` is run as a user runs it.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <numeric>

#include <nlohmann/json.hpp>

#include "error.h"
#include "placement_suggest.h"
#include "record_codec.h"
#include "spec_validation.h"
#include "store_test_util.h"

namespace moe::store {
namespace {

using test::TempDir;

constexpr int64_t E = 8;

// 2 MoE layers of 8 experts, top-2, ep 4 on 2 nodes of 2, micro-batch 2, the CPU profile.
JobSpec base_spec(std::vector<std::string> more = {}) {
  std::vector<std::string> o = {"model.n_layers=2",       "model.moe.num_experts=8", "model.moe.top_k=2",
                                "model.d_model=128",      "parallel.ep=4",           "parallel.gpus_per_node=2",
                                "cluster.nodes.0.slots=4", "cluster.hardware=cpu-2core", "train.micro_batch=2"};
  o.insert(o.end(), more.begin(), more.end());
  return parse_spec("{\"name\": \"placed\"}", o);
}

struct StreamParts {
  // counts(step, layer, expert), dropped(step, layer, expert); pairs(layer) per sample.
  std::function<int64_t(int64_t, int64_t, int64_t)> counts, dropped;
  std::function<std::vector<int64_t>(int64_t)> pairs;
  int64_t steps = 4, cosel_every = 2;
};

std::string stream(const JobSpec& spec, const StreamParts& p) {
  std::string out;
  metrics::RunStartRecord start;
  start.spec = spec_to_json(spec).dump();
  start.world_size = 4;
  start.backend = "cpu";
  start.started_at = "2026-12-07T10:00:00Z";
  out += metrics::to_line(start) + "\n";
  for (int64_t layer = 0; layer < 2; ++layer) {
    metrics::PlacementRecord pr;
    pr.layer = layer;
    pr.slots_per_rank = 2;
    pr.phy_to_log = layer == 0 ? std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7} : std::vector<int64_t>{7, 6, 5, 4, 3, 2, 1, 0};
    out += metrics::to_line(pr) + "\n";
  }
  for (int64_t step = 1; step <= p.steps; ++step) {
    for (int64_t layer = 0; layer < 2; ++layer) {
      metrics::ExpertLoadRecord r;
      r.step = step, r.layer = layer;
      for (int64_t e = 0; e < E; ++e) {
        r.counts.push_back(p.counts(step, layer, e));
        r.dropped.push_back(p.dropped ? p.dropped(step, layer, e) : 0);
      }
      out += metrics::to_line(r) + "\n";
      if (p.pairs && step % p.cosel_every == 0) {
        metrics::CoselectionRecord c;
        c.step = step, c.layer = layer, c.experts = E;
        c.pairs = p.pairs(layer);
        out += metrics::to_line(c) + "\n";
      }
    }
  }
  return out + "{\"type\":\"run_end\",\"status\":\"completed\",\"steps\":" + std::to_string(p.steps) + "}\n";
}

// Pairs {0,5}, {1,6}, {2,7}, {3,4}: every token's two experts, 100 tokens each per sample; the
// uniform placement (experts 0–3 on node 0, 4–7 on node 1) splits all four.
std::vector<int64_t> planted_pairs(int64_t) { return {0, 5, 100, 1, 6, 100, 2, 7, 100, 3, 4, 100}; }
StreamParts planted() {
  return {[](int64_t, int64_t, int64_t) { return int64_t{100}; }, nullptr, planted_pairs};
}

const PlacementSuggestion& find(const std::vector<PlacementSuggestion>& v, const std::string& name) {
  for (const auto& s : v)
    if (s.strategy == name) return s;
  throw Error("no suggestion " + name);
}

TEST(PlacementSuggest, RecordedRoutingAveragesTheWindowAndSumsSymmetricCoselection) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  StreamParts p;
  p.counts = [](int64_t step, int64_t layer, int64_t e) { return 100 * (e + 1) + 10 * step + layer; };
  p.dropped = [](int64_t step, int64_t, int64_t e) { return e == 7 ? step : 0; };
  p.pairs = [](int64_t layer) { return std::vector<int64_t>{0, 1, 5 + layer, 2, 6, 7}; };
  const int64_t run = test::ingest_string(db, stream(base_spec(), p));
  RunReader reader(db);

  const RecordedRouting all = recorded_routing(reader, run);
  EXPECT_EQ(all.experts, E);
  EXPECT_EQ(all.layers, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(all.first_step, 1);
  EXPECT_EQ(all.last_step, 4);
  EXPECT_EQ(all.steps, 4);
  // Mean over steps 1–4 of 100(e+1) + 10·step + layer: 100(e+1) + 25 + layer.
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t e = 0; e < E; ++e) EXPECT_DOUBLE_EQ(all.load[l][e], 100.0 * (e + 1) + 25 + l) << l << " " << e;
  EXPECT_DOUBLE_EQ(all.kept[0][7], 800 + 25 - 2.5);  // dropped 1..4 on expert 7
  EXPECT_DOUBLE_EQ(all.kept[0][6], 700 + 25);
  EXPECT_EQ(all.coselection_samples, 4);  // steps 2 and 4, both layers
  EXPECT_EQ(all.coselection_layer_samples, (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(all.coselection[1].size(), size_t(E * E));
  EXPECT_DOUBLE_EQ(all.coselection[1][0 * E + 1], 12);  // 6 per sample, two samples
  EXPECT_DOUBLE_EQ(all.coselection[1][1 * E + 0], 12);
  EXPECT_DOUBLE_EQ(all.coselection[0][6 * E + 2], 14);
  EXPECT_DOUBLE_EQ(all.coselection[0][2 * E + 6], 14);
  EXPECT_DOUBLE_EQ(std::accumulate(all.coselection[0].begin(), all.coselection[0].end(), 0.0), 2 * (10 + 14));

  const RecordedRouting window = recorded_routing(reader, run, 2, 3);
  EXPECT_EQ(window.first_step, 2);
  EXPECT_EQ(window.last_step, 3);
  EXPECT_DOUBLE_EQ(window.load[0][0], 100 + 25);  // steps 2, 3: mean 10·2.5
  EXPECT_EQ(window.coselection_samples, 2);       // step 2 only
  EXPECT_DOUBLE_EQ(window.coselection[0][1 * E + 0], 5);

  const std::vector<PlacementRow> placed = recorded_placements(reader, run);
  ASSERT_EQ(placed.size(), 2u);
  EXPECT_EQ(placed[1].layer, 1);
  EXPECT_EQ(placed[1].slots_per_rank, 2);
  EXPECT_EQ(placed[1].phy_to_log, (std::vector<int64_t>{7, 6, 5, 4, 3, 2, 1, 0}));

  EXPECT_THROW(recorded_routing(reader, run + 100), Error);
  try {
    recorded_routing(reader, run, 10, 20);
    ADD_FAILURE() << "an empty window was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no expert_load records in steps 10–20"), std::string::npos) << e.what();
  }
}

TEST(PlacementSuggest, ARunWithoutExpertLoadIsAClearError) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  StreamParts p = planted();
  p.steps = 0;
  const int64_t run = test::ingest_string(db, stream(base_spec(), p));
  RunReader reader(db);
  try {
    recorded_routing(reader, run);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run " + std::to_string(run) + " (placed): no expert_load records"), std::string::npos)
        << e.what();
  }
}

TEST(PlacementSuggest, ReplicateLowersMaxOverMeanOnASkewedLoad) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  StreamParts p;
  p.counts = [](int64_t, int64_t, int64_t e) { return e == 0 ? int64_t{800} : int64_t{100}; };
  const int64_t run = test::ingest_string(db, stream(base_spec(), p));
  RunReader reader(db);
  const RecordedRouting r = recorded_routing(reader, run);

  const auto plain = suggest_placements(base_spec(), r);
  ASSERT_EQ(plain.size(), 4u);
  EXPECT_EQ(plain[0].strategy, "uniform");
  EXPECT_EQ(plain[3].strategy, "data_driven");
  const PlacementSuggestion& uniform = find(plain, "uniform");
  ASSERT_TRUE(uniform.error.empty()) << uniform.error;
  EXPECT_DOUBLE_EQ(uniform.max_over_mean, 900.0 / 375.0);  // member 0 holds experts 0 and 1
  EXPECT_GT(uniform.a2a_seconds, 0);
  EXPECT_GT(uniform.inter_share, 0);
  EXPECT_LT(uniform.inter_share, 1);

  const auto spare = suggest_placements(base_spec({"placement.slots_per_rank=3"}), r);
  const PlacementSuggestion& replicate = find(spare, "replicate");
  ASSERT_TRUE(replicate.error.empty()) << replicate.error;
  EXPECT_LT(replicate.max_over_mean, 1.1);
  EXPECT_LT(replicate.a2a_seconds, uniform.a2a_seconds);  // the hot member no longer receives 2.4× the mean
  EXPECT_EQ(replicate.placement.size(), 2u);
  EXPECT_EQ(replicate.placement[0].slots_per_rank, 3);
  EXPECT_EQ(replicate.placement[0].log_to_phy[0].size(), 4u);
  // uniform has no use for spare slots: it says so instead of placing.
  EXPECT_NE(find(spare, "uniform").error.find("placement.slots_per_rank"), std::string::npos);
  EXPECT_TRUE(find(spare, "uniform").placement.empty());
}

TEST(PlacementSuggest, DataDrivenKeepsPlantedPairsOnOneNodeAndHalvesHierarchicalRows) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const int64_t run = test::ingest_string(db, stream(base_spec(), planted()));
  RunReader reader(db);
  const auto s = suggest_placements(base_spec(), recorded_routing(reader, run));
  // 400 pair tokens per layer and step, 2 equal nodes: split pairs cost 2 · ½ rows, kept ones 1 · ½.
  EXPECT_DOUBLE_EQ(find(s, "uniform").hier_inter_rows, 2 * 400.0);
  EXPECT_DOUBLE_EQ(find(s, "data_driven").hier_inter_rows, 2 * 200.0);
  for (const auto& l : find(s, "data_driven").placement)
    for (auto [a, b] : {std::pair{0, 5}, {1, 6}, {2, 7}, {3, 4}})
      EXPECT_EQ(l.rank_of_slot(l.log_to_phy[a][0]) / 2, l.rank_of_slot(l.log_to_phy[b][0]) / 2) << a << "," << b;
}

TEST(PlacementSuggest, ImpossibleLayoutsFillTheErrorAndPlansRoundTripThroughValidation) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  const int64_t run = test::ingest_string(db, stream(base_spec(), planted()));
  RunReader reader(db);
  const RecordedRouting r = recorded_routing(reader, run);
  // 5 slots per rank: more than a node's 4 experts (node-local strategies) and than E/ep (uniform).
  const JobSpec five = base_spec({"placement.slots_per_rank=5"});
  const auto s = suggest_placements(five, r);
  for (const char* name : {"uniform", "hierarchical", "data_driven"}) {
    EXPECT_NE(find(s, name).error.find("placement.slots_per_rank"), std::string::npos) << name << ": " << find(s, name).error;
    EXPECT_THROW(with_placement(five, find(s, name)), Error) << name;
  }
  ASSERT_TRUE(find(s, "replicate").error.empty());

  for (const JobSpec& spec : {base_spec(), base_spec({"placement.slots_per_rank=3"}), five})
    for (const PlacementSuggestion& sug : suggest_placements(spec, r)) {
      if (!sug.error.empty()) continue;
      const JobSpec written = with_placement(spec, sug);
      EXPECT_EQ(written.placement.strategy, "explicit");
      for (const Diagnostic& d : validate_spec(written)) EXPECT_NE(d.severity, Severity::error) << d.path << ": " << d.message;
      const JobSpec reread = parse_spec(spec_to_json(written).dump());
      EXPECT_EQ(placement_for_spec(reread), sug.placement) << sug.strategy;
    }

  // A spec that does not match the recording names the field.
  try {
    suggest_placements(base_spec({"model.moe.num_experts=16"}), r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.moe.num_experts: 16, but the run recorded 8"), std::string::npos) << e.what();
  }
}

// `moe placement suggest` as a user runs it.
int moe(const TempDir& dir, const std::string& args, std::string& out, std::string& err) {
  const std::string o = dir.file("out.txt"), e = dir.file("err.txt");
  const int status = std::system((std::string(MOE_CLI) + " " + args + " >" + o + " 2>" + e).c_str());
  out = test::read_file(o);
  err = test::read_file(e);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PlacementCli, SuggestPrintsEveryStrategyAndWritesARunnableSpec) {
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  test::ingest_string(db, stream(base_spec(), planted()));
  std::string out, err;
  ASSERT_EQ(moe(dir, "placement suggest placed --db " + db + " --set placement.slots_per_rank=3", out, err), 0) << err;
  EXPECT_NE(out.find("layout: ep 4 on 2 node(s), 3 slot(s) per rank"), std::string::npos) << out;
  const size_t at = out.find("\n  uniform ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_NE(out.substr(at, out.find('\n', at + 1) - at).find("cannot place: placement.slots_per_rank"), std::string::npos)
      << out;
  for (const char* name : {"replicate", "hierarchical", "data_driven"}) EXPECT_NE(out.find(std::string("\n  ") + name), std::string::npos);
  EXPECT_NE(out.find("window: steps 1–4 (4 step(s) with expert_load records); 4 co-selection sample(s) over 2 layer(s)"),
            std::string::npos) << out;

  const std::string spec_file = dir.file("placed.json");
  ASSERT_EQ(moe(dir, "placement suggest 1 --db " + db + " --json --write-spec " + spec_file + " --strategy data_driven", out, err), 0)
      << err;
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j["suggestions"].size(), 4u);
  EXPECT_EQ(j["suggestions"][3]["strategy"], "data_driven");
  EXPECT_DOUBLE_EQ(j["suggestions"][3]["hier_inter_rows"].get<double>(), 400.0);
  const JobSpec written = load_spec(spec_file);
  EXPECT_EQ(written.placement.strategy, "explicit");
  EXPECT_EQ(written.placement.map.size(), 2u);
  EXPECT_EQ(written.placement.map[0], j["suggestions"][3]["map"][0].get<std::vector<int64_t>>());
  EXPECT_FALSE(has_errors(validate_spec(written)));
  EXPECT_NE(err.find("wrote " + spec_file), std::string::npos) << err;

  // Errors: one line naming the run or the field.
  EXPECT_EQ(moe(dir, "placement suggest nosuch --db " + db, out, err), 1);
  EXPECT_NE(err.find("no run 'nosuch'"), std::string::npos) << err;
  EXPECT_EQ(moe(dir, "placement suggest 1 --db " + db + " --set parallel.ep=3", out, err), 1);
  EXPECT_NE(err.find("parallel.ep: 3"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(moe(dir, "placement suggest 1 --db " + db + " --set placement.slots_per_rank=3 --write-spec x.json --strategy uniform",
                out, err), 1);
  EXPECT_NE(err.find("'uniform' has no plan for this layout"), std::string::npos) << err;
  EXPECT_EQ(moe(dir, "placement suggest 1 --db " + db + " --write-spec x.json", out, err), 2);
  EXPECT_EQ(moe(dir, "placement suggest 1 --db " + db + " --strategy nope --write-spec x.json", out, err), 2);
}

// The trace simulator against the runtime: a real 4-rank run on 2 virtual nodes with replicas and
// re-placements, recorded by `moe run`; replaying the placement it used gives every rank's measured
// dispatch bytes exactly, at every sampled step (the placement in force changes at 6 and 11).
TEST(PlacementCli, SimulateReproducesTheMeasuredBytesOfARealRunExactly) {
  if (!std::filesystem::exists(MOE_RUNTIME_BIN)) GTEST_SKIP() << "moe-runtime not built at " << MOE_RUNTIME_BIN;
  TempDir dir;
  const std::string db = dir.file("runs.sqlite");
  std::string out, err;
  const std::string sets =
      " --set train.steps=12 --set train.warmup_steps=2 --set model.seq_len=32 --set model.n_layers=2"
      " --set parallel.ep=4 --set parallel.gpus_per_node=2 --set train.micro_batch=2 --set cluster.nodes.0.slots=4"
      " --set placement.strategy=replicate --set placement.slots_per_rank=3 --set placement.replace_every=5"
      " --set placement.stats_every=2 --set train.data.val_fraction=0.002";
  ASSERT_EQ(moe(dir, std::string("run ") + MOE_SOURCE_DIR + "/resources/presets/tiny-cpu.json --db " + db + " --name rep" + sets,
                out, err), 0) << err;
  ASSERT_EQ(moe(dir, "placement simulate rep --db " + db, out, err), 0) << out << err;
  EXPECT_NE(out.find("12 sampled (step, layer) pair(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("reproduced exactly in 12 of 12 sample(s)"), std::string::npos) << out;
  for (const char* row : {"\n  recorded ", "\n  replicate ", "\n  hierarchical ", "\n  data_driven "})
    EXPECT_NE(out.find(row), std::string::npos) << row << " in\n" << out;
}

}  // namespace
}  // namespace moe::store
