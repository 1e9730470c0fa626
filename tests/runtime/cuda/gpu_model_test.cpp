// The CUDA model and training path against the CPU runtime (label gpu, skipped without a GPU):
//   - one forward + backward of a tiny Mixtral model per routing mode (CudaModel vs MixtralModel
//     from the same seed): the loss parts, the per-layer expert counts, and every parameter's
//     gradient — fp32 within 1e-4 relative; bf16 (weights rounded to bf16 on both sides): the LM
//     loss within 2e-2, aux/z within 2e-1, all gradients as one vector within 0.15 (near-tie
//     routing flips, see check_model);
//   - 20 training steps of tiny-cpu, `moe-runtime train`'s two paths (Trainer vs
//     run_cuda_training) from the same seed: step 1's loss within 1e-5 (fp32; nothing has been
//     updated yet), every step within 5e-3 relative (fp32) or 5e-2 (bf16), the CUDA stream's
//     records are the CPU stream's record types, and its checkpoint (the CPU path's files) loads
//     at step 20 with weights whose distance to the CPU run's is under 5% (fp32) / 20% (bf16) of
//     how far the CPU run moved them.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cuda_model.h"
#include "cuda_training.h"
#include "gpu_test_util.h"
#include "model_state.h"
#include "trainer.h"

