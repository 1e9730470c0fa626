// What moe-runtime's CPU backend trains (cpu_runtime_limits.h): each refusal names its field, tp
// ep/dp/pp need one process per rank, and the local fit counts ranks per core.
#include <gtest/gtest.h>

#include "cpu_runtime_limits.h"

using namespace moe;

namespace {
JobSpec tiny() {
  JobSpec s;  // the defaults: a small gqa model in fp32 on the cpu backend
  s.train.micro_batch = 8;
  return s;
}
bool starts(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }
}  // namespace

TEST(CpuRuntimeLimits, RefusalsNameTheirField) {
  JobSpec s = tiny();
  EXPECT_EQ(cpu_training_refusal(s, false), "");
  s.parallel.tp = 2;
  EXPECT_TRUE(starts(cpu_model_refusal(s, false), "parallel.tp: 2 — tensor parallelism needs one process per rank"));
  EXPECT_EQ(cpu_model_refusal(s, true), "");
  s.model.n_kv_heads = 1;
  EXPECT_TRUE(starts(cpu_model_refusal(s, true), "parallel.tp: 2 does not divide model.n_kv_heads (1)"));
  s = tiny();
  s.parallel.tp = 2;
  s.train.micro_batch = 3;
  EXPECT_TRUE(starts(cpu_training_refusal(s, true), "train.micro_batch: 3 is not divisible by parallel.tp (2)"));
  s = tiny();
  s.parallel.pp = 2;
  EXPECT_TRUE(starts(cpu_model_refusal(s, false), "parallel.pp: 2 — pipeline parallelism needs one process per rank"));
  EXPECT_EQ(cpu_model_refusal(s, true), "");
  s.model.n_layers = 1;
  EXPECT_TRUE(starts(cpu_model_refusal(s, true), "parallel.pp: 2 exceeds model.n_layers (1)"));
  s = tiny();
  s.parallel.pp = 2;
  s.placement.replace_every = 10;
  EXPECT_EQ(cpu_training_refusal(s, true), "");  // re-placement under pp
  s = tiny();
  s.runtime.dtype = "bf16";
  EXPECT_TRUE(starts(cpu_model_refusal(s, true), "runtime.dtype: bf16"));
  // The cost model's keys: refused by the runtime on either backend, naming the field.
  s = tiny();
  s.runtime.fp8 = "hybrid";
  EXPECT_TRUE(starts(unmodelled_in_runtime(s), "runtime.fp8: hybrid — moe-runtime has no FP8 GEMMs"));
  s = tiny();
  s.parallel.pp = 2, s.parallel.vpp = 2;  // the interleaved schedule runs, with pp dividing the micro-batches
  EXPECT_EQ(cpu_model_refusal(s, true), "");
  s.train.grad_accum = 3;
  EXPECT_TRUE(starts(cpu_training_refusal(s, true), "parallel.vpp: the interleaved schedule needs train.grad_accum (3)"));
  s.train.grad_accum = 4;
  EXPECT_EQ(cpu_training_refusal(s, true), "");
  s.parallel.vpp = 3;
  EXPECT_TRUE(starts(cpu_model_refusal(s, true), "parallel.vpp: 2 stages × 3 chunks exceed model.n_layers (4)"));
  s = tiny();
  s.parallel.batch_overlap = true;
  EXPECT_TRUE(starts(cpu_model_refusal(s, true), "parallel.batch_overlap: moe-runtime overlaps the all-to-all within"));
  EXPECT_EQ(unmodelled_in_runtime(tiny()), "");
  // Experts split over a divisor of tp, in any placement, with overlap chunks.
  s = tiny();
  s.parallel.tp = 4, s.parallel.etp = 2, s.placement.strategy = "replicate", s.placement.slots_per_rank = 3;
  s.parallel.ep = 4;
  EXPECT_EQ(cpu_model_refusal(s, true), "");
  s.parallel.etp = 3;
  EXPECT_TRUE(starts(cpu_model_refusal(s, true), "parallel.etp: 3 must divide parallel.tp (4)"));
  s.parallel.etp = 2, s.parallel.overlap_chunks = 2;
  EXPECT_EQ(cpu_model_refusal(s, true), "");
  s = tiny();
  s.model.vocab_size = 100;
  EXPECT_TRUE(starts(cpu_training_refusal(s, true), "model.vocab_size: 100"));
}

// moe-runtime's stages keep one micro-batch's activations: with pp > 1 it runs none as stage.
TEST(CpuRuntimeLimits, PipelineStagesRecompute) {
  JobSpec s = tiny();
  EXPECT_EQ(runtime_recompute(s), "none");
  s.parallel.pp = 2;
  EXPECT_EQ(runtime_recompute(s), "stage");
  s.train.recompute = "stage";
  EXPECT_EQ(runtime_recompute(s), "stage");
  s.parallel.pp = 1;
  EXPECT_EQ(runtime_recompute(s), "stage");
}

TEST(CpuRuntimeLimits, LocalFitCountsRanksPerCore) {
  JobSpec s = tiny();
  s.parallel.ep = 4;
  s.parallel.tp = 2;
  LocalRunFit fit = local_run_fit(s, 16);
  EXPECT_TRUE(fit.runnable);
  EXPECT_EQ(fit.text, "runs here: 8 rank(s) on 16 core(s)");
  fit = local_run_fit(s, 2);
  EXPECT_TRUE(fit.runnable);
  EXPECT_EQ(fit.text, "runs here, oversubscribed: 8 ranks share 2 core(s), each rank about 4× slower than on a core of its own");
  s.parallel.pp = 2;
  fit = local_run_fit(s, 16);
  EXPECT_TRUE(fit.runnable);
  EXPECT_EQ(fit.text, "runs here: 16 rank(s) on 16 core(s); its pipeline stages recompute forwards (train.recompute stage)");
  s.train.recompute = "stage";
  EXPECT_EQ(local_run_fit(s, 16).text, "runs here: 16 rank(s) on 16 core(s)");
  s.train.recompute = "full";
  EXPECT_EQ(local_run_fit(s, 16).text,
            "cannot run here: train.recompute: full — moe-runtime recomputes whole pipeline stages (stage), not layer by layer; use stage or none");
  s.train.recompute = "none";
  s.model.n_layers = 1;
  fit = local_run_fit(s, 16);
  EXPECT_FALSE(fit.runnable);
  EXPECT_TRUE(starts(fit.text, "cannot run here: parallel.pp: 2 exceeds")) << fit.text;
  s = tiny();
  s.runtime.backend = "cuda";
  EXPECT_FALSE(local_run_fit(s, 16).runnable);
}
