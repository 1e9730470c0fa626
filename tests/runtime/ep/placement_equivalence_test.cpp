// Expert placement proven equal to one process (issue 14): the same training, bit for bit, when
// the experts sit on other ranks than the uniform blocks (an explicit map, different per layer)
// and when some experts are replicated (spare slots: a sequence's rows of a replicated expert go
// to one of its replicas, the replicas' gradients are summed), in dropless, capacity and expert
// choice modes. The one-process runs are ep_run_support.h's baselines (no placement: one process
// holds every expert once).
#include <gtest/gtest.h>

#include <string>

#include "ep_run_support.h"

namespace {

using namespace ep_test;

// 8 experts over 4 ranks: a permutation per layer (2 slots per rank).
const std::string kPermuted = " --set parallel.ep=4 --set train.micro_batch=2 --set placement.strategy=explicit"
                              " --set 'placement.map=[[5,2,7,0,3,6,1,4],[1,0,6,7,2,3,4,5]]'";
// 3 slots per rank: 4 spare slots hold replicas. Layer 0 replicates experts 0-3, layer 1 experts
// 0, 1, 6 and 7; replicas sit on different ranks (and so on both virtual nodes of 2 × 2).
const std::string kReplicated = " --set parallel.ep=4 --set train.micro_batch=2 --set placement.strategy=explicit"
                                " --set placement.slots_per_rank=3"
                                " --set 'placement.map=[[0,1,2,3,4,5,6,7,0,1,2,3],[7,0,3,5,1,6,2,4,7,0,6,1]]'";

int64_t replicas_in_checkpoint_names(const TrainRun& run) {
  // A replicated expert is saved once, under its logical name: 8 experts × 3 weights × 2 layers.
  const auto w = moe::rt::read_safetensors(run.dir / "ck" / "step-00000020" / "model.safetensors");
  int64_t experts = 0;
  for (const auto& [name, t] : w) experts += name.find(".experts.") != std::string::npos;
  return experts;
}

TEST(PlacementEquivalence, PermutedExpertsPerLayerMatchOneProcessDropless) {
  const TrainRun many = train("place_perm", 4, kDropless + kPermuted);
  expect_same_training(baseline(kDropless), many);
}

TEST(PlacementEquivalence, ReplicatedExpertsMatchOneProcessDropless) {
  const TrainRun many = train("place_repl", 4, kDropless + kReplicated);
  expect_same_training(baseline(kDropless), many);
  EXPECT_EQ(replicas_in_checkpoint_names(many), 8 * 3 * 2);
}

TEST(PlacementEquivalence, ReplicatedExpertsMatchOneProcessWithCapacityDrops) {
  const std::string cap = " --set routing.capacity_factor=1.0";
  expect_same_training(baseline(cap), train("place_repl_cap", 4, cap + kReplicated));
}

TEST(PlacementEquivalence, ReplicatedExpertsMatchOneProcessWithExpertChoice) {
  const std::string ec = " --set routing.type=expert_choice --set routing.capacity_factor=1.0";
  expect_same_training(baseline(ec), train("place_repl_ec", 4, ec + kReplicated));
}

// Replicas on the sender's node first (2 virtual nodes × 2 ranks), with dp 2 × ep 2... here ep 4
// over two nodes: the local policy changes where rows go, never the result.
TEST(PlacementEquivalence, LocalReplicaChoiceOnTwoVirtualNodesMatchesOneProcess) {
  const TrainRun many = train("place_repl_local", 4,
                              kDropless + kReplicated + " --set parallel.gpus_per_node=2 --set placement.replica_choice=local");
  expect_same_training(baseline(kDropless), many);
}

}  // namespace
