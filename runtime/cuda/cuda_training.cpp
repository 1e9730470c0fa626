// run_cuda_training (see cuda_training.h): the CPU trainer's loop (runtime/app/trainer.cpp) with
// the model on the GPU — same data order (BatchSampler from the seed), same micro-batch averaging,
// global-norm clipping, AdamW at the scheduled lr, balancing-bias updates, and the same metrics
// records (run_start, step, expert_load, run_end). Not yet: validation, checkpoints, --resume,
// multi-GPU (check_cuda_training_spec refuses what is missing).
#include "cuda_training.h"

#include <cuda_bf16.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include "batch_sampler.h"
#include "byte_data.h"
#include "cuda_check.h"
#include "cuda_model.h"
#include "error.h"
#include "metrics_stream.h"
#include "schedule.h"
#include "stream.h"

namespace moe::rt::cuda {

bool cuda_backend_built() {
  return true;
}

namespace {

std::string hostname() {
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

template <typename T>
CudaTrainResult train(const JobSpec& spec, const CudaTrainOptions& options) {
  const DataSplit data = load_training_data(spec);
  // The seeded weights under their Hugging Face names. MixtralModel itself computes in fp32 only
  // (it refuses other dtypes), so it is built from an fp32 copy of the spec.
  JobSpec host_spec = spec;
  host_spec.runtime.dtype = "fp32";
  MixtralModel cpu(host_spec);
  Stream stream;
  Blas blas;
  blas.set_stream(stream.get());
  CudaModel<T> model(cpu, blas);
  const AdamWConfig adam = AdamWConfig::from_spec(spec.train);
  const LrSchedule schedule = LrSchedule::from_spec(spec.train);
  int device = 0;
  cudaDeviceProp prop{};
  MOE_CUDA_CHECK(cudaGetDevice(&device));
  MOE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));

  MetricsStream metrics(options.metrics);
  RunStartRecord start;
  start.spec = spec_to_json(spec).dump();
  start.world_size = 1;
  start.backend = spec.runtime.backend;
  start.hosts = nlohmann::json::array({hostname()}).dump();
  start.params = cpu.num_params(), start.data = data.origin, start.device = prop.name, start.dtype = spec.runtime.dtype;
  start.train_bytes = static_cast<int64_t>(data.train.size()), start.val_bytes = static_cast<int64_t>(data.val.size());
  metrics.run_start(start);
  CudaTrainResult result;
  int64_t step_done = 0;
  auto finish = [&](const std::string& status, const std::string& reason) {
    result.status = status, result.reason = reason, result.steps = step_done;
    metrics.run_end(status, step_done, reason);
    return result;
  };

