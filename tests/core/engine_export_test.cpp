// `moe export`: golden files per preset, every spec leaf accounted for, the emitted Megatron flags
// and DeepSpeed names checked against the engines' parsers (tests/core/data/export/*), and the
// settings each engine cannot express listed. Regenerate the golden files after an intended change
// with MOE_UPDATE_GOLDEN=1 ctest -R EngineExport, and read their diff.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "engine_export.h"
#include "error.h"
#include "job_spec.h"
#include "spec_validation.h"
#include "test_paths.h"

using namespace moe;
namespace fs = std::filesystem;

namespace {

const char* kPresets[] = {"tiny-cpu", "mixtral-8x7b", "mixtral-8x22b", "deepseek-v3", "qwen3-30b-a3b", "switch-base-128"};

fs::path export_data() { return fs::path(MOE_TEST_DATA_DIR) / "export"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Megatron's flags as its parser defines them (megatron-flags.tsv).
struct FlagDef {
  std::string kind;
  std::set<std::string> choices;
};
std::map<std::string, FlagDef> megatron_flags() {
  std::map<std::string, FlagDef> out;
  std::ifstream in(export_data() / "megatron-flags.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    std::string flag, kind, choices;
    std::getline(ss, flag, '\t');
    std::getline(ss, kind, '\t');
    std::getline(ss, choices, '\t');
    FlagDef d{kind, {}};
    std::stringstream cs(choices);
    for (std::string c; std::getline(cs, c, ',');) d.choices.insert(c);
    out[flag] = d;
  }
  return out;
}

// The (flag, value) pairs of the script's args=( … ) array; a quoted value loses its quotes.
std::vector<std::pair<std::string, std::string>> megatron_args(const std::string& script) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(script);
  std::string line;
  bool in_args = false;
  while (std::getline(ss, line)) {
    if (line == "args=(") in_args = true;
    else if (line == ")") in_args = false;
    else if (in_args && line.rfind("  --", 0) == 0) {
      const std::string body = line.substr(2);
      const size_t sp = body.find(' ');
      std::string value = sp == std::string::npos ? "" : body.substr(sp + 1);
      if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
      out.emplace_back(body.substr(0, sp), value);
    }
  }
  return out;
}

::testing::AssertionResult parses_as(const std::string& kind, const std::string& v) {
  char* end = nullptr;
  if (kind == "switch") return v.empty() ? ::testing::AssertionSuccess() : ::testing::AssertionFailure() << "a switch with value " << v;
  if (v.empty()) return ::testing::AssertionFailure() << "no value";
  if (kind == "int") {
    (void)std::strtoll(v.c_str(), &end, 10);
    if (*end == '\0') return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "'" << v << "' is not an int (Python's int() refuses it)";
  }
  if (kind == "float") {
    (void)std::strtod(v.c_str(), &end);
    if (*end == '\0') return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "'" << v << "' is not a float";
  }
  if (kind == "freq") {  // Megatron's moe_freq_type: an int, or a list expression "([0]*3+[1]*58)"
    if (v.find_first_not_of("0123456789") == std::string::npos) return ::testing::AssertionSuccess();
    if (v.front() == '(' && v.back() == ')' && v.find_first_not_of("()[]*+0123456789") == std::string::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "'" << v << "' is not a layer frequency";
  }
  return ::testing::AssertionSuccess();  // str
}

std::map<std::string, std::set<std::string>> deepspeed_names() {
  std::map<std::string, std::set<std::string>> out;
  std::ifstream in(export_data() / "deepspeed-names.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(": ");
    out[line.substr(0, colon)].insert(line.substr(colon + 2));
  }
  return out;
}

// Variants that exercise every gap: a spec for each setting an engine cannot express.
std::vector<std::pair<std::string, std::vector<std::string>>> variants() {
  return {{"expert-choice", {"routing.type=expert_choice"}},
          {"probability-drops", {"routing.drop_policy=probability", "routing.jitter=0.05"}},
          {"replicas", {"parallel.ep=2", "placement.strategy=replicate", "placement.slots_per_rank=5",
                        "placement.replace_every=50"}},
          {"hierarchical", {"parallel.ep=4", "parallel.gpus_per_node=2", "parallel.hierarchical_a2a=true",
                            "parallel.overlap_chunks=2", "placement.strategy=hierarchical"}},
          {"sigmoid", {"routing.score=sigmoid", "routing.norm_topk_prob=false", "routing.bias_balancing.enabled=true",
                       "routing.aux_loss_coef=0", "routing.routed_scaling_factor=2.5"}},
          {"layout", {"parallel.tp=2", "parallel.pp=3", "model.n_layers=4", "runtime.dtype=bf16", "train.warmup_steps=0"}},
          {"pipeline-split", {"parallel.pp=4", "model.n_layers=6", "parallel.pp_layers=[1,2,2,1]"}},
          {"interleaved-fp8", {"parallel.pp=2", "parallel.vpp=2", "parallel.ep=2", "parallel.batch_overlap=true",
                               "runtime.dtype=bf16", "runtime.fp8=hybrid", "train.grad_accum=4"}},
          {"uneven-chunks", {"parallel.pp=2", "parallel.vpp=3", "model.n_layers=8", "parallel.batch_overlap=true"}},
          {"recompute-stage", {"parallel.pp=2", "parallel.vpp=2", "model.n_layers=8", "train.recompute=stage", "train.grad_accum=4"}},
          {"recompute-full", {"parallel.pp=2", "train.recompute=full"}},
          {"recompute-uneven", {"parallel.pp=2", "parallel.vpp=3", "model.n_layers=8", "train.recompute=stage"}}};
}

// tiny-cpu on a cluster large enough for every variant's layout.
JobSpec variant_spec(std::vector<std::string> overrides) {
  overrides.insert(overrides.begin(), R"(cluster.nodes=[{"host": "localhost", "slots": 64}])");
  return load_spec(test::preset("tiny-cpu"), overrides);
}

bool listed(const EngineExport& e, const std::string& field) {
  for (const auto& u : e.unmapped)
    if (u.field == field) return true;
  return false;
}

}  // namespace

TEST(EngineExport, GoldenFilesPerPreset) {
  const bool update = std::getenv("MOE_UPDATE_GOLDEN") != nullptr;
  for (const char* name : kPresets) {
    const JobSpec spec = load_spec(test::preset(name));
    for (const auto& [engine, ext] : {std::pair{"megatron", ".megatron.sh"}, std::pair{"deepspeed", ".deepspeed.json"}}) {
      const EngineExport e = export_spec(engine, spec);
      const fs::path golden = export_data() / "golden" / (std::string(name) + ext);
      if (update) std::ofstream(golden, std::ios::binary) << e.text;
      EXPECT_EQ(e.text, slurp(golden)) << golden << " differs (MOE_UPDATE_GOLDEN=1 rewrites it)";
    }
  }
}

TEST(EngineExport, EverySpecSettingIsMappedOrListed) {
  std::vector<JobSpec> specs;
  for (const char* name : kPresets) specs.push_back(load_spec(test::preset(name)));
  for (const auto& [_, overrides] : variants()) specs.push_back(variant_spec(overrides));
  for (const JobSpec& spec : specs)
    for (const std::string& engine : export_engines()) {
      const EngineExport e = export_spec(engine, spec);
      const std::set<std::string> accounted(e.accounted.begin(), e.accounted.end());
      for (const std::string& path : spec_leaf_paths(spec))
        EXPECT_TRUE(accounted.count(path)) << engine << " export of " << spec.name << " never reads " << path;
      for (const auto& u : e.unmapped) {
        EXPECT_FALSE(u.why.empty()) << u.field;
        EXPECT_NE(u.value, "?") << u.field << " is not a spec path";
      }
    }
}

TEST(EngineExport, MegatronFlagsAreTheParsersOwn) {
  const auto flags = megatron_flags();
  ASSERT_GT(flags.size(), 60u);
  std::vector<JobSpec> specs;
  for (const char* name : kPresets) specs.push_back(load_spec(test::preset(name)));
  for (const auto& [_, overrides] : variants()) specs.push_back(variant_spec(overrides));
  for (const JobSpec& spec : specs) {
    const auto args = megatron_args(export_megatron(spec).text);
    ASSERT_GT(args.size(), 30u) << spec.name;
    std::map<std::string, std::string> seen;
    for (const auto& [flag, value] : args) {
      EXPECT_FALSE(seen.count(flag)) << spec.name << ": " << flag << " twice";
      seen[flag] = value;
      auto it = flags.find(flag);
      if (it == flags.end()) {
        ADD_FAILURE() << spec.name << ": " << flag << " is not a flag of Megatron's parser";
        continue;
      }
      EXPECT_TRUE(parses_as(it->second.kind, value)) << spec.name << ": " << flag;
      if (!it->second.choices.empty()) {
        EXPECT_TRUE(it->second.choices.count(value)) << spec.name << ": " << flag << " " << value;
      }
    }
    // Megatron's own start-up checks (validate_args) that a design could break.
    EXPECT_EQ(std::stoll(seen.at("--num-experts")) % std::stoll(seen.at("--expert-model-parallel-size")), 0);
    EXPECT_GE(std::stoll(seen.at("--max-position-embeddings")), std::stoll(seen.at("--seq-length")));
    if (seen.count("--moe-grouped-gemm")) {
      EXPECT_TRUE(seen.count("--bf16")) << spec.name << ": grouped GEMM needs --bf16";
    }
    if (seen.count("--num-query-groups")) {
      EXPECT_TRUE(seen.count("--group-query-attention")) << spec.name;
    }
    if (seen.count("--save")) {
      EXPECT_TRUE(seen.count("--save-interval")) << spec.name;
    }
    const int64_t pp = std::stoll(seen.at("--pipeline-model-parallel-size")), L = std::stoll(seen.at("--num-layers"));
    if (seen.count("--decoder-first-pipeline-num-layers")) {
      const int64_t first = std::stoll(seen.at("--decoder-first-pipeline-num-layers"));
      const int64_t last = std::stoll(seen.at("--decoder-last-pipeline-num-layers"));
      ASSERT_GT(pp, 2) << spec.name;
      EXPECT_EQ((L - first - last) % (pp - 2), 0) << spec.name << ": the middle stages split unevenly";
    } else {
      EXPECT_EQ(L % pp, 0) << spec.name << ": layers do not divide over the stages";
    }
    if (seen.count("--num-virtual-stages-per-pipeline-rank")) {  // even chunks (no layout string written)
      EXPECT_FALSE(seen.count("--decoder-first-pipeline-num-layers")) << spec.name;
      EXPECT_EQ(L % (pp * std::stoll(seen.at("--num-virtual-stages-per-pipeline-rank"))), 0) << spec.name;
    }
    if (seen.count("--overlap-moe-expert-parallel-comm")) {  // validate_args: EP and an alltoall/flex dispatcher
      EXPECT_GT(std::stoll(seen.at("--expert-model-parallel-size")), 1) << spec.name;
      EXPECT_EQ(seen.at("--moe-token-dispatcher-type"), "alltoall") << spec.name;
      EXPECT_TRUE(seen.count("--delay-wgrad-compute")) << spec.name;
    }
    // Megatron's data-parallel size is world / (tp · pp) = dp · ep; the global batch divides by it.
    const int64_t world = spec.parallel.world_size();
    const int64_t mdp = world / (std::stoll(seen.at("--tensor-model-parallel-size")) * pp);
    EXPECT_EQ(std::stoll(seen.at("--global-batch-size")) % (mdp * std::stoll(seen.at("--micro-batch-size"))), 0);
  }
}

TEST(EngineExport, MegatronScriptIsValidBash) {
  const fs::path dir = fs::temp_directory_path() / ("moe-export-test-" + std::to_string(::getpid()));
  fs::create_directories(dir / "bin");
  // A stand-in torchrun that prints its arguments one per line: the script must run and pass them.
  std::ofstream(dir / "bin" / "torchrun") << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n";
  fs::permissions(dir / "bin" / "torchrun", fs::perms::owner_all);
  const JobSpec spec = load_spec(test::preset("deepseek-v3"));
  std::ofstream(dir / "train.sh") << export_megatron(spec).text;
  const std::string cmd = "PATH='" + (dir / "bin").string() + "':$PATH bash '" + (dir / "train.sh").string() +
                          "' --extra-flag > '" + (dir / "argv").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string argv = slurp(dir / "argv");
  EXPECT_NE(argv.find("pretrain_gpt.py\n"), std::string::npos);
  EXPECT_NE(argv.find("--moe-layer-freq\n([0]*3+[1]*58)\n"), std::string::npos) << "the quoted list expression";
  EXPECT_NE(argv.find("--num-experts\n256\n"), std::string::npos);
  EXPECT_EQ(argv.substr(argv.size() - std::string("--extra-flag\n").size()), "--extra-flag\n");
  fs::remove_all(dir);
}

TEST(EngineExport, DeepSpeedNamesAreTheEnginesOwn) {
  const auto names = deepspeed_names();
  std::vector<JobSpec> specs;
  for (const char* name : kPresets) specs.push_back(load_spec(test::preset(name)));
  for (const auto& [_, overrides] : variants()) specs.push_back(variant_spec(overrides));
  for (const JobSpec& spec : specs) {
    const auto doc = nlohmann::json::parse(export_deepspeed(spec).text);
    for (const auto& [key, _] : doc["moe_layer"].items())
      EXPECT_TRUE(names.at("moe_layer").count(key)) << spec.name << ": MoE() has no argument " << key;
    for (const auto& [key, _] : doc["ds_config"].items())
      EXPECT_TRUE(names.at("ds_config").count(key)) << spec.name << ": ds_config has no key " << key;
    for (const auto& [key, _] : doc["ds_config"]["scheduler"]["params"].items())
      EXPECT_TRUE(names.at("scheduler.params").count(key)) << spec.name << ": WarmupCosineLR has no " << key;
    for (const auto& [key, _] : doc["ds_config"]["optimizer"]["params"].items())
      EXPECT_TRUE(names.at("optimizer.params").count(key)) << spec.name << ": AdamW has no " << key;
    // DeepSpeed's rule: train_batch_size = micro batch × accumulation × data-parallel size (dp · ep).
    const auto& c = doc["ds_config"];
    EXPECT_EQ(c["train_batch_size"].get<int64_t>(), c["train_micro_batch_size_per_gpu"].get<int64_t>() *
                                                        c["gradient_accumulation_steps"].get<int64_t>() *
                                                        spec.parallel.dp * spec.parallel.ep);
    EXPECT_GE(c["scheduler"]["params"]["warmup_num_steps"].get<int64_t>(), 1);
    EXPECT_EQ(doc["moe_layer"]["num_experts"].get<int64_t>() % doc["moe_layer"]["ep_size"].get<int64_t>(), 0);
  }
}

TEST(EngineExport, WhatAnEngineCannotExpressIsListed) {
  const auto megatron = [](const std::vector<std::string>& o) { return export_megatron(variant_spec(o)); };
  const auto deepspeed = [](const std::vector<std::string>& o) { return export_deepspeed(variant_spec(o)); };
  EXPECT_TRUE(listed(megatron({"routing.type=expert_choice"}), "routing.type"));
  EXPECT_TRUE(listed(deepspeed({"routing.type=expert_choice"}), "routing.type"));
  EXPECT_FALSE(listed(megatron({}), "routing.type"));

  const auto sig = std::vector<std::string>{"routing.score=sigmoid", "routing.bias_balancing.enabled=true",
                                            "routing.z_loss_coef=0.001", "routing.n_group=2", "routing.topk_group=1"};
  const EngineExport ds = deepspeed(sig);
  for (const char* f : {"routing.score", "routing.bias_balancing.enabled", "routing.z_loss_coef", "routing.n_group"})
    EXPECT_TRUE(listed(ds, f)) << f;
  const EngineExport mg = megatron(sig);
  for (const char* f : {"routing.score", "routing.bias_balancing.enabled", "routing.z_loss_coef", "routing.n_group"})
    EXPECT_FALSE(listed(mg, f)) << f << ": Megatron has it";
  EXPECT_NE(mg.text.find("--moe-router-enable-expert-bias\n"), std::string::npos);

  const EngineExport rep =
      megatron({"parallel.ep=2", "placement.strategy=replicate", "placement.slots_per_rank=5", "placement.replace_every=5"});
  for (const char* f : {"placement.strategy", "placement.slots_per_rank", "placement.replace_every"})
    EXPECT_TRUE(listed(rep, f)) << f;
  // A listed setting appears in the output too: as a comment line, or in not_exported.
  EXPECT_NE(rep.text.find("#   placement.slots_per_rank = 5: "), std::string::npos);
  const auto doc = nlohmann::json::parse(deepspeed({"routing.type=expert_choice"}).text);
  EXPECT_EQ(doc["not_exported"][0]["field"], "routing.type");
  EXPECT_EQ(doc["not_exported"][0]["value"], "expert_choice");

  // Drop policy: Megatron has both; DeepSpeed's top-2 gate drops by position only.
  EXPECT_NE(megatron({"routing.drop_policy=probability"}).text.find("--moe-token-drop-policy probs\n"), std::string::npos);
  EXPECT_TRUE(listed(deepspeed({"routing.drop_policy=probability"}), "routing.drop_policy"));
  EXPECT_FALSE(listed(deepspeed({}), "routing.drop_policy"));
  // Dropless: no capacity flag for Megatron; drop_tokens=false for DeepSpeed.
  EXPECT_EQ(megatron({"routing.capacity_factor=0"}).text.find("--moe-expert-capacity-factor"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(deepspeed({"routing.capacity_factor=0"}).text)["moe_layer"]["drop_tokens"], false);
  // Experts split over 2 of 4 tp ranks: Megatron's --expert-tensor-parallel-size; DeepSpeed splits
  // over the whole tp group or not at all.
  const std::vector<std::string> etp2 = {"parallel.tp=4", "parallel.etp=2", "model.n_heads=8"};
  EXPECT_NE(megatron(etp2).text.find("--expert-tensor-parallel-size 2\n"), std::string::npos);
  EXPECT_FALSE(listed(megatron(etp2), "parallel.etp"));
  EXPECT_TRUE(listed(deepspeed(etp2), "parallel.etp"));
  EXPECT_EQ(nlohmann::json::parse(deepspeed(etp2).text)["moe_layer"]["enable_expert_tensor_parallelism"], false);
  EXPECT_FALSE(listed(deepspeed({"parallel.tp=4", "parallel.etp=4", "model.n_heads=8"}), "parallel.etp"));
}

// FP8, interleaving and batch-level overlap: Megatron has all three (with even chunks and EP);
// DeepSpeed none, and each is listed.
TEST(EngineExport, Fp8InterleavingAndBatchOverlap) {
  const std::vector<std::string> all = {"parallel.pp=2", "parallel.vpp=2", "parallel.ep=2", "parallel.batch_overlap=true",
                                        "runtime.dtype=bf16", "runtime.fp8=e4m3", "train.grad_accum=4"};
  const EngineExport mg = export_megatron(variant_spec(all));
  for (const char* flag : {"--fp8-format e4m3\n", "--num-virtual-stages-per-pipeline-rank 2\n",
                           "--overlap-moe-expert-parallel-comm\n", "--delay-wgrad-compute\n"})
    EXPECT_NE(mg.text.find(flag), std::string::npos) << flag;
  for (const char* f : {"runtime.fp8", "parallel.vpp", "parallel.batch_overlap"}) EXPECT_FALSE(listed(mg, f)) << f;
  const EngineExport ds = export_deepspeed(variant_spec(all));
  for (const char* f : {"runtime.fp8", "parallel.vpp", "parallel.batch_overlap"}) EXPECT_TRUE(listed(ds, f)) << f;
  // Off by default: no flag, nothing listed.
  const EngineExport plain = export_megatron(variant_spec({}));
  EXPECT_EQ(plain.text.find("--fp8-format"), std::string::npos);
  EXPECT_EQ(plain.text.find("--overlap-moe-expert-parallel-comm"), std::string::npos);
  EXPECT_FALSE(listed(export_deepspeed(variant_spec({})), "runtime.fp8"));
  // Uneven chunks need Megatron's layout string, and overlap without EP has nothing to overlap: listed.
  const EngineExport uneven =
      export_megatron(variant_spec({"parallel.pp=2", "parallel.vpp=3", "model.n_layers=8", "parallel.batch_overlap=true"}));
  EXPECT_TRUE(listed(uneven, "parallel.vpp"));
  EXPECT_TRUE(listed(uneven, "parallel.batch_overlap"));
  EXPECT_EQ(uneven.text.find("--num-virtual-stages-per-pipeline-rank"), std::string::npos);
}

// Recomputation: Megatron's uniform units of N layers keep their inputs; one layer per unit is
// full, one pipeline chunk per unit stage. Uneven chunks have no such unit, and DeepSpeed has no
// config key: listed.
TEST(EngineExport, RecomputationAsMegatronUnits) {
  const EngineExport stage = export_megatron(
      variant_spec({"parallel.pp=2", "parallel.vpp=2", "model.n_layers=8", "train.recompute=stage", "train.grad_accum=4"}));
  EXPECT_NE(stage.text.find("--recompute-granularity full\n"), std::string::npos) << stage.text;
  EXPECT_NE(stage.text.find("--recompute-method uniform\n"), std::string::npos);
  EXPECT_NE(stage.text.find("--recompute-num-layers 2\n"), std::string::npos);  // 8 layers / (2 × 2 chunks)
  EXPECT_FALSE(listed(stage, "train.recompute"));
  const EngineExport full = export_megatron(variant_spec({"parallel.pp=2", "train.recompute=full"}));
  EXPECT_NE(full.text.find("--recompute-num-layers 1\n"), std::string::npos);
  const EngineExport uneven = export_megatron(variant_spec({"parallel.pp=2", "parallel.vpp=3", "model.n_layers=8", "train.recompute=stage"}));
  EXPECT_TRUE(listed(uneven, "train.recompute"));
  for (const auto& [flag, value] : megatron_args(uneven.text)) EXPECT_NE(flag, "--recompute-granularity");
  EXPECT_EQ(export_megatron(variant_spec({})).text.find("--recompute"), std::string::npos);
  EXPECT_TRUE(listed(export_deepspeed(variant_spec({"train.recompute=full"})), "train.recompute"));
  EXPECT_FALSE(listed(export_deepspeed(variant_spec({})), "train.recompute"));
}

TEST(EngineExport, UnknownEngineNamesTheChoices) {
  try {
    export_spec("megatorn", load_spec(test::preset("tiny-cpu")));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'megatron'"), std::string::npos) << e.what();
  }
}
