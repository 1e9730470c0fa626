#include "spec_validation.h"

#include "error.h"

#include <gtest/gtest.h>

using namespace moe;

namespace {

// Diagnostics of the default spec with some overrides; the default spec itself is valid.
std::vector<Diagnostic> check(const std::vector<std::string>& overrides) {
  return validate_spec(parse_spec("{}", overrides));
}

// The texts of the diagnostics of one severity.
std::vector<std::string> texts(const std::vector<Diagnostic>& ds, Severity s) {
  std::vector<std::string> out;
  for (const auto& d : ds)
    if (d.severity == s) out.push_back(d.path + ": " + d.message);
  return out;
}

::testing::AssertionResult has(const std::vector<Diagnostic>& ds, Severity s, const std::string& text) {
  for (const auto& t : texts(ds, s))
    if (t == text) return ::testing::AssertionSuccess();
  std::string all;
  for (const auto& d : ds) all += "\n  " + d.text();
  return ::testing::AssertionFailure() << "no " << (s == Severity::error ? "error" : "warning") << " '"
                                       << text << "' among:" << all;
}

}  // namespace

TEST(SpecValidation, DefaultSpecIsValid) {
  auto ds = check({});
  EXPECT_FALSE(has_errors(ds));
  EXPECT_TRUE(texts(ds, Severity::warning).empty());
}

TEST(SpecValidation, NonPositiveAndAbsurdSizes) {
  EXPECT_TRUE(has(check({"model.d_model=0"}), Severity::error, "model.d_model: 0 must be positive"));
  EXPECT_TRUE(has(check({"model.n_layers=-3"}), Severity::error, "model.n_layers: -3 must be positive"));
  EXPECT_TRUE(has(check({"model.d_model=100000000000"}), Severity::error,
                  "model.d_model: 100000000000 is absurdly large (at most 1048576)"));
  EXPECT_TRUE(has(check({"train.lr=0"}), Severity::error, "train.lr: 0 must be greater than 0"));
  EXPECT_TRUE(has(check({"routing.capacity_factor=-1"}), Severity::error,
                  "routing.capacity_factor: -1 must be at least 0"));
  EXPECT_TRUE(has(check({"parallel.ep=0"}), Severity::error, "parallel.ep: 0 must be positive"));
}

TEST(SpecValidation, HeadDivisibility) {
  EXPECT_TRUE(has(check({"model.n_heads=3"}), Severity::error,
                  "model.d_model: 128 is not divisible by model.n_heads (3); set model.head_dim or change the sizes"));
  EXPECT_FALSE(has_errors(check({"model.n_heads=3", "model.n_kv_heads=1", "model.head_dim=32"})));
  EXPECT_TRUE(has(check({"model.n_kv_heads=3"}), Severity::error, "model.n_kv_heads: 3 does not divide model.n_heads (4)"));
}

TEST(SpecValidation, ExpertsAndEp) {
  EXPECT_TRUE(has(check({"parallel.ep=3", "cluster.nodes.0.slots=3"}), Severity::error,
                  "parallel.ep: 3 does not divide model.moe.num_experts (8)"));
  EXPECT_TRUE(has(check({"model.moe.top_k=9"}), Severity::error, "model.moe.top_k: 9 exceeds model.moe.num_experts (8)"));
  EXPECT_TRUE(has(check({"model.moe.shared_experts=1"}), Severity::error,
                  "model.moe.d_shared_expert: must be positive when model.moe.shared_experts is 1"));
  EXPECT_TRUE(has(check({"model.moe.first_dense_layers=1"}), Severity::error,
                  "model.d_ff: must be positive when model.moe.first_dense_layers is 1"));
  EXPECT_TRUE(has(check({"model.moe.first_dense_layers=4", "model.d_ff=64"}), Severity::error,
                  "model.moe.first_dense_layers: 4 leaves no MoE layer (model.n_layers is 4)"));
}

