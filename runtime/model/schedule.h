#pragma once
// Learning-rate schedule: linear warmup, then cosine decay to lr · min_lr_ratio.
// For optimizer step s (0-based) of `total` steps, W = warmup steps:
//   s < W:  lr · (s + 1) / W
//   else:   lr_min + (lr − lr_min) · ½ · (1 + cos(π · min(1, (s − W) / max(1, total − W − 1))))
// so the first step after warmup runs at the peak lr and the last step at exactly lr_min.
#include <cstdint>

#include "job_spec.h"

namespace moe::rt {

struct LrSchedule {
  double lr = 3e-3;
  double min_lr_ratio = 0.1;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  static LrSchedule from_spec(const TrainSpec& train);
  double at(int64_t step) const;
};

}  // namespace moe::rt