  try {  // a device error after run_start still ends the stream with run_end "failed"
    // Checkpoints: the device state copied back into the CPU model and a host AdamW, written by
    // the app's writer (the same files as the CPU path).
    AdamW host_optimizer(cpu.named_params(), adam);
    auto checkpoint = [&](int64_t data_position) {
      model.download_state(cpu, host_optimizer, step_done);
      metrics.checkpoint(step_done,
                         options.save_checkpoint(cpu, host_optimizer, step_done, data_position));
    };
    const bool checkpoints = !options.checkpoint_dir.empty();
    // The jitter keys: the CPU trainer's RNG, seeded alike and drawn alike (one per MoE layer call).
    std::mt19937_64 rng(static_cast<uint64_t>(spec.train.seed) ^ 0x6A177E5ull);
    const int64_t B = spec.train.micro_batch, S = spec.model.seq_len, A = spec.train.grad_accum;
    const int64_t E = spec.model.moe.num_experts;
    BatchSampler sampler(data.train, S, static_cast<uint64_t>(spec.train.seed));
    std::vector<int32_t> window, tokens(static_cast<size_t>(B * S)), targets(tokens.size());
    const std::vector<int64_t> moe_index = model.moe_layer_indices();
    const auto run_t0 = std::chrono::steady_clock::now();
    bool first = true;
    while (step_done < spec.train.steps) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_t0).count();
      if (options.time_limit_s > 0 && elapsed >= options.time_limit_s) {
        if (checkpoints) checkpoint(sampler.position());
        return finish("completed", "time limit of " + std::to_string(options.time_limit_s) +
                                       " s reached at step " + std::to_string(step_done));
      }
      if (options.stop_signal && options.stop_signal->load()) {
        if (checkpoints) checkpoint(sampler.position());
        return finish("cancelled", "stopped by signal " +
                                       std::to_string(options.stop_signal->load()) +
                                       " after step " + std::to_string(step_done));
      }
      const int64_t step = step_done + 1;
      const auto t0 = std::chrono::steady_clock::now();
      model.zero_grad();
      double lm = 0, aux = 0, z = 0;
      std::vector<std::vector<int64_t>> counts(moe_index.size(), std::vector<int64_t>(E, 0)),
          dropped = counts;
      for (int64_t micro = 0; micro < A; ++micro) {
        sampler.next(B, window);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < S; ++t) {
            const size_t w = static_cast<size_t>(b * (S + 1) + t);
            tokens[static_cast<size_t>(b * S + t)] = window[w];
            targets[static_cast<size_t>(b * S + t)] = window[w + 1];
          }
        CudaMoeOptions mo;
        mo.training = true;
        mo.loss_scale = 1.0 / static_cast<double>(A);
        mo.jitter_seed = static_cast<uint64_t>(spec.train.seed) * 0x100000001B3ull +
                         static_cast<uint64_t>(step * A + micro);
        const ForwardResult r = model.forward(tokens.data(), targets.data(), B, mo, &rng);
        if (!std::isfinite(r.loss))
          return finish("failed", std::string(std::isnan(r.loss) ? "loss is NaN" : "loss is Inf") +
                                      " at step " + std::to_string(step));
        model.backward();
        lm += r.lm_loss / static_cast<double>(A);
        aux += r.aux_loss / static_cast<double>(A);
        z += r.z_loss / static_cast<double>(A);
        add_routing_counts(r, counts, dropped);
      }
      const double norm = model.clip_grad_norm(spec.train.grad_clip);
      if (!std::isfinite(norm))
        return finish("failed", "gradient norm is not finite at step " + std::to_string(step));
      const double lr = schedule.at(step_done);
      model.adamw_step(adam, lr, step);
      if (spec.routing.bias_balancing.enabled) model.update_balancing_bias(counts);
      MOE_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
      step_done = step;
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (first) result.first_loss = lm, first = false;
      result.last_loss = lm;
      const bool last = step == spec.train.steps;
      if (last || (spec.runtime.metrics_every > 0 && step % spec.runtime.metrics_every == 0)) {
        StepRecord rec;
        rec.step = step;
        rec.loss = lm, rec.aux_loss = aux, rec.z_loss = z, rec.lr = lr;
        rec.tokens = B * A * S;
        rec.step_ms = ms;
        rec.tokens_per_s = static_cast<double>(rec.tokens) / (ms / 1000.0);
        rec.grad_norm = norm;
        metrics.step(rec);
        for (size_t l = 0; l < moe_index.size(); ++l)
          metrics.expert_load(step, moe_index[l], counts[l], dropped[l]);
      }
      const bool due =
          spec.runtime.checkpoint_every > 0 && step % spec.runtime.checkpoint_every == 0;
      if (checkpoints && (due || last)) checkpoint(sampler.position());
    }
    return finish("completed", "");
  } catch (const std::exception& e) {
    return finish("failed", e.what());
  }
}

}  // namespace

CudaTrainResult run_cuda_training(const JobSpec& spec, const CudaTrainOptions& options) {
  check_cuda_training_spec(spec, options);
  if (!gpu_available())
    throw Error("runtime.backend=cuda: no GPU found (cudaGetDeviceCount failed or found none)");
  if (spec.runtime.dtype == "bf16") return train<__nv_bfloat16>(spec, options);
  return train<float>(spec, options);
}

}  // namespace moe::rt::cuda