TEST(SpecValidation, TensorParallelDivisibility) {
  auto ds = check({"parallel.tp=8", "parallel.gpus_per_node=8", "cluster.nodes.0.slots=8", "model.moe.d_expert=260"});
  EXPECT_TRUE(has(ds, Severity::error, "parallel.tp: 8 does not divide model.n_heads (4)"));
  EXPECT_FALSE(has(ds, Severity::error, "parallel.etp: 8 does not divide model.moe.d_expert (260)"));  // etp 1: whole experts
  ds = check({"parallel.tp=8", "parallel.etp=8", "parallel.gpus_per_node=8", "cluster.nodes.0.slots=8", "model.moe.d_expert=260"});
  EXPECT_TRUE(has(ds, Severity::error, "parallel.etp: 8 does not divide model.moe.d_expert (260)"));
  // etp divides tp: each expert split over etp consecutive tp ranks, copied over the others.
  EXPECT_FALSE(has_errors(check({"parallel.tp=4", "parallel.etp=2", "parallel.gpus_per_node=4", "cluster.nodes.0.slots=4"})));
  for (const char* etp : {"parallel.etp=3", "parallel.etp=8"})
    EXPECT_TRUE(has(check({"parallel.tp=4", etp, "parallel.gpus_per_node=4", "cluster.nodes.0.slots=4"}), Severity::error,
                    "parallel.etp: " + std::string(etp + 13) +
                        " must divide parallel.tp (4): each expert is split over etp of the tp ranks (1: whole experts on every tp rank)"))
        << etp;
  // tp = 1 never checks these.
  EXPECT_FALSE(has_errors(check({"model.moe.d_expert=260"})));
  EXPECT_TRUE(has(check({"parallel.tp=2", "cluster.nodes.0.slots=2"}), Severity::warning,
                  "parallel.tp: 2 exceeds parallel.gpus_per_node (1): tensor parallelism across nodes is slow"));
}

TEST(SpecValidation, PipelineStagesAgainstLayers) {
  EXPECT_TRUE(has(check({"parallel.pp=8", "cluster.nodes.0.slots=8"}), Severity::error,
                  "parallel.pp: 8 exceeds model.n_layers (4): a stage would be empty"));
  EXPECT_TRUE(has(check({"parallel.pp=3", "cluster.nodes.0.slots=3"}), Severity::warning,
                  "parallel.pp: 3 does not divide model.n_layers (4): stages are uneven"));
  // Fewer micro-batches than stages: the bubble dominates.
  EXPECT_TRUE(has(check({"parallel.pp=2", "cluster.nodes.0.slots=2"}), Severity::warning,
                  "train.grad_accum: 1 micro-batch(es) for 2 pipeline stages: under 1F1B each stage idles 50% of the "
                  "step; use several micro-batches per stage"));
  EXPECT_FALSE(has(check({"parallel.pp=2", "cluster.nodes.0.slots=2", "train.grad_accum=2"}), Severity::warning,
                   "train.grad_accum: 2 micro-batch(es) for 2 pipeline stages: under 1F1B each stage idles 33% of the "
                   "step; use several micro-batches per stage"));
  // An explicit split: chosen, so no warning; one count per stage, each ≥ 1, all the layers.
  const auto split = check({"parallel.pp=3", "cluster.nodes.0.slots=3", "parallel.pp_layers=[1,2,1]"});
  EXPECT_FALSE(has_errors(split));
  EXPECT_FALSE(has(split, Severity::warning, "parallel.pp: 3 does not divide model.n_layers (4): stages are uneven"));
  EXPECT_TRUE(has(check({"parallel.pp=2", "cluster.nodes.0.slots=2", "parallel.pp_layers=[1,2,1]"}), Severity::error,
                  "parallel.pp_layers: 3 layer counts for parallel.pp 2: give one per stage, or none for the even split"));
  EXPECT_TRUE(has(check({"parallel.pp=2", "cluster.nodes.0.slots=2", "parallel.pp_layers=[4,0]"}), Severity::error,
                  "parallel.pp_layers: every stage needs at least one layer"));
  EXPECT_TRUE(has(check({"parallel.pp=2", "cluster.nodes.0.slots=2", "parallel.pp_layers=[2,3]"}), Severity::error,
                  "parallel.pp_layers: the stages hold 5 layers but model.n_layers is 4"));
  // Sequence parallelism shares the tokens over the tp group: without one it does nothing.
  const std::string no_effect =
      "parallel.sequence_parallel: has no effect with parallel.tp 1: there is no tensor-parallel group to share the tokens";
  EXPECT_TRUE(has(check({"parallel.sequence_parallel=true"}), Severity::warning, no_effect));
  EXPECT_FALSE(has(check({"parallel.sequence_parallel=true", "parallel.tp=2", "cluster.nodes.0.slots=2",
                          "parallel.gpus_per_node=2"}), Severity::warning, no_effect));
}

