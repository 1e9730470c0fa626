#pragma once
// The training loop of `moe-runtime train` on one process:
//   per step: grad_accum micro-batches of micro_batch sequences (forward, backward, losses
//   averaged) → global-norm clipping → AdamW at the scheduled lr → balancing-bias update →
//   metrics (step, expert_load per MoE layer) → validation / checkpoint when due.
// Deterministic for a seed; --resume restores weights, AdamW moments, RNG, data position and
// biases, so a resumed run reproduces the uninterrupted run's losses exactly.
// A non-finite loss or gradient ends the run with run_end "failed" naming the step (and layer,
// where a parameter or router names one) without writing a checkpoint, so the last good one stays
// the latest. SIGINT/SIGTERM end it with run_end "cancelled" after a checkpoint (when a
// checkpoint directory is given).
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "job_spec.h"
#include "model.h"

namespace moe::rt::ep {
class EpRuntime;  // runtime/ep: one rank of a multi-process job
}

namespace moe::rt {

struct TrainerOptions {
  std::string metrics = "-";              // --metrics FILE|-
  std::filesystem::path checkpoint_dir;   // --checkpoint-dir (empty: no checkpoints)
  std::filesystem::path resume;           // --resume DIR (empty: fresh run)
  int64_t val_bytes_periodic = 65536;     // validation bytes used at eval_every
  int64_t val_bytes_final = 1 << 20;      // validation bytes used at the end (0: all)
  double time_limit_s = 0;                // --time-limit: stop after this much wall time (0: none)
  const std::atomic<int>* stop_signal = nullptr;  // set by a signal handler: cancel the run
  // Expert/data parallelism (issue 4): this process is one rank of the job; null: one process.
  // Each rank trains on its slice of every window, gradients and figures are reduced over the
  // ranks, and only rank 0 writes metrics and checkpoints (docs/expert-parallel.md).
  ep::EpRuntime* parallel = nullptr;
};

struct TrainResult {
  std::string status;  // completed | failed | cancelled
  std::string reason;
  int64_t steps = 0;           // optimizer steps done when the run ended
  double first_loss = 0.0;     // LM loss of the first step of this process
  double last_loss = 0.0;
  double val_loss = -1.0;      // final validation loss (−1: none)
  int64_t peak_rss_bytes = 0;
};

class Trainer {
 public:
  Trainer(const JobSpec& spec, const TrainerOptions& options);
  ~Trainer();

  MixtralModel& model();  // e.g. for tests that shape the initial weights before run()
  TrainResult run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

int64_t peak_rss_bytes();  // getrusage: the process's maximum resident set size

}  // namespace moe::rt
