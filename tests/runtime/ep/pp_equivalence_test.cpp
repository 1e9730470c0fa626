// Pipeline parallelism proven equal to one process (issue 15): the real moe-runtime with the
// decoder layers split over pp stages, 1F1B over train.grad_accum micro-batches, activations and
// gradients moving between the stages by point-to-point transfers (runtime/app/pipeline_step.h).
// Without tp the arithmetic is the same per layer and the gradient norm adds the same terms in the
// same order, so the runs are held to deterministic arithmetic's bounds: the same weights to the
// bit (ep_run_support.h). With tp the fast bounds apply (see tp_equivalence_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "ep_run_support.h"
#include "pipeline_timing.h"
#include "safetensors.h"

namespace {

using namespace ep_test;

const std::string kMicro4 = " --set train.grad_accum=4";

void expect_recomputes_as_core_says(const TrainRun& run, int64_t stages, int64_t chunks, int64_t micro);

// Every step records each stage's busy and idle time and the bytes it sent: activations forward
// from every stage but the last, gradients back from every stage but the first, one [batch·seq ×
// d] float tensor per micro-batch each way, split over the tp ranks. The cost model's pp_bytes is
// a middle stage's (both ways): the same figure.
void expect_pipeline_figures(const TrainRun& run, int64_t stages, int64_t micro, int64_t batch, int64_t tp = 1) {
  const int64_t tensor = batch * 32 * 128 * 4 / tp;  // seq_len 32 (kBase), d_model 128 (tiny-cpu)
  const moe::Plan plan = plan_of(run);
  EXPECT_EQ(static_cast<int64_t>(plan.time.pp_bytes), 2 * micro * tensor);
  const auto steps = run.of("step");
  ASSERT_FALSE(steps.empty());
  for (const auto& s : steps) {
    ASSERT_TRUE(s.contains("pp_busy_ms")) << s.dump();
    ASSERT_EQ(s["pp_busy_ms"].size(), static_cast<size_t>(stages));
    ASSERT_EQ(s["pp_idle_ms"].size(), static_cast<size_t>(stages));
    ASSERT_EQ(s["pp_bytes"].size(), static_cast<size_t>(stages));
    for (int64_t st = 0; st < stages; ++st) {
      EXPECT_GT(s["pp_busy_ms"][st].get<double>(), 0.0);
      EXPECT_GE(s["pp_idle_ms"][st].get<double>(), 0.0);
      const int64_t ways = (st > 0) + (st < stages - 1);
      EXPECT_EQ(s["pp_bytes"][st].get<int64_t>(), ways * micro * tensor) << "stage " << st << ", step " << s["step"];
      EXPECT_EQ(s["pp_bytes"][st].get<int64_t>(), ways * static_cast<int64_t>(plan.time.pp_bytes) / 2) << "stage " << st;
      // The timeline: 1F1B's ops one after the other; every stage but the last recomputes each
      // micro-batch's forward before its backward (its forward is never the op just before).
      const auto& ops = s["pp_timeline"][st];
      const bool last = st == stages - 1;
      ASSERT_EQ(ops.size(), static_cast<size_t>((last ? 2 : 3) * micro)) << "stage " << st;
      double end = 0;
      int64_t forwards = 0, backwards = 0;
      for (const auto& op : ops) {
        EXPECT_GE(op[2].get<double>(), end);
        EXPECT_GE(op[3].get<double>(), op[2].get<double>());
        end = op[3];
        const int kind = op[0];
        if (kind == 0) {
          EXPECT_EQ(op[1].get<int64_t>(), forwards++);
        }
        if (kind == 2) {
          EXPECT_EQ(op[1].get<int64_t>(), backwards++);
        }
      }
      EXPECT_EQ(forwards, micro);
      EXPECT_EQ(backwards, micro);
    }
  }
  expect_recomputes_as_core_says(run, stages, 1, micro);
}

// Each stage's recorded ops are its (interleaved) 1F1B order, a recomputed forward (kind 1) right
// before exactly the backwards core's rule names (pipeline_timing.h, train.recompute stage), and
// the run records the recomputation it ran in its spec.
void expect_recomputes_as_core_says(const TrainRun& run, int64_t stages, int64_t chunks, int64_t micro) {
  EXPECT_EQ(run.of("run_start").at(0)["spec"]["train"]["recompute"], "stage");
  for (const auto& s : run.of("step"))
    for (int64_t st = 0; st < stages; ++st) {
      const std::vector<moe::PipelineOp> order = moe::interleaved_one_f_one_b(stages, st, micro, chunks);
      const std::vector<bool> again = moe::recomputed_backwards(order, moe::Recompute::stage);
      std::vector<moe::PipelineOp> ran;
      std::vector<bool> recomputed;
      bool pending = false;
      for (const auto& op : s["pp_timeline"][st]) {
        const int kind = op[0];
        const moe::PipelineOp o{kind == 0, op[1].get<int64_t>(), op.size() > 4 ? op[4].get<int64_t>() : 0};
        if (kind == 1) {
          pending = true;
          continue;
        }
        ran.push_back(o);
        recomputed.push_back(pending);
        pending = false;
      }
      EXPECT_EQ(ran, order) << "stage " << st << ", step " << s["step"];
      EXPECT_EQ(recomputed, again) << "stage " << st << ", step " << s["step"];
    }
}

// The interleaved schedule (parallel.vpp = v chunks per stage): a stage sends its chunks'
// activations, but for the model's last chunk, and their gradients, but for the model's first:
// (2·v − 1)·m tensors from the first and the last stage, 2·v·m from the others, whose figure is
// the cost model's pp_bytes. Each stage's timeline holds v·m forwards and v·m backwards.
void expect_interleaved_figures(const TrainRun& run, int64_t stages, int64_t chunks, int64_t micro, int64_t batch) {
  const int64_t tensor = batch * 32 * 128 * 4;
  EXPECT_EQ(static_cast<int64_t>(plan_of(run).time.pp_bytes), 2 * chunks * micro * tensor);
  const auto steps = run.of("step");
  ASSERT_FALSE(steps.empty());
  for (const auto& s : steps)
    for (int64_t st = 0; st < stages; ++st) {
      const int64_t sends = (st == 0 || st == stages - 1) ? 2 * chunks - 1 : 2 * chunks;
      EXPECT_EQ(s["pp_bytes"][st].get<int64_t>(), sends * micro * tensor) << "stage " << st << ", step " << s["step"];
      int64_t forwards = 0, backwards = 0;
      for (const auto& op : s["pp_timeline"][st]) {
        ASSERT_EQ(op.size(), 5u);  // [kind, micro-batch, start, end, chunk]
        EXPECT_LT(op[4].get<int64_t>(), chunks);
        forwards += op[0] == 0, backwards += op[0] == 2;
      }
      EXPECT_EQ(forwards, chunks * micro) << "stage " << st;
      EXPECT_EQ(backwards, chunks * micro) << "stage " << st;
    }
  expect_recomputes_as_core_says(run, stages, chunks, micro);
}

// The global gradient norm adds every stage's terms in one process's order: the same bits.
void expect_same_grad_norms(const TrainRun& one, const TrainRun& many) {
  const auto s1 = one.of("step"), sn = many.of("step");
  ASSERT_EQ(s1.size(), sn.size());
  for (size_t i = 0; i < s1.size(); ++i)
    EXPECT_EQ(s1[i]["grad_norm"].get<double>(), sn[i]["grad_norm"].get<double>()) << "step " << s1[i]["step"];
}

TEST(PpEquivalence, Pp2With4MicroBatchesMatchesOneProcess) {
  const TrainRun many = train("pp2", 2, kDropless + kMicro4 + " --set parallel.pp=2 --set train.micro_batch=8");
  expect_same_training(baseline(kDropless + kMicro4), many);
  expect_same_grad_norms(baseline(kDropless + kMicro4), many);
  expect_pipeline_figures(many, 2, 4, 8);
}

// Four stages of one layer each, 8 micro-batches; capacity drops, router jitter (each stage skips
// the others' draws) and aux-loss-free bias balancing (each stage updates its layers' biases).
TEST(PpEquivalence, Pp4With8MicroBatchesJitterAndBiasBalancingMatchesOneProcess) {
  const std::string sets = " --set model.n_layers=4 --set train.grad_accum=8 --set train.micro_batch=2"
                           " --set routing.jitter=0.01 --set routing.bias_balancing.enabled=true";
  const TrainRun many = train("pp4", 4, sets + " --set parallel.pp=4");
  const TrainRun one = train("pp4_one", 1, sets);
  expect_same_training(one, many);
  expect_same_grad_norms(one, many);
  expect_pipeline_figures(many, 4, 8, 2);
}

// The interleaved schedule (Megatron-Core's, parallel.vpp): 4 layers as 4 virtual stages, stage 0
// holding layers 0 and 2, stage 1 layers 1 and 3; activations go round the ring twice. The same
// bits as one process, also with capacity drops, router jitter (each chunk its own copy of the
// stream, skipping the other layers' draws) and bias balancing.
const std::string kFourLayers = " --set model.n_layers=4";

TEST(PpEquivalence, Pp2Vpp2With4MicroBatchesMatchesOneProcess) {
  const std::string sets = kDropless + kMicro4 + kFourLayers;
  const TrainRun many = train("pp2vpp2", 2, sets + " --set parallel.pp=2 --set parallel.vpp=2 --set train.micro_batch=8");
  expect_same_training(baseline(sets), many);
  expect_same_grad_norms(baseline(sets), many);
  expect_interleaved_figures(many, 2, 2, 4, 8);
  EXPECT_NE(many.err.find("pipeline stage 0 of 2: decoder layers 0-0, 2-2"), std::string::npos) << many.err;
}

TEST(PpEquivalence, Pp2Vpp2Ep2WithDropsJitterAndBiasBalancingMatchesOneProcess) {
  const std::string sets = kMicro4 + kFourLayers + " --set routing.jitter=0.01 --set routing.bias_balancing.enabled=true";
  const TrainRun many = train("pp2vpp2ep2", 4, sets + " --set parallel.pp=2 --set parallel.vpp=2 --set parallel.ep=2"
                                                      " --set train.micro_batch=4");
  const TrainRun one = train("pp2vpp2ep2_one", 1, sets + " --set train.micro_batch=8");
  expect_same_training(one, many);
  expect_same_grad_norms(one, many);
  expect_interleaved_figures(many, 2, 2, 4, 4);
}

// Three stages of two chunks (6 layers), 6 micro-batches, a tied embedding: the middle stage sends
// both ways for every chunk; validation runs every chunk in turn.
TEST(PpEquivalence, Pp3Vpp2TiedEmbeddingsAndValidationMatchOneProcess) {
  const std::string sets = kDropless + " --set model.n_layers=6 --set train.grad_accum=6 --set model.tie_embeddings=true"
                                       " --set train.eval_every=5";
  const TrainRun many = train("pp3vpp2", 3, sets + " --set parallel.pp=3 --set parallel.vpp=2 --set train.micro_batch=2");
  const TrainRun one = train("pp3vpp2_one", 1, sets + " --set train.micro_batch=2");
  expect_same_training(one, many);
  expect_same_grad_norms(one, many);
  expect_interleaved_figures(many, 3, 2, 6, 2);
  std::vector<double> v1, vn;  // periodic (steps 5, 10, 15) and final validation losses
  for (const auto& [run, out] : {std::pair{&one, &v1}, std::pair{&many, &vn}}) {
    for (const auto& r : run->of("step"))
      if (r.contains("val_loss")) out->push_back(r["val_loss"]);
    out->push_back(run->of("run_end").at(0)["val_loss"]);
  }
  ASSERT_EQ(v1.size(), 4u);
  ASSERT_EQ(vn.size(), v1.size());
  for (size_t i = 0; i < v1.size(); ++i) EXPECT_NEAR(vn[i], v1[i], 1e-12 * v1[i]) << "validation " << i;
}

// A checkpoint of a run with chunks holds the whole model: one process resumes it.
TEST(PpEquivalence, ResumeFromPp2Vpp2InOneProcess) {
  const std::string sets = kDropless + kMicro4 + kFourLayers + " --set runtime.checkpoint_every=3 --set train.steps=6";
  const TrainRun many = train("pp2vpp2_resume_full", 2, sets + " --set parallel.pp=2 --set parallel.vpp=2 --set train.micro_batch=8");
  ASSERT_EQ(many.rc, 0) << many.err;
  const TrainRun resumed = train("pp2vpp2_resumed", 1, sets + " --set train.micro_batch=8 --resume " +
                                                          (many.dir / "ck" / "step-00000003").string());
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  expect_resumed_losses(many, resumed, "one process from pp 2 × vpp 2");
}

TEST(PpEquivalence, RefusesAnInterleavedScheduleWhoseMicroBatchesPpDoesNotDivide) {
  const TrainRun r = train("pp2vpp2_m3", 2, kFourLayers + " --set parallel.pp=2 --set parallel.vpp=2 --set train.grad_accum=3"
                                                          " --set train.steps=1");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("parallel.vpp: the interleaved schedule needs train.grad_accum (3) to be a multiple of parallel.pp (2)"),
            std::string::npos) << r.err;
}

