// The `runtime.backend: cuda` seam (runtime/cuda/cuda_training.h) on any machine: what the CUDA
// training path refuses, each with one line naming the field, and what run_cuda_training says when
// it cannot start here — "built without CUDA" in a build without it, "no GPU found" on a CUDA
// build without a device. (On a GPU machine the last check is left to the gpu-labelled tests.)
#include <gtest/gtest.h>

#include "cuda_training.h"
#include "error.h"
#include "job_spec.h"

namespace moe::rt::cuda {
namespace {

JobSpec tiny(const std::vector<std::string>& sets) {
  const auto preset = std::filesystem::path(MOE_SOURCE_DIR) / "resources" / "presets" / "tiny-cpu.json";
  std::vector<std::string> all{"runtime.backend=cuda"};
  all.insert(all.end(), sets.begin(), sets.end());
  return load_spec(preset, all);
}

std::string refusal(const JobSpec& spec, const CudaTrainOptions& o = {}) {
  try {
    check_cuda_training_spec(spec, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CudaTrainingCheck, AcceptsTinyCpuInFp32AndBf16) {
  EXPECT_EQ(refusal(tiny({})), "");
  EXPECT_EQ(refusal(tiny({"runtime.dtype=bf16"})), "");
}

TEST(CudaTrainingCheck, RefusalsNameTheField) {
  EXPECT_EQ(refusal(tiny({"runtime.dtype=fp16"})).rfind("runtime.dtype: fp16", 0), 0u);
  EXPECT_EQ(refusal(tiny({"parallel.ep=2"})).rfind("parallel:", 0), 0u);
  CudaTrainOptions o;
  o.multi_process = true;
  EXPECT_EQ(refusal(tiny({}), o).rfind("parallel:", 0), 0u);
  o = {};
  o.resume = "/tmp/somewhere";
  EXPECT_EQ(refusal(tiny({}), o).rfind("--resume:", 0), 0u);
  o = {};
  o.checkpoint_dir = "/tmp/somewhere";
  EXPECT_EQ(refusal(tiny({}), o).rfind("--checkpoint-dir:", 0), 0u);
  JobSpec cpu = tiny({"runtime.backend=cpu"});
  EXPECT_EQ(refusal(cpu).rfind("runtime.backend:", 0), 0u);
  for (const auto& m : {refusal(tiny({"runtime.dtype=fp16"})), refusal(tiny({"parallel.ep=2"}))})
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(CudaTrainingCheck, RunRefusesWithOneLineWhenItCannotStart) {
  std::string message;
  try {
    run_cuda_training(tiny({"train.steps=1"}), {});
  } catch (const Error& e) {
    message = e.what();
  }
  if (!cuda_backend_built()) {
    EXPECT_EQ(message, "runtime.backend=cuda: this moe-runtime was built without CUDA");
  } else if (message.find("no GPU") == std::string::npos) {
    GTEST_SKIP() << "a GPU is present: the CUDA training run is checked by the gpu-labelled tests";
  } else {
    EXPECT_EQ(message, "runtime.backend=cuda: no GPU found (cudaGetDeviceCount failed or found none)");
  }
}

}  // namespace
}  // namespace moe::rt::cuda