// Virtual pipeline stages (interleaving), batch-level overlap and FP8: the cost model's keys.
TEST(SpecValidation, VirtualStagesBatchOverlapAndFp8) {
  const std::vector<std::string> pp2 = {"parallel.pp=2", "cluster.nodes.0.slots=2", "train.grad_accum=4"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), pp2.begin(), pp2.end());
    return check(more);
  };
  EXPECT_FALSE(has_errors(with({"parallel.vpp=2"})));
  EXPECT_TRUE(has(check({"parallel.vpp=2"}), Severity::error,
                  "parallel.vpp: 2 virtual stages need pipeline parallelism (parallel.pp > 1)"));
  EXPECT_TRUE(has(with({"parallel.vpp=4"}), Severity::error,
                  "parallel.vpp: 2 stages × 4 virtual stages exceed model.n_layers (4): a chunk would be empty"));
  EXPECT_TRUE(has(with({"parallel.vpp=2", "parallel.pp_layers=[1,3]"}), Severity::error,
                  "parallel.vpp: 2 virtual stages with an explicit parallel.pp_layers split: give one or the other"));
  EXPECT_TRUE(has(with({"parallel.vpp=3", "model.n_layers=8"}), Severity::warning,
                  "parallel.vpp: 2 × 3 virtual stages do not divide model.n_layers (8): the chunks are uneven "
                  "(Megatron needs --pipeline-model-parallel-layout)"));
  EXPECT_TRUE(has(check({"parallel.vpp=0"}), Severity::error, "parallel.vpp: 0 must be positive"));
  const std::string alone = "parallel.batch_overlap: needs two micro-batches in flight to pair one's all-to-all with the "
                            "other's computation; with train.grad_accum 1 nothing overlaps";
  EXPECT_TRUE(has(check({"parallel.batch_overlap=true"}), Severity::warning, alone));
  EXPECT_FALSE(has(check({"parallel.batch_overlap=true", "train.grad_accum=2"}), Severity::warning, alone));
  EXPECT_TRUE(has(check({"runtime.fp8=e4m3"}), Severity::error,
                  "runtime.fp8: e4m3 needs runtime.dtype bf16 (FP8 GEMMs on bf16 weights with fp32 master copies)"));
  EXPECT_FALSE(has_errors(check({"runtime.fp8=hybrid", "runtime.dtype=bf16"})));
  EXPECT_TRUE(has(check({"runtime.fp8=fp4"}), Severity::error, "runtime.fp8: 'fp4' is not one of: off, e4m3, hybrid"));
}

TEST(SpecValidation, ExpertChoiceNeedsCapacity) {
  EXPECT_TRUE(has(check({"routing.type=expert_choice", "routing.capacity_factor=0"}), Severity::error,
                  "routing.capacity_factor: expert_choice needs a capacity factor > 0 (each expert takes "
                  "capacity_factor · tokens · top_k / num_experts tokens)"));
}

// Deterministic arithmetic: the hierarchical exchange keeps top-2 token choice bit-exact but not
// expert choice or top_k > 2 (node sums); the CUDA backend only warns that it is not bit-exact.
TEST(SpecValidation, DeterministicArithmeticAndTheHierarchicalExchange) {
  const std::vector<std::string> hier{"parallel.ep=4", "parallel.gpus_per_node=2", "parallel.hierarchical_a2a=true"};
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.begin(), hier.begin(), hier.end());
    return check(more);
  };
  // A warning for the design (moe-runtime refuses it: runtime/app's backend check).
  const std::string msg = "a token's expert outputs are summed per node, which no one-process run reproduces bit for "
                          "bit (the CPU runtime's runtime.deterministic): use the flat exchange, or set "
                          "runtime.deterministic to false";
  EXPECT_TRUE(has(with({"routing.type=expert_choice"}), Severity::warning, "parallel.hierarchical_a2a: with expert choice " + msg));
  EXPECT_TRUE(has(with({"model.moe.top_k=3"}), Severity::warning, "parallel.hierarchical_a2a: with top_k 3 " + msg));
  EXPECT_EQ(deterministic_conflict(parse_spec("{}", {"model.moe.top_k=3", "parallel.ep=4", "parallel.gpus_per_node=2",
                                                    "parallel.hierarchical_a2a=true"})),
            "with top_k 3 " + msg);
  for (const auto& fine : {with({}), with({"model.moe.top_k=3", "runtime.deterministic=false"}),
                           check({"routing.type=expert_choice", "parallel.ep=4", "parallel.gpus_per_node=2"})})
    for (const auto& issue : fine)
      EXPECT_TRUE(issue.path != "parallel.hierarchical_a2a" || issue.message.find("bit for bit") == std::string::npos)
          << issue.message;
  EXPECT_TRUE(has(check({"runtime.backend=cuda"}), Severity::warning,
                  "runtime.deterministic: the cuda backend does not implement layout-invariant arithmetic: its runs match "
                  "other layouts within rounding, not bit for bit (set false to silence this)"));
}