// A first stage without MoE layers (layer 0 dense) and tied embeddings: the first stage's
// embedding and the last stage's head are one tensor, its two gradients summed.
TEST(PpEquivalence, Pp2TiedEmbeddingsAndADenseFirstStageMatchesOneProcess) {
  const std::string sets = kDropless + kMicro4 + " --set model.tie_embeddings=true --set model.moe.first_dense_layers=1"
                                                 " --set model.d_ff=256";
  const TrainRun many = train("pp2tied", 2, sets + " --set parallel.pp=2 --set train.micro_batch=8");
  expect_same_training(baseline(sets), many);
}

// An explicit, uneven split (parallel.pp_layers): 3 layers as 2 + 1; the cost model prices the
// same stages (its pp_bytes still equal the records).
TEST(PpEquivalence, Pp2WithAnExplicitUnevenSplitMatchesOneProcess) {
  const std::string sets = kDropless + kMicro4 + " --set model.n_layers=3";
  const TrainRun many = train("pp2split", 2, sets + " --set parallel.pp=2 --set parallel.pp_layers=[2,1] --set train.micro_batch=8");
  expect_same_training(baseline(sets), many);
  expect_pipeline_figures(many, 2, 4, 8);
  EXPECT_NE(many.err.find("pipeline stage 0 of 2: decoder layers 0-1"), std::string::npos) << many.err;
  EXPECT_NE(many.err.find("pipeline stage 1 of 2: decoder layers 2-2"), std::string::npos) << many.err;
}