namespace moe::rt::cuda::test {
namespace {

JobSpec tiny(const std::vector<std::string>& sets) {
  const auto preset = std::filesystem::path(MOE_SOURCE_DIR) / "resources" / "presets" / "tiny-cpu.json";
  return load_spec(preset, sets);
}

float round_bf16(float v) {  // round to nearest even, as __float2bfloat16 does for finite values
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&v, &u, 4);
  return v;
}

template <typename T>
void check_model(const std::vector<std::string>& sets) {
  const JobSpec spec = tiny(sets);
  const double tol = std::is_same_v<T, float> ? 1e-4 : 2e-2;
  MixtralModel ref(spec), mirror(spec);  // the same seeded weights
  if constexpr (!std::is_same_v<T, float>)
    for (MixtralModel* m : {&ref, &mirror})
      for (Param* p : m->named_params())
        for (float& v : p->value) v = round_bf16(v);
  const int64_t B = 2, S = spec.model.seq_len;
  auto tokens = randint(B * S, 256), targets = randint(B * S, 256);
  MoeLayerOptions mo;  // training: jitter on where the spec sets it (keys from the same rng)
  std::mt19937_64 cpu_rng(rng()()), gpu_rng = cpu_rng;
  const ForwardResult rc = ref.forward(tokens.data(), targets.data(), B, mo, cpu_rng);
  ref.backward();

  Blas blas;
  CudaModel<T> gpu(mirror, blas);
  CudaMoeOptions go;
  const ForwardResult rg = gpu.forward(tokens.data(), targets.data(), B, go, &gpu_rng);
  gpu.backward();
  gpu.download_grads(mirror);

  std::string what;
  for (const auto& s : sets) what += s + " ";
  EXPECT_NEAR(rg.lm_loss, rc.lm_loss, tol * rc.lm_loss) << what;
  EXPECT_NEAR(rg.aux_loss, rc.aux_loss, 10 * tol * std::abs(rc.aux_loss) + 1e-9) << what;
  EXPECT_NEAR(rg.z_loss, rc.z_loss, 10 * tol * std::abs(rc.z_loss) + 1e-9) << what;
  ASSERT_EQ(rg.routing.size(), rc.routing.size());
  if constexpr (std::is_same_v<T, float>)
    for (size_t l = 0; l < rc.routing.size(); ++l) {
      EXPECT_EQ(rg.routing[l].stats.counts, rc.routing[l].stats.counts) << what << "layer " << rc.routing[l].layer;
      EXPECT_EQ(rg.routing[l].stats.dropped, rc.routing[l].stats.dropped) << what << "layer " << rc.routing[l].layer;
    }
  const auto rp = ref.named_params(), mp = mirror.named_params();
  ASSERT_EQ(rp.size(), mp.size());
  if constexpr (std::is_same_v<T, float>) {
    for (size_t i = 0; i < rp.size(); ++i) EXPECT_LE(rel_err(mp[i]->grad, rp[i]->grad), tol) << what << rp[i]->name;
  } else {
    // bf16 activations move the router's logits by ~1e-3, enough to flip a near-tie top-k choice
    // for a few tokens, whose expert gradients then differ wholesale: compare all gradients as one
    // vector (a flipped token shifts it by a few percent; a wrong kernel by far more).
    std::vector<float> all_gpu, all_cpu;
    for (size_t i = 0; i < rp.size(); ++i) {
      all_gpu.insert(all_gpu.end(), mp[i]->grad.begin(), mp[i]->grad.end());
      all_cpu.insert(all_cpu.end(), rp[i]->grad.begin(), rp[i]->grad.end());
    }
    EXPECT_LE(rel_err(all_gpu, all_cpu), 0.15) << what;
  }
}

const std::vector<std::vector<std::string>> kModes = {
    {"model.n_layers=2"},                                                   // top-2, capacity 1.25, position
    {"model.n_layers=2", "routing.capacity_factor=0"},                      // dropless (grouped GEMM)
    {"model.n_layers=2", "model.moe.top_k=1", "routing.capacity_factor=1"},  // Switch
    {"model.n_layers=2", "routing.capacity_factor=0.5", "routing.drop_policy=probability"},
    {"model.n_layers=2", "routing.type=expert_choice"},
    {"model.n_layers=2", "routing.score=sigmoid", "routing.capacity_factor=0", "routing.bias_balancing.enabled=true"},
    {"model.n_layers=3", "model.moe.first_dense_layers=1", "model.d_ff=192", "model.moe.shared_experts=1",
     "model.moe.d_shared_expert=64"},
    {"model.n_layers=2", "routing.jitter=0.05"},  // training jitter, the CPU router's keys
};

TEST(GpuModel, ForwardBackwardMatchesTheCpuModelPerRoutingModeFp32) {
  MOE_REQUIRE_GPU();
  for (const auto& sets : kModes) check_model<float>(sets);
}

TEST(GpuModel, ForwardBackwardMatchesTheCpuModelPerRoutingModeBf16) {
  MOE_REQUIRE_GPU();
  for (const auto& sets : kModes) check_model<bf16>(sets);
}

std::vector<nlohmann::json> read_records(const std::string& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<double> step_losses(const std::vector<nlohmann::json>& records) {
  std::vector<double> out;
  for (const auto& r : records)
    if (r["type"] == "step") out.push_back(r["loss"].get<double>());
  return out;
}

TEST(GpuTraining, TwentyStepsOfTinyCpuFollowTheCpuLosses) {
  MOE_REQUIRE_GPU();
  const std::string dir = ::testing::TempDir();
  JobSpec cpu_spec = tiny({"train.steps=20", "train.eval_every=0"});
  TrainerOptions to;
  to.metrics = dir + "/cpu_steps.jsonl";
  to.checkpoint_dir = dir + "/cpu_ck";
  to.val_bytes_final = 4096;
  ASSERT_EQ(Trainer(cpu_spec, to).run().status, "completed");
  const auto cpu = step_losses(read_records(to.metrics));
  ASSERT_EQ(cpu.size(), 20u);
  for (const char* dtype : {"fp32", "bf16"}) {
    JobSpec spec = tiny({"train.steps=20", "train.eval_every=0", "runtime.backend=cuda",
                         std::string("runtime.dtype=") + dtype});
    CudaTrainOptions co;
    co.metrics = dir + "/cuda_steps_" + dtype + ".jsonl";
    co.checkpoint_dir = dir + "/cuda_ck_" + dtype;
    co.save_checkpoint = [&](MixtralModel& m, AdamW& opt, int64_t step, int64_t position) {
      RunState st;
      st.step = step, st.data_position = position;
      return save_training_checkpoint(co.checkpoint_dir, m, &opt, st).string();
    };
    const CudaTrainResult r = run_cuda_training(spec, co);
    ASSERT_EQ(r.status, "completed") << r.reason;
    const auto records = read_records(co.metrics);
    ASSERT_FALSE(records.empty());
    EXPECT_EQ(records.front()["type"], "run_start");
    EXPECT_EQ(records.front()["backend"], "cuda");
    EXPECT_EQ(records.back()["type"], "run_end");
    const auto gpu = step_losses(records);
    ASSERT_EQ(gpu.size(), 20u) << dtype;
    const bool fp32 = std::string(dtype) == "fp32";
    if (fp32) {
      EXPECT_NEAR(gpu[0], cpu[0], 1e-5 * cpu[0]) << "step 1 (before any update)";
    }
    for (size_t i = 0; i < cpu.size(); ++i)
      EXPECT_NEAR(gpu[i], cpu[i], (fp32 ? 5e-3 : 5e-2) * cpu[i]) << dtype << " step " << i + 1;
    std::fprintf(stderr, "[ %s ] step 1: cpu %.6f cuda %.6f | step 20: cpu %.6f cuda %.6f\n", dtype, cpu[0], gpu[0],
                 cpu[19], gpu[19]);
    // The checkpoint: the CPU path's files, at step 20, weights near the CPU run's and moved from init.
    bool has_checkpoint_record = false;
    for (const auto& rec : records) has_checkpoint_record |= rec["type"] == "checkpoint";
    EXPECT_TRUE(has_checkpoint_record) << dtype;
    const LoadedCheckpoint ck_gpu = load_checkpoint(co.checkpoint_dir, true), ck_cpu = load_checkpoint(to.checkpoint_dir, true);
    MixtralModel from_gpu(cpu_spec), from_cpu(cpu_spec), init(cpu_spec);
    AdamW opt(from_gpu.named_params(), AdamWConfig::from_spec(cpu_spec.train));
    load_model_weights(ck_gpu, from_gpu);
    load_model_weights(ck_cpu, from_cpu);
    EXPECT_EQ(load_run_state(ck_gpu, opt).step, 20) << dtype;
    std::vector<float> wg, wc, w0;
    for (Param* p : from_gpu.named_params()) wg.insert(wg.end(), p->value.begin(), p->value.end());
    for (Param* p : from_cpu.named_params()) wc.insert(wc.end(), p->value.begin(), p->value.end());
    for (Param* p : init.named_params()) w0.insert(w0.end(), p->value.begin(), p->value.end());
    EXPECT_GT(rel_err(wc, w0), 1e-2) << "the CPU run's weights moved";
    EXPECT_LE(rel_err(wg, wc), (fp32 ? 0.05 : 0.2) * rel_err(wc, w0)) << dtype << ": GPU and CPU weights after 20 steps";
  }
}

}  // namespace
}  // namespace moe::rt::cuda::test