TEST(SpecValidation, EnumsListTheChoices) {
  EXPECT_TRUE(has(check({"routing.type=top2"}), Severity::error,
                  "routing.type: 'top2' is not one of: token_choice, expert_choice"));
  EXPECT_TRUE(has(check({"model.attention=flash"}), Severity::error, "model.attention: 'flash' is not one of: gqa, mla"));
}

TEST(SpecValidation, GroupLimitedRouting) {
  EXPECT_TRUE(has(check({"routing.n_group=3"}), Severity::error, "routing.n_group: 3 does not divide model.moe.num_experts (8)"));
  EXPECT_TRUE(has(check({"routing.n_group=4", "routing.topk_group=5"}), Severity::error,
                  "routing.topk_group: 5 exceeds routing.n_group (4)"));
  EXPECT_TRUE(has(check({"routing.n_group=8", "routing.topk_group=1"}), Severity::error,
                  "routing.topk_group: the 1 selected group(s) hold fewer than model.moe.top_k (2) experts"));
}

TEST(SpecValidation, WorldSizeAgainstSlots) {
  EXPECT_TRUE(has(check({"parallel.ep=4"}), Severity::error,
                  "parallel: world size dp·tp·pp·ep = 4 exceeds the cluster's 1 slots"));
  EXPECT_TRUE(has(check({"cluster.nodes.0.slots=4"}), Severity::warning,
                  "cluster.nodes: 3 of 4 slots stay idle (world size 1)"));
}

TEST(SpecValidation, GpusPerNodeConsistentWithNodes) {
  auto ds = validate_spec(parse_spec(R"({"parallel":{"ep":8,"gpus_per_node":4},
      "cluster":{"nodes":[{"host":"a","slots":4},{"host":"b","slots":3},{"host":"c","slots":1}]}})"));
  EXPECT_TRUE(has(ds, Severity::error,
                  "cluster.nodes.1.slots: 3 is not a multiple of parallel.gpus_per_node (4): a host holds whole nodes"));
  // Two virtual nodes of 4 on one host are fine (hierarchical all-to-all on one machine).
  auto ok = check({"parallel.ep=8", "parallel.gpus_per_node=4", "cluster.nodes.0.slots=8", "parallel.hierarchical_a2a=true"});
  EXPECT_FALSE(has_errors(ok));
  EXPECT_TRUE(texts(ok, Severity::warning).empty());
}

TEST(SpecValidation, HierarchicalWithOneNodeWarns) {
  EXPECT_TRUE(has(check({"parallel.hierarchical_a2a=true"}), Severity::warning,
                  "parallel.hierarchical_a2a: the EP group fits in one node, so the two-stage all-to-all saves nothing"));
}

TEST(SpecValidation, ErrorsAndWarningsAreDistinct) {
  auto ds = check({"model.moe.top_k=9", "cluster.nodes.0.slots=2"});
  EXPECT_TRUE(has_errors(ds));
  EXPECT_EQ(texts(ds, Severity::error).size(), 1u);
  EXPECT_EQ(texts(ds, Severity::warning).size(), 1u);
  EXPECT_THROW(throw_if_invalid(ds), moe::Error);
  EXPECT_NO_THROW(throw_if_invalid(check({"cluster.nodes.0.slots=2"})));
}
