#pragma once
// HeatColumns: the steps × experts load heatmap of one layer, folded incrementally as steps arrive.
// Column c holds the mean load per step of steps [origin + c·width, origin + (c+1)·width). Width
// starts at 1 and doubles (neighbouring columns merge) whenever the next step would need more than
// `capacity` columns, so a run of any length costs O(new rows) per tick and at most
// capacity × experts values — instead of re-reading and re-bucketing the whole run every tick.
#include <cstdint>
#include <vector>

namespace moe::gui {

class HeatColumns {
 public:
  explicit HeatColumns(int64_t capacity = 512) : capacity_(capacity < 2 ? 2 : capacity) {}

  void reset();
  // One step's tokens per expert; steps arrive in ascending order (an older step is ignored).
  void add(int64_t step, const std::vector<int64_t>& counts);

  int64_t capacity() const { return capacity_; }
  int64_t columns() const { return columns_; }
  int64_t experts() const { return experts_; }
  int64_t origin() const { return origin_; }  // first step of column 0
  int64_t width() const { return width_; }    // steps per column (a power of two)
  int64_t last_step() const { return last_step_; }
  // Mean tokens per step of the column's steps (0 for a column no step fell into).
  double value(int64_t column, int64_t expert) const;
  // The first column that changed since the previous call (columns() when none did); a merge
  // changes every column, so it returns 0.
  int64_t take_first_changed();

 private:
  void merge_pairs();

  int64_t capacity_;
  int64_t columns_ = 0, experts_ = 0, origin_ = 0, width_ = 1, last_step_ = -1;
  int64_t first_changed_ = 0;
  std::vector<double> sum_;     // [column * experts_ + e]
  std::vector<int64_t> steps_;  // steps folded into each column
};

}  // namespace moe::gui
