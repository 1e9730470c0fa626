// Which spec fields have no effect given the others (spec_relevance.h): each rule fires on a spec
// where the field is idle, names the field that decides, and stops when that field changes; no
// preset sets a field away from its default where it has no effect.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "job_spec.h"
#include "spec_relevance.h"
#include "test_paths.h"

using namespace moe;

namespace {
struct Rule {
  const char* path;
  std::function<void(JobSpec&)> idle, used;  // make the field idle, then make it count
  const char* decided_by;                    // the field the reason must name
};
}  // namespace

TEST(SpecRelevance, EachRuleFiresNamesItsReasonAndStopsWhenTheDecidingFieldChanges) {
  const std::vector<Rule> rules = {
      {"model.mla.kv_lora_rank", [](JobSpec& s) { s.model.attention = "gqa"; },
       [](JobSpec& s) { s.model.attention = "mla"; }, "model.attention"},
      {"model.head_dim", [](JobSpec& s) { s.model.attention = "mla"; }, [](JobSpec& s) { s.model.attention = "gqa"; },
       "model.attention"},
      {"model.n_kv_heads", [](JobSpec& s) { s.model.attention = "mla"; }, [](JobSpec& s) { s.model.attention = "gqa"; },
       "model.attention"},
      {"model.d_ff", [](JobSpec& s) { s.model.moe.first_dense_layers = 0; },
       [](JobSpec& s) { s.model.moe.first_dense_layers = 1; }, "model.moe.first_dense_layers"},
      {"model.moe.d_shared_expert", [](JobSpec& s) { s.model.moe.shared_experts = 0; },
       [](JobSpec& s) { s.model.moe.shared_experts = 1; }, "model.moe.shared_experts"},
      {"routing.drop_policy", [](JobSpec& s) { s.routing.capacity_factor = 0; },
       [](JobSpec& s) { s.routing.capacity_factor = 1.25; }, "routing.capacity_factor"},
      {"routing.drop_policy", [](JobSpec& s) { s.routing.type = "expert_choice"; },
       [](JobSpec& s) { s.routing.type = "token_choice"; }, "expert choice"},
      {"routing.topk_group", [](JobSpec& s) { s.routing.n_group = 1; }, [](JobSpec& s) { s.routing.n_group = 4; },
       "routing.n_group"},
      {"routing.bias_balancing.update_rate", [](JobSpec& s) { s.routing.bias_balancing.enabled = false; },
       [](JobSpec& s) { s.routing.bias_balancing.enabled = true; }, "routing.bias_balancing.enabled"},
      {"parallel.etp", [](JobSpec& s) { s.parallel.tp = 1; }, [](JobSpec& s) { s.parallel.tp = 2; }, "parallel.tp"},
      {"parallel.sequence_parallel", [](JobSpec& s) { s.parallel.tp = 1; }, [](JobSpec& s) { s.parallel.tp = 2; },
       "parallel.tp"},
      {"parallel.vpp", [](JobSpec& s) { s.parallel.pp = 1; }, [](JobSpec& s) { s.parallel.pp = 2; }, "parallel.pp"},
      {"parallel.pp_layers", [](JobSpec& s) { s.parallel.pp = 1; }, [](JobSpec& s) { s.parallel.pp = 4; },
       "parallel.pp"},
      {"parallel.hierarchical_a2a", [](JobSpec& s) { s.parallel.ep = 1; }, [](JobSpec& s) { s.parallel.ep = 4; },
       "parallel.ep"},
      {"parallel.overlap_chunks", [](JobSpec& s) { s.parallel.ep = 1; }, [](JobSpec& s) { s.parallel.ep = 2; },
       "parallel.ep"},
      {"placement.map", [](JobSpec& s) { s.placement.strategy = "uniform"; },
       [](JobSpec& s) { s.placement.strategy = "explicit"; }, "placement.strategy"},
      {"placement.replica_choice", [](JobSpec& s) { s.placement.slots_per_rank = 2; },  // 8 experts on ep 4
       [](JobSpec& s) { s.placement.slots_per_rank = 3; }, "placement.slots_per_rank"},
      {"train.data.path", [](JobSpec& s) { s.train.data.kind = "synthetic"; },
       [](JobSpec& s) { s.train.data.kind = "text"; }, "train.data.kind"},
  };
  for (const Rule& r : rules) {
    JobSpec s;
    s.parallel.ep = 4;  // 8 experts: 2 per rank without replicas
    r.idle(s);
    const std::string why = unused_field_reason(s, r.path);
    EXPECT_NE(why.find(r.decided_by), std::string::npos) << r.path << ": '" << why << "'";
    r.used(s);
    EXPECT_EQ(unused_field_reason(s, r.path), "") << r.path << " after changing " << r.decided_by;
  }
  // Fields without a rule always count.
  EXPECT_EQ(unused_field_reason(JobSpec{}, "model.d_model"), "");
  EXPECT_EQ(unused_field_reason(JobSpec{}, "routing.capacity_factor"), "");
}

// A preset that sets an idle field away from its default says something it does not mean. (The
// published runs' presets, resources/presets/published/, keep their configs' values as published,
// e.g. Qwen3-235B's dense intermediate_size beside all-MoE layers.)
TEST(SpecRelevance, NoPresetSetsAnIdleFieldAwayFromItsDefault) {
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_dir() / "resources" / "presets")) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    const nlohmann::json raw = nlohmann::json::parse(in);
    const JobSpec spec = load_spec(e.path());
    const nlohmann::json defaults = default_spec_json().flatten();
    const nlohmann::json set = raw.flatten();
    for (const auto& [pointer, value] : set.items()) {
      std::string path = pointer.substr(1);
      for (char& c : path) c = c == '/' ? '.' : c;
      const bool is_default = defaults.contains(pointer) && defaults.at(pointer) == value;
      // With MLA, Hugging Face import writes n_kv_heads = n_heads (no grouping), as the configs do.
      const bool imported_mla_heads = path == "model.n_kv_heads" && spec.model.attention == "mla" &&
                                      value == spec.model.n_heads;
      if (is_default || imported_mla_heads) continue;
      ++checked;
      EXPECT_EQ(unused_field_reason(spec, path), "") << e.path().filename() << " sets " << path;
    }
  }
  EXPECT_GT(checked, 50);
}

TEST(SpecRelevance, ZeroMeaningsNameTheSetting) {
  EXPECT_EQ(zero_meaning("model.head_dim"), "auto: d_model / n_heads");
  EXPECT_EQ(zero_meaning("placement.replace_every"), "never");
  EXPECT_EQ(zero_meaning("model.d_model"), "");
}
