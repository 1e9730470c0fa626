// Tensor parallelism proven equal to one process (issue 15): the real moe-runtime with tp ranks
// splitting attention's heads and the dense MLP's hidden units (Megatron's column/row split, one
// all-reduce forward and its conjugate backward), alone and with expert and data parallelism.
// A row-parallel product adds the tp ranks' partial sums, which rounds differently from one
// process's single sum, so the runs are held to the fast arithmetic's bounds (ep_run_support.h:
// losses within 1e-5, weights within 1e-3 per tensor, identical routing counts). Expert choice
// is left out: its top-C over all tokens turns such a rounding difference into a different choice
// within a few steps (measured: step 11 of 20), as it did before deterministic arithmetic for ep.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "ep_run_support.h"
#include "safetensors.h"

namespace fs = std::filesystem;

namespace {

using namespace ep_test;

// Every step's tp_bytes (the payload of the tp activation all-reduces) equals the cost model's,
// for the spec the run recorded.
void expect_tp_bytes_as_planned(const TrainRun& run) {
  const moe::Plan plan = plan_of(run);
  ASSERT_GT(plan.time.tp_bytes, 0);
  const auto steps = run.of("step");
  ASSERT_FALSE(steps.empty());
  for (const auto& s : steps)
    EXPECT_EQ(s.value("tp_bytes", int64_t{-1}), static_cast<int64_t>(plan.time.tp_bytes)) << "step " << s["step"];
}

// One dense layer first, so the dense MLP's split is exercised too.
const std::string kDenseFirst = " --set model.moe.first_dense_layers=1 --set model.d_ff=256";

TEST(TpEquivalence, Tp2MatchesOneProcess) {
  const TrainRun many = train("tp2", 2, kDropless + kDenseFirst + " --set parallel.tp=2 --set train.micro_batch=8");
  expect_same_training(baseline(kDropless + kDenseFirst), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
  // The checkpoint holds logical tensors: q_proj whole, not rank 0's half.
  const auto w = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
  EXPECT_EQ(w.at("model.layers.1.self_attn.q_proj.weight").shape, (std::vector<int64_t>{128, 128}));
  EXPECT_EQ(w.at("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{128, 256}));
}

TEST(TpEquivalence, Tp2Ep2MatchesOneProcess) {
  const TrainRun many = train("tp2ep2", 4, kDropless + " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_training(baseline(kDropless), many, Arithmetic::fast);
}

TEST(TpEquivalence, Dp2Tp2WithCapacityDropsMatchesOneProcess) {
  const TrainRun many = train("dp2tp2", 4, kDenseFirst + " --set parallel.tp=2 --set parallel.dp=2 --set train.micro_batch=4");
  expect_same_training(baseline(kDenseFirst), many, Arithmetic::fast);
}

// tp pairs fill the 2 virtual nodes (tp is fastest), so each EP group spans both nodes and its
// exchange goes through the hierarchical all-to-all's two stages.
TEST(TpEquivalence, Tp2Ep2HierarchicalOnTwoVirtualNodesMatchesOneProcess) {
  const TrainRun many = train("tp2ep2hier", 4, kDropless + " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4"
                                                         " --set parallel.gpus_per_node=2 --set parallel.hierarchical_a2a=true");
  expect_same_training(baseline(kDropless), many, Arithmetic::fast);
  for (const auto& r : many.of("a2a")) EXPECT_GT(r["inter_bytes"].get<int64_t>(), 0) << "step " << r["step"];
}

// A re-placing run moved experts at least once (otherwise it would prove nothing).
void expect_experts_moved(const TrainRun& run) {
  int moved = 0;
  for (const auto& r : run.of("placement")) moved += r.value("migrated_bytes", int64_t{0}) > 0;
  EXPECT_GT(moved, 0) << "no expert moved";
}

// Replicas (3 slots per rank) re-planned every 5 steps, gradient accumulation, router jitter and
// bias balancing, all under tp: the MoE shares' sums and the routing over every share hold.
TEST(TpEquivalence, Tp2Ep2WithReplicasReplacementAccumulationAndJitterMatchesOneProcess) {
  const std::string sets = kDropless + " --set train.grad_accum=2 --set routing.jitter=0.01"
                                       " --set routing.bias_balancing.enabled=true --set routing.aux_loss_coef=0";
  const TrainRun many = train("tp2ep2rep", 4, sets + " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4"
                                                     " --set placement.strategy=replicate --set placement.slots_per_rank=5"
                                                     " --set placement.replace_every=5");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_experts_moved(many);
}

// Every dimension the runtime trains at once: 8 ranks, tp fastest (rank_layout.h).
TEST(TpEquivalence, Dp2Tp2Ep2MatchesOneProcess) {
  const TrainRun many = train("dp2tp2ep2", 8, kDropless + kDenseFirst +
                                                  " --set parallel.dp=2 --set parallel.tp=2 --set parallel.ep=2"
                                                  " --set train.micro_batch=2 --set cluster.nodes.0.slots=8");
  expect_same_training(baseline(kDropless + kDenseFirst), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
}

// A checkpoint saved at dp 2 × ep 2 resumes at tp 2 × ep 2, and one saved at tp 2 in one process:
// the losses continue as the uninterrupted run's.
TEST(TpEquivalence, ResumeAcrossLayouts) {
  const std::string sets = kDropless + kDenseFirst + " --set runtime.checkpoint_every=3 --set train.steps=6";
  const TrainRun full = train("tp_resume_full", 4, sets + " --set parallel.dp=2 --set parallel.ep=2 --set train.micro_batch=2");
  ASSERT_EQ(full.rc, 0) << full.err;
  const std::string from = " --resume " + (full.dir / "ck" / "step-00000003").string();
  const TrainRun tp = train("tp_resume_tp2ep2", 4, sets + " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4" + from);
  ASSERT_EQ(tp.rc, 0) << tp.err;
  const std::string from_tp = " --resume " + (tp.dir / "ck" / "step-00000006").string();
  expect_resumed_losses(full, tp, "tp 2 × ep 2");
  // The tp run's own checkpoint is logical too: one process loads it (and has nothing left to train).
  const auto w = moe::rt::read_safetensors(tp.dir / "ck" / "step-00000006" / "model.safetensors");
  const auto wf = moe::rt::read_safetensors(full.dir / "ck" / "step-00000006" / "model.safetensors");
  ASSERT_EQ(w.size(), wf.size());
  for (const auto& [name, tensor] : wf) {
    ASSERT_TRUE(w.count(name)) << name;
    EXPECT_EQ(w.at(name).shape, tensor.shape) << name;
  }
  const TrainRun one = train("tp_resume_one", 1, sets + " --set train.steps=8 --set train.micro_batch=8" + from_tp);
  ASSERT_EQ(one.rc, 0) << one.err;
  EXPECT_EQ(one.of("step").size(), 2u);
}

// Validation on a tp layout (every 2 steps and at the end): the data ranks split each batch, the tp
// ranks of a data rank evaluate the same slice together; the loss is one process's within
// rounding and every byte is counted once (val_rank_bytes: one entry per data rank).
TEST(TpEquivalence, ValidationOnTp2Ep2MatchesOneProcess) {
  const std::string sets = kDropless + " --set train.steps=6 --set train.eval_every=2";
  const TrainRun one = train("tp_val_one", 1, sets + " --set train.micro_batch=8");
  const TrainRun many = train("tp_val_tp2ep2", 4, sets + " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_validation(one, many, 1e-5);
}

// Sequence parallelism (parallel.sequence_parallel): the residual stream, norms, embedding and
// head hold each tp rank's share of the sequences; all-gather and reduce-scatter replace the
// all-reduces around attention and the dense MLP, and the MoE blocks need none. The payload per
// step is the cost model's: 4 collectives per attention and dense MLP (tp_bytes).
const std::string kSequenceParallel = " --set parallel.sequence_parallel=true";

TEST(TpEquivalence, Tp2SequenceParallelMatchesOneProcess) {
  const TrainRun many = train("tp2sp", 2, kDropless + kDenseFirst + kSequenceParallel + " --set parallel.tp=2 --set train.micro_batch=8");
  expect_same_training(baseline(kDropless + kDenseFirst), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
  // One dense and one MoE layer: attention 4 + 4, the dense MLP 4, the embedding and the head 2 + 2
  // whole-batch tensors of 8 × 32 × 128 floats, where without sequence parallelism 4 + 4 + 1 + 1.
  EXPECT_EQ(many.of("step").back()["tp_bytes"].get<int64_t>(), 16 * 8 * 32 * 128 * 4);
  const auto w = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
  EXPECT_EQ(w.at("model.layers.1.self_attn.q_proj.weight").shape, (std::vector<int64_t>{128, 128}));
}

// With ep, dp, capacity drops, accumulation, jitter and bias balancing: the routing over every
// share and the shared tensors' gradient sums over tp hold.
TEST(TpEquivalence, Dp2Tp2Ep2SequenceParallelWithDropsAccumulationAndJitterMatchesOneProcess) {
  const std::string sets = kDenseFirst + " --set train.grad_accum=2 --set routing.jitter=0.01"
                                         " --set routing.bias_balancing.enabled=true";
  const TrainRun many = train("dp2tp2ep2sp", 8, sets + kSequenceParallel +
                                                    " --set parallel.dp=2 --set parallel.tp=2 --set parallel.ep=2"
                                                    " --set train.micro_batch=2 --set cluster.nodes.0.slots=8");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
}

// Validation's batches need not split evenly over tp (the last holds fewer windows, one rank's
// share may be empty): the ring collectives take uneven shares.
TEST(TpEquivalence, ValidationOnTp2Ep2SequenceParallelMatchesOneProcess) {
  const std::string sets = kDropless + kDenseFirst + " --set train.steps=6 --set train.eval_every=2";
  const TrainRun one = train("tp_val_one_sp", 1, sets + " --set train.micro_batch=8");
  const TrainRun many = train("tp_val_tp2ep2sp", 4, sets + kSequenceParallel +
                                                        " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_validation(one, many, 1e-5);
}

// Expert tensor parallelism (parallel.etp = tp): each expert's FFN split over the tp group, whose
// ranks all-gather their expert rows around the experts and reduce-scatter the partial outputs.
const std::string kEtp2 = " --set parallel.tp=2 --set parallel.etp=2";

// Every step's etp_bytes is 4 collectives per MoE layer of the rows the tp group's experts
// computed, each d floats: for rank 0 the kept assignments of its EP rank's experts, which the
// expert_load records count (dp 1: all of them are rank 0's tp group's). `experts_per_rank` = E/ep.
void expect_etp_bytes_from_the_routed_rows(const TrainRun& run, int64_t experts_per_rank) {
  std::map<int64_t, int64_t> rows;  // step → kept assignments to experts [0, experts_per_rank), all layers
  for (const auto& r : run.of("expert_load"))
    for (int64_t e = 0; e < experts_per_rank; ++e)
      rows[r["step"].get<int64_t>()] += r["counts"][e].get<int64_t>() - r["dropped"][e].get<int64_t>();
  const auto steps = run.of("step");
  ASSERT_FALSE(steps.empty());
  for (const auto& s : steps) {
    ASSERT_TRUE(rows.count(s["step"].get<int64_t>())) << "no expert_load at step " << s["step"];
    EXPECT_EQ(s.value("etp_bytes", int64_t{-1}), 4 * rows[s["step"].get<int64_t>()] * 128 * 4) << "step " << s["step"];
  }
}

TEST(TpEquivalence, Etp2MatchesOneProcess) {
  const TrainRun many = train("etp2", 2, kDropless + kDenseFirst + kEtp2 + " --set train.micro_batch=8");
  expect_same_training(baseline(kDropless + kDenseFirst), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
  expect_etp_bytes_from_the_routed_rows(many, 8);
  // One process, dropless, no ep: every routed copy is in the tp group, exactly the plan's figure.
  EXPECT_EQ(many.of("step").back()["etp_bytes"].get<int64_t>(), static_cast<int64_t>(plan_of(many).time.etp_bytes));
  // The checkpoint holds whole experts, not rank 0's half of each.
  const auto w = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
  const auto wf = moe::rt::read_safetensors(baseline(kDropless + kDenseFirst).dir / "ck" / "step-00000020" / "model.safetensors");
  for (const char* name : {"model.layers.1.block_sparse_moe.experts.3.w1.weight", "model.layers.1.block_sparse_moe.experts.3.w2.weight"})
    EXPECT_EQ(w.at(name).shape, wf.at(name).shape) << name;
}

// With ep, sequence parallelism, capacity drops and accumulation: each tp rank's EP group delivers
// its share's rows, the tp group computes every row with its slices.
TEST(TpEquivalence, Tp2Ep2Etp2SequenceParallelWithDropsAndAccumulationMatchesOneProcess) {
  const std::string sets = kDenseFirst + " --set train.grad_accum=2";
  const TrainRun many = train("tp2ep2etp2sp", 4, sets + kEtp2 + kSequenceParallel + " --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
  expect_etp_bytes_from_the_routed_rows(many, 4);
}

// Expert data parallelism of the slices: dp 2 × tp 2 × ep 2, 8 processes.
TEST(TpEquivalence, Dp2Tp2Ep2Etp2MatchesOneProcess) {
  const TrainRun many = train("dp2tp2ep2etp2", 8, kDropless + kEtp2 +
                                                      " --set parallel.dp=2 --set parallel.ep=2"
                                                      " --set train.micro_batch=2 --set cluster.nodes.0.slots=8");
  expect_same_training(baseline(kDropless), many, Arithmetic::fast);
}

// Saved at tp 2 × ep 2 with split experts, resumed at dp 2 × ep 2 with whole ones: the losses
// continue as the uninterrupted run's.
TEST(TpEquivalence, ResumeFromEtp2AtDp2Ep2) {
  const std::string sets = kDropless + " --set runtime.checkpoint_every=3 --set train.steps=6";
  const TrainRun etp = train("etp_resume_full", 4, sets + kEtp2 + " --set parallel.ep=2 --set train.micro_batch=4");
  ASSERT_EQ(etp.rc, 0) << etp.err;
  const std::string from = " --resume " + (etp.dir / "ck" / "step-00000003").string();
  const TrainRun resumed = train("etp_resume_dp2ep2", 4, sets + " --set parallel.dp=2 --set parallel.ep=2 --set train.micro_batch=2" + from);
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  expect_resumed_losses(etp, resumed, "dp 2 × ep 2 from etp 2");
}

// 1 < etp < tp: tp 4 with each expert split over 2 of its ranks. The tp group holds two etp groups
// (tp ranks 0–1 and 2–3), each gathering its own ranks' rows; the two copies of a slice were
// computed from different rows and their gradients are summed (grad_bytes.etp_copies).
const std::string kTp4Etp2 = " --set parallel.tp=4 --set parallel.etp=2 --set cluster.nodes.0.slots=8";

TEST(TpEquivalence, Tp4Etp2MatchesOneProcess) {
  const TrainRun many = train("tp4etp2", 4, kDropless + kDenseFirst + kTp4Etp2 + " --set train.micro_batch=8");
  expect_same_training(baseline(kDropless + kDenseFirst), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
  // Dropless, no ep: the etp group's rows are every routed copy of its 2 of the 4 token shares.
  const moe::Plan plan = plan_of(many);
  ASSERT_GT(plan.time.etp_bytes, 0);
  for (const auto& s : many.of("step")) {
    EXPECT_EQ(s["etp_bytes"].get<int64_t>(), static_cast<int64_t>(plan.time.etp_bytes)) << "step " << s["step"];
    EXPECT_GT(s["grad_bytes"].value("etp_copies", int64_t{0}), 0) << "step " << s["step"];
  }
  // The checkpoint holds whole experts, assembled from the first etp group's slices.
  const auto w = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
  const auto wf = moe::rt::read_safetensors(baseline(kDropless + kDenseFirst).dir / "ck" / "step-00000020" / "model.safetensors");
  for (const char* name : {"model.layers.1.block_sparse_moe.experts.5.w1.weight", "model.layers.1.block_sparse_moe.experts.5.w2.weight"})
    EXPECT_EQ(w.at(name).shape, wf.at(name).shape) << name;
}

// With ep, capacity drops and accumulation: tp 4 × ep 2, 8 processes.
TEST(TpEquivalence, Tp4Ep2Etp2WithDropsAndAccumulationMatchesOneProcess) {
  const std::string sets = " --set train.grad_accum=2";
  const TrainRun many = train("tp4ep2etp2", 8, sets + kTp4Etp2 + " --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_tp_bytes_as_planned(many);
}

// Saved at tp 4 with experts split over 2 ranks, resumed at tp 2 with them split over both: the
// losses continue as the uninterrupted run's.
TEST(TpEquivalence, ResumeFromTp4Etp2AtTp2Etp2) {
  const std::string sets = kDropless + " --set runtime.checkpoint_every=3 --set train.steps=6";
  const TrainRun tp4 = train("tp4etp2_resume_full", 4, sets + kTp4Etp2 + " --set train.micro_batch=8");
  ASSERT_EQ(tp4.rc, 0) << tp4.err;
  const std::string from = " --resume " + (tp4.dir / "ck" / "step-00000003").string();
  const TrainRun resumed = train("tp4etp2_resume_tp2", 2, sets + kEtp2 + " --set train.micro_batch=8" + from);
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  expect_resumed_losses(tp4, resumed, "tp 2 × etp 2 from tp 4 × etp 2");
}

// Split experts in a replicated placement re-planned during the run: each tp rank's EP group
// holds, routes to and moves its own slice of every slot (the same slice index on every member),
// and a replica's slices are summed over the EP group like whole experts'.
TEST(TpEquivalence, Tp2Ep2Etp2WithReplicasAndReplacementMatchesOneProcess) {
  const std::string sets = kDropless + " --set train.grad_accum=2";
  const TrainRun many = train("tp2ep2etp2rep", 4, sets + kEtp2 + " --set parallel.ep=2 --set train.micro_batch=4"
                                                        " --set placement.strategy=replicate --set placement.slots_per_rank=5"
                                                        " --set placement.replace_every=5");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_experts_moved(many);
}

// DeepSeek-style shared experts with tp: split over the tp group like a dense MLP, computed over
// every tp rank's token share (gathered, then the partial outputs scattered back), with and
// without sequence parallelism; the checkpoint holds the whole shared expert.
TEST(TpEquivalence, Tp2Ep2SharedExpertsMatchOneProcess) {
  const std::string sets = kDropless + " --set model.moe.shared_experts=1 --set model.moe.d_shared_expert=128";
  for (const std::string& sp : {std::string(), kSequenceParallel}) {
    const TrainRun many = train(sp.empty() ? "tp2ep2shared" : "tp2ep2sharedsp", 4, sets + sp + " --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4");
    expect_same_training(baseline(sets), many, Arithmetic::fast);
    expect_tp_bytes_as_planned(many);
    const auto w = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
    EXPECT_EQ(w.at("model.layers.0.block_sparse_moe.shared_expert.w1.weight").shape, (std::vector<int64_t>{128, 128})) << sp;
  }
}

// Split experts with the exchange in overlapped chunks: each chunk's rows are gathered over the
// etp group, computed and scattered back while the later chunks are in flight (forward), and
// likewise backward; flat and hierarchical (2 virtual nodes), with etp = tp and etp < tp.
TEST(TpEquivalence, EtpWithOverlapChunksMatchesOneProcess) {
  const std::string sets = " --set train.grad_accum=2";
  const TrainRun flat = train("tp2ep2etp2chunks", 4, sets + kEtp2 + " --set parallel.ep=2 --set train.micro_batch=4"
                                                           " --set parallel.overlap_chunks=3");
  expect_same_training(baseline(sets), flat, Arithmetic::fast);
  const TrainRun hier = train("tp4ep2etp2chunks", 8, sets + kTp4Etp2 + " --set parallel.ep=2 --set train.micro_batch=4"
                                                           " --set parallel.overlap_chunks=2 --set parallel.hierarchical_a2a=true"
                                                           " --set parallel.gpus_per_node=4");
  expect_same_training(baseline(sets), hier, Arithmetic::fast);
}

TEST(TpEquivalence, RefusesKvHeadsThatTpDoesNotDivide) {
  const TrainRun r = train("tp_kv", 2, " --set parallel.tp=2 --set model.n_kv_heads=1 --set train.steps=1");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("model.n_kv_heads"), std::string::npos) << r.err;
}

}  // namespace