TEST(PpEquivalence, Pp2Ep2MatchesOneProcess) {
  const TrainRun many = train("pp2ep2", 4, kMicro4 + " --set parallel.pp=2 --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_training(baseline(kMicro4), many);
  expect_same_grad_norms(baseline(kMicro4), many);
}

// Re-placement under pp (placement.replace_every): every rank plans every MoE layer from the
// stages' summed loads, so the decision is the world's, and each stage moves its own layers'
// experts (values and AdamW moments). The math does not change; the plans are those of the same
// run without pp (the same loads), with the same bytes moved, and both stages' layers are in the
// records. Each stage routes by
// its own layers' plan: on the sampled steps the rows every rank sent to each slot, added up by the
// slot's expert in the recorded plan, are that layer's kept assignments (twice them on the first
// stage, whose forwards are recomputed before their backwards).
TEST(PpEquivalence, Pp2Ep2WithReplicasReplacedEveryFiveStepsMatchesOneProcess) {
  const std::string replace = " --set parallel.ep=2 --set train.micro_batch=4 --set placement.strategy=replicate"
                              " --set placement.slots_per_rank=5 --set placement.replace_every=5 --set placement.stats_every=5";
  const TrainRun many = train("pp2ep2replace", 4, kMicro4 + replace + " --set parallel.pp=2");
  expect_same_training(baseline(kMicro4), many);
  expect_same_grad_norms(baseline(kMicro4), many);
  size_t sampled = 0;
  for (const auto& a : many.of("a2a")) {
    if (a["phase"] != "dispatch" || a["pass"] != "fwd" || !a.contains("rank_slot_rows")) continue;
    const int64_t step = a["step"], layer = a["layer"];
    nlohmann::json plan;  // the layer's placement in force at `step`
    for (const auto& p : many.of("placement"))
      if (p["layer"] == layer && p["step"].get<int64_t>() <= step) plan = p;
    std::vector<int64_t> by_expert(8, 0), kept(8, 0);
    const size_t slots = plan["phy_to_log"].size();
    for (size_t i = 0; i < a["rank_slot_rows"].size(); ++i)
      by_expert[plan["phy_to_log"][i % slots].get<size_t>()] += a["rank_slot_rows"][i].get<int64_t>();
    for (const auto& e : many.of("expert_load"))
      if (e["step"] == step && e["layer"] == layer)
        for (size_t x = 0; x < 8; ++x) kept[x] = e["counts"][x].get<int64_t>() - e["dropped"][x].get<int64_t>();
    const int64_t times = layer == 0 ? 2 : 1;  // layer 0 is on the first stage
    for (size_t x = 0; x < 8; ++x) EXPECT_EQ(by_expert[x], times * kept[x]) << "step " << step << ", layer " << layer << ", expert " << x;
    ++sampled;
  }
  EXPECT_EQ(sampled, 8u);  // steps 5, 10, 15, 20 × 2 layers
  const TrainRun flat = train("ep2replace", 2, kMicro4 + replace);
  ASSERT_EQ(flat.rc, 0) << flat.err;
  const auto plans = many.of("placement"), flat_plans = flat.of("placement");
  ASSERT_EQ(plans.size(), flat_plans.size());
  int64_t moved = 0;
  std::set<int64_t> layers;
  for (size_t i = 0; i < plans.size(); ++i) {
    EXPECT_EQ(plans[i]["step"], flat_plans[i]["step"]);
    EXPECT_EQ(plans[i]["layer"], flat_plans[i]["layer"]);
    EXPECT_EQ(plans[i]["phy_to_log"], flat_plans[i]["phy_to_log"]) << "step " << plans[i]["step"];
    // The stages' moves add up to the one EP group's of the run without pp.
    EXPECT_EQ(plans[i].value("migrated_bytes", int64_t{-1}), flat_plans[i].value("migrated_bytes", int64_t{-1}));
    layers.insert(plans[i]["layer"].get<int64_t>());
    if (plans[i]["step"].get<int64_t>() > 0) moved += plans[i].value("migrated_bytes", int64_t{0});
  }
  EXPECT_EQ(layers, (std::set<int64_t>{0, 1}));
  EXPECT_GT(plans.size(), 2u) << "no re-placement";
  EXPECT_GT(moved, 0) << "no expert moved: the test would prove nothing";
}

// Every dimension at once: dp 2 × tp 2 × pp 2 × ep 2 = 16 ranks (tp fastest, pp slowest).
TEST(PpEquivalence, Dp2Tp2Pp2Ep2MatchesOneProcess) {
  const std::string sets = kDropless + kMicro4 + " --set model.moe.first_dense_layers=1 --set model.d_ff=256";
  const TrainRun many = train("dp2tp2pp2ep2", 16, sets + " --set parallel.dp=2 --set parallel.tp=2 --set parallel.pp=2"
                                                       " --set parallel.ep=2 --set train.micro_batch=2"
                                                       " --set cluster.nodes.0.slots=16");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_pipeline_figures(many, 2, 4, 2, 2);
}

// Sequence parallelism with stages: a boundary tensor is the rank's share of the sequences, sent
// as it is (the same bytes as tp's scatter-gather, no all-gather at the receiver).
TEST(PpEquivalence, Tp2Pp2SequenceParallelMatchesOneProcess) {
  const std::string sets = kDropless + kMicro4 + " --set model.moe.first_dense_layers=1 --set model.d_ff=256";
  const TrainRun many = train("tp2pp2sp", 4, sets + " --set parallel.tp=2 --set parallel.pp=2 --set train.micro_batch=8"
                                                   " --set parallel.sequence_parallel=true");
  expect_same_training(baseline(sets), many, Arithmetic::fast);
  expect_pipeline_figures(many, 2, 4, 8, 2);
}

// Tied embeddings with tp: both stages hold the vocab-parallel embedding's slices, the checkpoint
// writes the logical tensor once (and one process resumes from it).
TEST(PpEquivalence, Tp2Pp2TiedEmbeddingsMatchOneProcess) {
  const std::string sets = kDropless + kMicro4 + " --set model.tie_embeddings=true --set runtime.checkpoint_every=10";
  const TrainRun many = train("tp2pp2tied", 4, sets + " --set parallel.tp=2 --set parallel.pp=2 --set train.micro_batch=8");
  const TrainRun& one = baseline(sets);
  expect_same_training(one, many, Arithmetic::fast);
  const auto w = moe::rt::read_safetensors(many.dir / "ck" / "step-00000020" / "model.safetensors");
  const auto wf = moe::rt::read_safetensors(one.dir / "ck" / "step-00000020" / "model.safetensors");
  ASSERT_EQ(w.size(), wf.size());
  EXPECT_EQ(w.at("model.embed_tokens.weight").shape, wf.at("model.embed_tokens.weight").shape);
  const TrainRun resumed = train("tp2pp2tied_one", 1, sets + " --set train.steps=21 --set train.micro_batch=8 --resume " +
                                                          (many.dir / "ck" / "step-00000020").string());
  ASSERT_EQ(resumed.rc, 0) << resumed.err;
  EXPECT_EQ(resumed.of("step").size(), 1u);
}

// Validation (every 2 steps and at the end) goes through the stages; the loss is one process's.
TEST(PpEquivalence, ValidationOnPp2Ep2MatchesOneProcess) {
  const std::string sets = kDropless + " --set train.steps=6 --set train.eval_every=2 --set train.grad_accum=2";
  const TrainRun one = train("pp_val_one", 1, sets + " --set train.micro_batch=8");
  const TrainRun many = train("pp_val_pp2ep2", 4, sets + " --set parallel.pp=2 --set parallel.ep=2 --set train.micro_batch=4");
  expect_same_validation(one, many, 1e-12);
}

// Saved at dp 2 × ep 2, resumed at tp 2 × pp 2 (and that run's checkpoint by one process): the
// losses continue as the uninterrupted run's.
TEST(PpEquivalence, ResumeFromDp2Ep2AtTp2Pp2) {
  const std::string sets = kDropless + " --set model.moe.first_dense_layers=1 --set model.d_ff=256 --set train.grad_accum=2"
                                       " --set runtime.checkpoint_every=3 --set train.steps=6";
  const TrainRun full = train("pp_resume_full", 4, sets + " --set parallel.dp=2 --set parallel.ep=2 --set train.micro_batch=2");
  ASSERT_EQ(full.rc, 0) << full.err;
  const std::string from = " --resume " + (full.dir / "ck" / "step-00000003").string();
  const TrainRun piped = train("pp_resume_tp2pp2", 4, sets + " --set parallel.tp=2 --set parallel.pp=2 --set train.micro_batch=8" + from);
  ASSERT_EQ(piped.rc, 0) << piped.err;
  expect_resumed_losses(full, piped, "tp 2 × pp 2");
  // The pipeline run's checkpoint holds every stage's tensors, whole: one process loads it.
  const auto w = moe::rt::read_safetensors(piped.dir / "ck" / "step-00000006" / "model.safetensors");
  const auto wf = moe::rt::read_safetensors(full.dir / "ck" / "step-00000006" / "model.safetensors");
  ASSERT_EQ(w.size(), wf.size());
  for (const auto& [name, tensor] : wf) {
    ASSERT_TRUE(w.count(name)) << name;
    EXPECT_EQ(w.at(name).shape, tensor.shape) << name;
  }
  const std::string from_piped = " --resume " + (piped.dir / "ck" / "step-00000006").string();
  const TrainRun one = train("pp_resume_one", 1, sets + " --set train.steps=8 --set train.micro_batch=8" + from_piped);
  ASSERT_EQ(one.rc, 0) << one.err;
  EXPECT_EQ(one.of("step").size(), 2u);
}

TEST(PpEquivalence, RefusesMoreStagesThanLayers) {
  const TrainRun r = train("pp_too_many", 4, " --set parallel.pp=4 --set train.steps=1");  // kBase: 2 layers
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("parallel.pp: 4 exceeds model.n_layers (2)"), std::string::npos) << r.err;
}

}  // namespace
