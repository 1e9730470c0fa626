// HeatColumns: append into the last column, open new ones, halve the resolution when full.
#include "live/heat_columns.h"

#include <algorithm>

namespace moe::gui {

void HeatColumns::reset() {
  columns_ = experts_ = origin_ = 0;
  width_ = 1;
  last_step_ = -1;
  first_changed_ = 0;
  sum_.clear();
  steps_.clear();
}

void HeatColumns::add(int64_t step, const std::vector<int64_t>& counts) {
  if (step <= last_step_) return;
  if (last_step_ < 0) origin_ = step;
  last_step_ = step;
  if (int64_t(counts.size()) > experts_) {  // widen every column (only ever at the first rows)
    std::vector<double> wider(size_t(capacity_ * int64_t(counts.size())), 0.0);
    for (int64_t c = 0; c < columns_; ++c)
      std::copy_n(sum_.begin() + c * experts_, experts_, wider.begin() + c * int64_t(counts.size()));
    experts_ = int64_t(counts.size());
    sum_.swap(wider);
    first_changed_ = 0;
  }
  if (sum_.empty()) sum_.assign(size_t(capacity_ * experts_), 0.0);
  if (steps_.empty()) steps_.assign(size_t(capacity_), 0);
  int64_t column = (step - origin_) / width_;
  while (column >= capacity_) {
    merge_pairs();
    column = (step - origin_) / width_;
  }
  if (column >= columns_) {
    first_changed_ = std::min(first_changed_, columns_);
    columns_ = column + 1;
  }
  first_changed_ = std::min(first_changed_, column);
  double* s = sum_.data() + column * experts_;
  for (size_t e = 0; e < counts.size(); ++e) s[e] += double(counts[e]);
  steps_[size_t(column)] += 1;
}

void HeatColumns::merge_pairs() {
  const int64_t merged = (columns_ + 1) / 2;
  for (int64_t c = 0; c < merged; ++c) {
    for (int64_t e = 0; e < experts_; ++e) {
      double v = sum_[size_t(2 * c * experts_ + e)];
      if (2 * c + 1 < columns_) v += sum_[size_t((2 * c + 1) * experts_ + e)];
      sum_[size_t(c * experts_ + e)] = v;
    }
    steps_[size_t(c)] = steps_[size_t(2 * c)] + (2 * c + 1 < columns_ ? steps_[size_t(2 * c + 1)] : 0);
  }
  std::fill(sum_.begin() + merged * experts_, sum_.end(), 0.0);
  std::fill(steps_.begin() + merged, steps_.end(), 0);
  columns_ = merged;
  width_ *= 2;
  first_changed_ = 0;
}

double HeatColumns::value(int64_t column, int64_t expert) const {
  if (column < 0 || column >= columns_ || expert < 0 || expert >= experts_) return 0;
  const int64_t n = steps_[size_t(column)];
  return n > 0 ? sum_[size_t(column * experts_ + expert)] / double(n) : 0.0;
}

int64_t HeatColumns::take_first_changed() {
  const int64_t first = std::min(first_changed_, columns_);
  first_changed_ = columns_;
  return first;
}

}  // namespace moe::gui
