// Tensor-parallel slices of a parameter (see param_shard.h).
#include "param_shard.h"

#include <algorithm>

#include <stdexcept>

namespace moe::rt {

Param sharded_param(std::string name, std::vector<int64_t> full, int dim, int64_t index, int64_t count) {
  if (count <= 1) return Param(std::move(name), std::move(full));
  if (full.size() != 2 || dim < 0 || dim > 1 || full[static_cast<size_t>(dim)] % count != 0)
    throw std::invalid_argument(name + ": cannot split dimension " + std::to_string(dim) + " into " + std::to_string(count) +
                " equal parts");
  std::vector<int64_t> local = full;
  local[static_cast<size_t>(dim)] /= count;
  Param p(std::move(name), local);
  p.shard = ParamShard{dim, index, count, std::move(full)};
  return p;
}

int64_t full_numel(const Param& p) {
  if (!p.shard.sharded()) return p.numel();
  int64_t n = 1;
  for (int64_t d : p.shard.full) n *= d;
  return n;
}

namespace {
// Calls f(full offset, part offset, length) for each contiguous run of the slice.
template <typename F>
void for_each_run(const Param& p, int64_t index, F&& f) {
  if (!p.shard.sharded()) return f(int64_t{0}, int64_t{0}, p.numel());
  const int64_t rows = p.shard.full[0], cols = p.shard.full[1];
  if (p.shard.dim == 0) {
    const int64_t part_rows = rows / p.shard.count;
    return f(index * part_rows * cols, int64_t{0}, part_rows * cols);
  }
  const int64_t part_cols = cols / p.shard.count;
  for (int64_t r = 0; r < rows; ++r) f(r * cols + index * part_cols, r * part_cols, part_cols);
}
}  // namespace

void take_slice(const Param& p, const float* full, float* part) {
  for_each_run(p, p.shard.index, [&](int64_t at_full, int64_t at_part, int64_t n) { std::copy_n(full + at_full, n, part + at_part); });
}

void put_slice(const Param& p, const float* part, float* full) { put_slice(p, p.shard.index, part, full); }

void put_slice(const Param& p, int64_t index, const float* part, float* full) {
  for_each_run(p, index, [&](int64_t at_full, int64_t at_part, int64_t n) { std::copy_n(part + at_part, n, full + at_full); });
}

}  // namespace moe::rt
