// Warmup + cosine learning-rate schedule (see schedule.h).
#include "schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace moe::rt {

LrSchedule LrSchedule::from_spec(const TrainSpec& t) {
  return LrSchedule{t.lr, t.min_lr_ratio, t.warmup_steps, t.steps};
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double lr_min = lr * min_lr_ratio;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps - 1));
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  return lr_min + (lr - lr_min) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace moe::rt
